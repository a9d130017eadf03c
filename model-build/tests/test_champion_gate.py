"""The champion gate step script on constructed inputs: each bound, just inside and beyond, and no champion."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile

import numpy as np
import pytest
import xgboost

from pipelines.abalone import champion_gate as gate

BOUNDS = {"tolerance": 0.05, "label_bound": 0.1, "size_ratio": 1.5}
METRICS = {"mse": 4.0, "rmse": 2.0, "mae": 1.5, "r2": 0.5}


def buckets(label_counts: list[float], low: float = 1.0, high: float = 21.0) -> list[dict]:
    """The label's 10 equal-width buckets, as label_buckets() writes them."""
    edges = np.linspace(low, high, len(label_counts) + 1)
    return [
        {"lower_bound": float(edges[i]), "upper_bound": float(edges[i + 1]), "count": float(c)}
        for i, c in enumerate(label_counts)
    ]


def statistics(item_count: int) -> dict:
    """A data-quality statistics.json of the model's input (no label: the gate reads only its size)."""
    return {"dataset": {"item_count": item_count}, "features": [{"name": "length"}, {"name": "sex_F"}]}


COUNTS = [10, 40, 120, 200, 150, 80, 40, 20, 10, 5]


def compare(new_metrics=METRICS, new_counts=COUNTS, new_size=2924, **bounds):
    return gate.compare(
        new_metrics,
        METRICS,
        buckets(new_counts),
        buckets(COUNTS),
        statistics(new_size),
        statistics(2924),
        **{**BOUNDS, **bounds},
    )


def test_same_model_and_data_pass_every_comparison():
    result = compare()
    assert result["failures"] == []
    assert result["label_distribution"]["distance"] == 0.0
    assert result["training_size"]["ratio"] == 1.0


def test_metrics_pass_just_inside_the_tolerance_and_fail_beyond_it_naming_both_values_and_the_bound():
    inside = {"mse": 4.0 * 1.049, "rmse": 2.0 * 1.049, "mae": 1.5 * 1.049, "r2": 0.5 - 0.024}
    assert compare(inside)["failures"] == []
    worse = {**METRICS, "rmse": 2.2, "r2": 0.47}
    failures = compare(worse)["failures"]
    assert failures == [
        "rmse 2.2000 vs champion 2.0000: must be at most 2.1000 (tolerance 0.05)",
        "r2 0.4700 vs champion 0.5000: must be at least 0.4750 (tolerance 0.05)",
    ]
    # Better is never a failure, however far.
    assert compare({"mse": 1.0, "rmse": 1.0, "mae": 0.5, "r2": 0.9})["failures"] == []


def test_label_distribution_passes_a_small_shift_and_fails_a_large_one():
    nudged = [10, 45, 115, 200, 150, 80, 40, 20, 10, 5]  # 5 of 675 rows move one bucket
    result = compare(new_counts=nudged)
    assert result["failures"] == [] and 0 < result["label_distribution"]["distance"] < 0.1
    shifted = [5, 10, 40, 120, 200, 150, 80, 40, 20, 10]  # the same shape, one bucket older
    result = compare(new_counts=shifted)
    assert len(result["failures"]) == 1
    assert result["failures"][0].startswith("label distribution (rings) shifted by 0.")
    assert result["failures"][0].endswith("bound 0.1")
    assert result["label_distribution"]["champion_buckets"][0]["count"] == 10.0  # both kept, for the report


def test_label_distance_compares_distributions_with_different_bucket_bounds():
    # The same uniform distribution, bucketed over [1, 21] and over [1, 11] + nothing above: the CDFs differ.
    wide, narrow = buckets([1] * 10, 1, 21), buckets([1] * 10, 1, 11)
    assert gate.label_distance(wide, narrow) == pytest.approx(0.5)


def test_label_buckets_are_ten_equal_width_counts_over_the_labels_range():
    written = gate.label_buckets([1, 1, 2, 3, 11, 21])
    assert [b["count"] for b in written] == [3, 1, 0, 0, 0, 1, 0, 0, 0, 1]
    assert written[0]["lower_bound"] == 1.0 and written[-1]["upper_bound"] == 21.0
    assert gate.label_distance(written, gate.label_buckets([1, 1, 2, 3, 11, 21])) == 0.0
    constant = gate.label_buckets([7, 7, 7])
    assert sum(b["count"] for b in constant) == 3 and constant[0]["lower_bound"] == constant[-1]["upper_bound"] == 7


def test_training_size_passes_inside_the_ratio_and_fails_beyond_it_either_way():
    assert compare(new_size=4380)["failures"] == []  # 1.498
    assert compare(new_size=1952)["failures"] == []  # 1 / 1.498
    assert compare(new_size=4400)["failures"] == [
        "training-set size 4400 vs champion 2924: ratio 1.505 outside [0.667, 1.5]"
    ]
    assert "ratio 0.650" in compare(new_size=1900)["failures"][0]


# main() end to end, with a fake registry and S3 and two real xgboost models.


def model_tar(booster) -> bytes:
    raw = booster.save_raw("ubj")  # the host xgboost cannot write 1.7-1's binary format; the loader reads both
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        info = tarfile.TarInfo(gate.MODEL_FILE)
        info.size = len(raw)
        archive.addfile(info, io.BytesIO(bytes(raw)))
    return buffer.getvalue()


@pytest.fixture(scope="module")
def models():
    rng = np.random.default_rng(0)
    features = rng.random((400, 3))
    labels = 10 * features[:, 0] + 2 * features[:, 1] + rng.normal(0, 0.3, 400)
    good = xgboost.train({"max_depth": 3, "seed": 1}, xgboost.DMatrix(features, label=labels), 30)
    poor = xgboost.train({"max_depth": 1, "seed": 1}, xgboost.DMatrix(features, label=labels), 2)
    test = np.column_stack([labels[:100], features[:100]])
    return {"good": model_tar(good), "poor": model_tar(poor), "test": test}


