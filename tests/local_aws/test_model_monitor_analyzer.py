"""The local Model Monitor analyzer: the documented file shapes, and the documented checks against a baseline."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from local_aws.sagemaker.images import model_monitor_analyzer as analyzer

FIXTURES = Path(__file__).parent / "fixtures" / "model_monitor"
ABALONE_CSV = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "abalone.csv"
CSV_WITH_HEADER = {"csv": {"header": True, "output_columns_position": "START"}}


def shape(value):
    """Field names, nesting and types (int and float are both numbers; lists by their items' shapes)."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        shapes = []
        for item in value:
            if shape(item) not in shapes:
                shapes.append(shape(item))
        return shapes
    if isinstance(value, bool):
        return "boolean"
    return "number" if isinstance(value, (int, float)) else type(value).__name__


def covers(documented, written) -> bool:
    """Every documented field is there with the documented type, at the documented place."""
    if isinstance(documented, dict):
        return isinstance(written, dict) and all(k in written and covers(v, written[k]) for k, v in documented.items())
    if isinstance(documented, list):
        return isinstance(written, list) and all(any(covers(d, w) for w in written) for d in documented)
    return documented == written


@pytest.fixture(scope="module")
def abalone(tmp_path_factory) -> pd.DataFrame:
    if not ABALONE_CSV.exists():
        pytest.skip(f"{ABALONE_CSV} not found")
    return analyzer.read_dataset(str(ABALONE_CSV), CSV_WITH_HEADER)


@pytest.fixture(scope="module")
def baseline(abalone):
    statistics = analyzer.data_statistics(abalone)
    return statistics, analyzer.data_constraints(statistics)


def test_statistics_and_constraints_have_the_documented_shape(baseline):
    statistics, constraints = baseline
    documented_statistics = json.loads((FIXTURES / "statistics.json").read_text())
    assert covers(shape(documented_statistics), shape(json.loads(json.dumps(statistics))))
    assert covers(shape(json.loads((FIXTURES / "constraints.json").read_text())), shape(constraints))
    by_name = {f["name"]: f for f in statistics["features"]}
    assert by_name["rings"]["inferred_type"] == "Integral"
    assert by_name["shell_weight"]["inferred_type"] == "Fractional"
    assert by_name["sex"]["inferred_type"] == "String"
    buckets = by_name["rings"]["numerical_statistics"]["distribution"]["kll"]["buckets"]
    assert len(buckets) == 10 and sum(b["count"] for b in buckets) == statistics["dataset"]["item_count"]
    domains = {f["name"]: f.get("string_constraints", {}).get("domains") for f in constraints["features"]}
    assert sorted(domains["sex"]) == ["F", "I", "M"]


def test_the_clean_set_has_no_violation_and_the_documented_violation_shape(abalone, baseline):
    assert analyzer.data_violations(abalone, *baseline) == []
    drifted = abalone.copy()
    drifted["rings"] = (pd.to_numeric(drifted["rings"]) + 5).astype(str)
    violations = analyzer.data_violations(drifted, *baseline)
    documented = shape(json.loads((FIXTURES / "constraint_violations.json").read_text()))
    assert covers(documented, shape({"violations": violations}))
    assert [(v["feature_name"], v["constraint_check_type"]) for v in violations] == [("rings", "baseline_drift_check")]
    assert violations[0]["description"].startswith("Baseline drift distance: ")


def test_a_categorical_shift_is_a_drift_and_unseen_values_break_the_domain(abalone, baseline):
    shifted = abalone.copy()
    shifted.loc[: len(shifted) // 2, "sex"] = "I"
    assert ("sex", "baseline_drift_check") in {
        (v["feature_name"], v["constraint_check_type"]) for v in analyzer.data_violations(shifted, *baseline)
    }
    unseen = abalone.copy()
    unseen.loc[:10, "sex"] = "X"
    checks = {v["constraint_check_type"] for v in analyzer.data_violations(unseen, *baseline)}
    assert "categorical_values_check" in checks


def test_an_extra_or_missing_column_is_its_documented_check(abalone, baseline):
    extra = abalone.assign(colour="red")
    violations = analyzer.data_violations(extra, *baseline)
    assert [(v["feature_name"], v["constraint_check_type"]) for v in violations] == [("colour", "extra_column_check")]
    missing = abalone.drop(columns=["height"])
    violations = analyzer.data_violations(missing, *baseline)
    assert [(v["feature_name"], v["constraint_check_type"]) for v in violations] == [("height", "missing_column_check")]
    assert "Number of columns in current dataset: 8" in violations[0]["description"]


def test_model_quality_regression_metrics_and_their_constraints():
    rng = np.random.RandomState(0)
    truth = rng.randint(1, 30, 500).astype(float)
    frame = pd.DataFrame({"_c0": truth.astype(str), "_c1": (truth + rng.normal(0, 2, 500)).astype(str)})
    environment = {"problem_type": "Regression", "ground_truth_attribute": "_c0", "inference_attribute": "_c1"}
    statistics = analyzer.model_quality_statistics(frame, environment)
    metrics = statistics["regression_metrics"]
    assert set(metrics) == {"mae", "mse", "rmse", "r2"}
    assert all(set(m) == {"value", "standard_deviation"} and m["standard_deviation"] > 0 for m in metrics.values())
    assert metrics["rmse"]["value"] == pytest.approx(np.sqrt(metrics["mse"]["value"]))
    constraints = analyzer.model_quality_constraints(statistics)
    assert constraints["regression_constraints"]["r2"]["comparison_operator"] == "LessThanThreshold"
    assert analyzer.model_quality_violations(statistics, constraints) == []
    worse = frame.assign(_c1=(truth + rng.normal(0, 4, 500)).astype(str))
    violations = analyzer.model_quality_violations(analyzer.model_quality_statistics(worse, environment), constraints)
    assert {v["metric_name"] for v in violations} == {"mae", "mse", "rmse", "r2"}
