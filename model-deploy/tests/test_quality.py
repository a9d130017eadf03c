"""The model-quality pipeline's step script without a stack: the ground-truth contract of the join (label folders
named after the batch run, record ids against its predictions) and the summary beside the baseline."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from deploy.batch import quality

ROOT = "s3://bucket-x/batch-inference/abalone/staging/ground-truth/"


def write(folder: Path, relative: str, text: str) -> Path:
    path = folder / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def labels(folder: Path) -> pd.DataFrame:
    return quality.read_labels(quality.label_files(folder, ROOT)["run-1"], "rings")


def test_label_files_are_grouped_by_the_batch_run_their_folder_names(tmp_path):
    write(tmp_path, "run-1/a.csv", "record_id,rings\n0,1\n")
    write(tmp_path, "run-1/b.csv", "record_id,rings\n1,2\n")
    write(tmp_path, "run-2/a.csv", "record_id,rings\n0,3\n")
    found = quality.label_files(tmp_path, ROOT)
    assert {run: [uri for uri, _ in files] for run, files in found.items()} == {
        "run-1": [f"{ROOT}run-1/a.csv", f"{ROOT}run-1/b.csv"],
        "run-2": [f"{ROOT}run-2/a.csv"],
    }
    # GroundTruthUrl may be one run's folder: the folder is still the file's parent.
    assert list(quality.label_files(tmp_path / "run-1", f"{ROOT}run-1/")) == ["run-1"]


@pytest.mark.parametrize(
    ("relative", "message"),
    [
        ("labels.csv", "lies directly under the ground-truth prefix: put it in a folder named after the batch"),
        ("run-1/labels.json", "label files are CSV files named"),
    ],
)
def test_a_label_file_outside_the_contract_is_refused(tmp_path, relative, message):
    write(tmp_path, relative, "record_id,rings\n0,1\n")
    with pytest.raises(quality.LabelError, match=message):
        quality.label_files(tmp_path, ROOT)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("id,rings\n0,1\n", r"no column record_id \(header: id, rings\)"),
        ("record_id,rings\n0,1\nx,2\n", r"record_id must be a whole number.*data lines 3"),
        ("record_id,rings\n0,1\n1,\n", r"rings must be a number \(data lines 3\)"),
        ("record_id,rings\n0,1\n0,2\n", r"record_id 0 labelled more than once"),
        ("", "is empty"),
    ],
)
def test_malformed_labels_name_the_file_the_lines_and_the_fix(tmp_path, text, message):
    write(tmp_path, "run-1/labels.csv", text)
    with pytest.raises(quality.LabelError, match=message) as raised:
        labels(tmp_path)
    assert f"{ROOT}run-1/labels.csv" in str(raised.value) or "labelled more than once" in str(raised.value)


def test_the_join_pairs_each_prediction_with_its_record_ids_label_whatever_the_file_order(tmp_path):
    write(tmp_path, "run-1/b.csv", "record_id,rings,note\n2,12,late\n0,10,\n")
    write(tmp_path, "run-1/a.csv", "record_id,rings\n1,11\n")
    joined = quality.join([9.5, 10.5, 11.5], labels(tmp_path), "rings", "run-1")
    assert joined.to_dict("list") == {"prediction": [9.5, 10.5, 11.5], "rings": [10.0, 11.0, 12.0]}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("record_id,rings\n0,1\n1,2\n", r"1 of the 3 predictions of batch execution run-1 have no label \(record_id 2"),
        ("record_id,rings\n0,1\n1,2\n2,3\n7,4\n", r"record_id 7 not in batch execution run-1, which has 3 predictions"),
    ],
    ids=["missing-rows", "unknown-id"],
)
def test_labels_that_do_not_cover_the_predictions_exactly_are_refused(tmp_path, text, message):
    write(tmp_path, "run-1/labels.csv", text)
    with pytest.raises(quality.LabelError, match=message):
        quality.join([1.0, 2.0, 3.0], labels(tmp_path), "rings", "run-1")


def test_the_summary_puts_each_metric_beside_the_baseline_and_marks_the_violated(tmp_path):
    metrics = {"rmse": {"value": 7.1, "standard_deviation": 0.1}, "r2": {"value": -3.0, "standard_deviation": 0.1}}
    baseline = {"rmse": {"value": 2.1, "standard_deviation": 0.1}, "r2": {"value": 0.5, "standard_deviation": 0.1}}
    inputs = tmp_path / "input"
    write(inputs, "check/statistics.json", json.dumps({"regression_metrics": metrics}))
    violation = {"metric_name": "rmse", "constraint_check_type": "GreaterThanThreshold", "description": "d"}
    write(inputs, "check/constraint_violations.json", json.dumps({"violations": [violation]}))
    write(inputs, "baseline_statistics/statistics.json", json.dumps({"regression_metrics": baseline}))
    constraints = {"rmse": {"threshold": 2.1, "comparison_operator": "GreaterThanThreshold"}}
    write(inputs, "baseline_constraints/constraints.json", json.dumps({"regression_constraints": constraints}))
    write(inputs, "join/join-report.json", json.dumps({"rows": 3, "model_package_arn": "arn:p/1"}))
    summary = quality.summarize(inputs, "q-1")
    assert summary["metrics"]["rmse"] == {
        "value": 7.1,
        "baseline": 2.1,
        "threshold": 2.1,
        "comparison_operator": "GreaterThanThreshold",
        "violated": True,
    }
    assert summary["metrics"]["r2"]["violated"] is False and summary["violation_count"] == 1
    (inputs / "check" / "constraint_violations.json").unlink()  # a check that compared nothing is not "no violations"
    with pytest.raises(quality.LabelError, match="no constraint_violations.json"):
        quality.summarize(inputs, "q-1")


def test_a_failed_join_writes_the_reason_where_sagemaker_reads_it(tmp_path):
    root = tmp_path / "processing"
    write(root, "input/ground_truth/labels.csv", "record_id,rings\n0,1\n")
    code = quality.main(["join", "--root", str(root), "--ground-truth-url", ROOT, "--batch-root", "s3://b/r"])
    assert code == 1
    assert (tmp_path / "output" / "failure").read_text().startswith("AlgorithmError: ")


def test_quality_run_accepts_only_the_stages_ground_truth_prefix():
    from deploy.batch import quality_run
    from deploy.environment import Environment
    from deploy.errors import DeployError

    environment = Environment(region="us-east-1", project_name="abalone", artifact_bucket="bucket-x")
    assert quality_run.check_ground_truth(environment, "staging", f"{ROOT}run-1") == f"{ROOT}run-1/"
    assert quality_run.check_ground_truth(environment, "staging", ROOT) == ROOT
    for wrong in ("s3://bucket-x/batch-inference/abalone/prod/ground-truth/run-1/", "s3://other/ground-truth/run-1/"):
        with pytest.raises(DeployError, match=f"is not under {ROOT}: put the label files in {ROOT}<batch-exec"):
            quality_run.check_ground_truth(environment, "staging", wrong)


@pytest.fixture
def s3(monkeypatch):
    from moto import mock_aws

    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE"):  # moto's in-process mock, not a server
        monkeypatch.delenv(name, raising=False)
    with mock_aws():
        import boto3

        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="bucket-x")
        yield client


def scored_run(s3, execution_id: str, package: str, predictions: list[float]) -> None:
    key = f"batch-inference/abalone/staging/executions/{execution_id}/Postprocess"
    body = "".join(f"{p}\n" for p in predictions)
    s3.put_object(Bucket="bucket-x", Key=f"{key}/predictions/predictions.csv", Body=body.encode())
    summary = json.dumps({"model_package_arn": package})
    s3.put_object(Bucket="bucket-x", Key=f"{key}/summary/drift-summary.json", Body=summary.encode())


def join_args(root: Path) -> list[str]:
    return [
        "--root",
        str(root),
        "--ground-truth-url",
        ROOT,
        "--batch-root",
        "s3://bucket-x/batch-inference/abalone/staging",
    ]


def test_the_join_reads_each_labelled_runs_predictions_and_skips_runs_of_other_versions(tmp_path, s3):
    scored_run(s3, "run-1", "arn:p/2", [9.5, 10.5])
    scored_run(s3, "run-0", "arn:p/1", [1.0])
    root = tmp_path / "processing"
    write(root, "input/ground_truth/run-1/labels.csv", "record_id,rings\n1,11\n0,10\n")
    write(root, "input/ground_truth/run-0/labels.csv", "record_id,rings\n0,1\n")
    assert quality.main(["join", *join_args(root), "--model-package-arn", "arn:p/2"]) == 0
    assert (root / "joined" / "joined.csv").read_text() == "prediction,rings\n9.5,10\n10.5,11\n"
    report = json.loads((root / "report" / "join-report.json").read_text())
    assert report["rows"] == 2 and [r["execution_id"] for r in report["batch_executions"]] == ["run-1"]
    assert report["skipped_other_versions"] == [{"execution_id": "run-0", "model_package_arn": "arn:p/1"}]


@pytest.mark.parametrize(
    ("folder", "package", "message"),
    [
        ("run-9", "arn:p/2", "no batch execution run-9 with predictions under s3://bucket-x/batch-inference/abalone/"),
        ("run-1", "arn:p/3", r"all for batch runs scored with other versions \(run-1\); this pipeline checks arn:p/3"),
    ],
    ids=["unknown-run", "other-version"],
)
def test_labels_of_a_run_that_does_not_exist_or_is_not_this_versions_fail_the_join(
    tmp_path, s3, folder, package, message
):
    scored_run(s3, "run-1", "arn:p/2", [9.5])
    root = tmp_path / "processing"
    write(root, f"input/ground_truth/{folder}/labels.csv", "record_id,rings\n0,10\n")
    assert quality.main(["join", *join_args(root), "--model-package-arn", package]) == 1
    failure = (tmp_path / "output" / "failure").read_text()
    assert re.search(message, failure), failure
