"""The batch staging gate: the staging batch pipeline scored the sample with the release's version, one
prediction per input row, each equal to the staging endpoint's answer for the same row."""

from __future__ import annotations

import math

import pytest

from deploy import inference

# Both sides run the same model on the same encoded row; only the text formatting of a float may differ.
TOLERANCE = 1e-5


def test_the_run_succeeded(batch):
    assert not batch.options.run_failure, batch.options.run_failure


def test_the_run_scored_with_the_release_package(batch):
    served = batch.transform_model_package()
    assert served == batch.package_arn, (
        f"the pipeline's Transform serves {served}, not the release's {batch.package_arn}"
    )
    assert batch.summary["model_package_arn"] == batch.package_arn


def test_one_prediction_per_input_row(batch, figures):
    figures.update(input_rows=batch.options.sample_rows, predictions=len(batch.predictions))
    assert len(batch.encoded_rows) == batch.options.sample_rows, (
        f"Preprocess wrote {len(batch.encoded_rows)} rows for a sample of {batch.options.sample_rows}"
    )
    assert len(batch.predictions) == batch.options.sample_rows, (
        f"{len(batch.predictions)} predictions for {batch.options.sample_rows} input rows"
    )
    assert batch.summary["rows"] == batch.options.sample_rows


def test_predictions_equal_the_staging_endpoints(batch, figures):
    rows = batch.encoded_rows
    if len(rows) != len(batch.predictions):
        pytest.fail(f"{len(batch.predictions)} predictions for {len(rows)} rows: nothing to compare row by row")
    expected = []
    for start in range(0, len(rows), batch.options.batch_rows):
        expected += inference.invoke_csv(
            batch.runtime, batch.endpoint_name, rows[start : start + batch.options.batch_rows]
        )
    scored = [float(line.split(",")[0]) for line in batch.predictions]
    differences = [abs(a - b) for a, b in zip(scored, expected, strict=True)]
    wrong = [
        i
        for i, (a, b) in enumerate(zip(scored, expected, strict=True))
        if not math.isclose(a, b, rel_tol=TOLERANCE, abs_tol=TOLERANCE)
    ]
    figures.update(
        compared_rows=len(rows), mismatched_rows=len(wrong), max_abs_difference=round(max(differences, default=0.0), 6)
    )
    assert not wrong, (
        f"{len(wrong)} of {len(rows)} batch predictions differ from {batch.endpoint_name}'s, e.g. row {wrong[0]}: "
        f"batch {scored[wrong[0]]} vs endpoint {expected[wrong[0]]}: the batch pipeline and the endpoint do not "
        "serve the same model"
    )