class FakeRegistry:
    def __init__(self, package: dict | None):
        self.package = package

    def list_model_packages(self, **request):
        assert request["ModelApprovalStatus"] == "Approved" and request["SortOrder"] == "Descending"
        summaries = [{"ModelPackageArn": self.package["ModelPackageArn"]}] if self.package else []
        return {"ModelPackageSummaryList": summaries}

    def describe_model_package(self, ModelPackageName):  # noqa: N803 - boto3's name
        return self.package


class FakeS3:
    def __init__(self, objects: dict[str, bytes]):
        self.objects = objects

    def download_file(self, bucket, key, path):
        with open(path, "wb") as handle:
            handle.write(self.objects[f"s3://{bucket}/{key}"])


def _csv(rows: np.ndarray) -> bytes:
    buffer = io.StringIO()
    np.savetxt(buffer, rows, delimiter=",")
    return buffer.getvalue().encode()


def run_gate(tmp_path, models, new: str, champion: str | None, pinned: str | None = None, champion_test=None) -> dict:
    for folder in ("model", "test", "statistics"):
        (tmp_path / folder).mkdir(exist_ok=True)
    (tmp_path / "model" / "model.tar.gz").write_bytes(models[new])
    (tmp_path / "test" / "test.csv").write_bytes(_csv(models["test"]))
    (tmp_path / "statistics" / "statistics.json").write_text(json.dumps(statistics(2924)))
    package, objects = None, {}
    if champion:
        objects = {
            "s3://b/champion/model.tar.gz": models[champion],
            "s3://b/champion/statistics.json": json.dumps(statistics(2924)).encode(),
            "s3://b/champion/test/test.csv": _csv(models["test"] if champion_test is None else champion_test),
        }
        digest = pinned or hashlib.sha256(models[champion]).hexdigest()
        package = {
            "ModelPackageArn": "arn:aws:sagemaker:us-east-1:1:model-package/abalone/3",
            "ModelPackageVersion": 3,
            "InferenceSpecification": {"Containers": [{"ModelDataUrl": "s3://b/champion/model.tar.gz"}]},
            "CustomerMetadataProperties": {"ModelDataSha256": digest, "TestDataUrl": "s3://b/champion/test"},
            "DriftCheckBaselines": {"ModelDataQuality": {"Statistics": {"S3Uri": "s3://b/champion/statistics.json"}}},
        }
    argv = [
        *("--group", "abalone", "--tolerance", "0.05", "--label-bound", "0.1", "--size-ratio", "1.5"),
        *("--model-dir", str(tmp_path / "model"), "--test-dir", str(tmp_path / "test")),
        *("--statistics-dir", str(tmp_path / "statistics"), "--output-dir", str(tmp_path / "out")),
    ]
    assert gate.main(argv, sagemaker=FakeRegistry(package), s3=FakeS3(objects)) == 0
    return json.loads((tmp_path / "out" / "comparison.json").read_text())


def test_no_champion_passes_and_says_so(tmp_path, models):
    result = run_gate(tmp_path, models, "good", None)
    assert result["passed"] == 1 and result["champion"] is None
    assert result["message"] == "no Approved champion in abalone: the gate passes"
    assert result["summary"]["GateResult"] == "passed (no Approved champion)"
    assert result["new_metrics"]["rmse"] > 0


def test_the_champion_is_rescored_on_the_new_test_split(tmp_path, models):
    result = run_gate(tmp_path, models, "good", "good")
    assert result["passed"] == 1, result["message"]
    assert result["metrics"]["rmse"]["new"] == result["metrics"]["rmse"]["champion"]  # the same rows
    assert result["summary"]["GateChampion"].endswith("model-package/abalone/3")


def test_the_label_distributions_are_the_two_test_splits_labels(tmp_path, models):
    same = run_gate(tmp_path, models, "good", "good")
    assert same["label_distribution"]["distance"] == 0.0
    assert same["label_distribution"]["new_buckets"] == gate.label_buckets(models["test"][:, 0])
    older = models["test"].copy()
    older[:, 0] += 4.0  # the champion's data had older abalone: the same rows, 4 more rings each
    shifted = run_gate(tmp_path, models, "good", "good", champion_test=older)
    assert shifted["passed"] == 0
    assert any(f.startswith("label distribution (rings) shifted by") for f in shifted["failures"])


def test_a_model_worse_than_the_champion_fails_naming_each_metric(tmp_path, models):
    result = run_gate(tmp_path, models, "poor", "good")
    assert result["passed"] == 0
    assert result["message"].startswith("champion gate failed against champion arn:aws:sagemaker")
    for name in ("mse", "rmse", "mae", "r2"):
        assert f"{name} " in result["message"]
    assert result["summary"]["GateResult"] == "failed"


def test_a_champion_whose_model_was_replaced_fails_the_gate(tmp_path, models):
    result = run_gate(tmp_path, models, "good", "good", pinned="0" * 64)
    assert result["passed"] == 0
    assert f"pinned {'0' * 64}: it was replaced" in result["message"]


def test_the_gate_loads_models_exactly_as_evaluate_does():
    """Step scripts run alone, so the gate carries a copy of evaluate's loader: the two must not drift."""
    import inspect

    from pipelines.abalone import champion_gate, evaluate

    assert inspect.getsource(champion_gate.load_booster) == inspect.getsource(evaluate.load_booster)
    assert champion_gate.MODEL_FILE == evaluate.MODEL_FILE
