"""Champion gate step: compare the new model with the latest Approved version of the group, and write comparison.json.

Runs in the SageMaker XGBoost 1.7-1 container (xgboost to score both models, boto3 to read the registry) and on a
laptop. Self-contained on purpose: SageMaker uploads this one file. It never fails on a worse model: it writes
`passed` (1 or 0) and a `message` naming every failed comparison, and the pipeline's condition routes to the
FailStep with that message, so the reason is in the execution and nothing is registered.

What it compares, the champion being the latest Approved package of --group:
- the champion's model is the one it was approved as: its SHA-256 equals the pinned `ModelDataSha256`;
- regression metrics of both models on the NEW test split (the same rows): mse, rmse, mae may not exceed the
  champion's by more than --tolerance (relative), r2 may not fall by more than --tolerance x |champion's r2|;
- the label distribution: the L-infinity distance between the CDFs of the label's 10 buckets (equal width, as
  the analyzer's numeric distribution) in the new test split and in the champion's (its `TestDataUrl`), at most
  --label-bound. The data-quality baselines cannot carry the label: they describe the model's input, which has
  none (the endpoint's monitor checks captured traffic against them). Both test splits are a random share of
  their data set, drawn by the same seeded split, so they stand for its label distribution;
- the training-set size (`dataset.item_count` of the new DataQualityCheck statistics and of the champion's
  DriftCheckBaselines data statistics): new / champion within [1/--size-ratio, --size-ratio].
No Approved package: the gate passes and says so.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pickle
import sys
import tarfile
import tempfile

import numpy as np
import pandas as pd

MODEL_FILE = "xgboost-model"
LABEL = "rings"
# The pinning keys run_pipeline writes (model-build/pipelines/pinning.py); repeated: this file is uploaded alone.
METADATA_MODEL_DIGEST = "ModelDataSha256"
METADATA_TEST_DATA = "TestDataUrl"  # the package's test split (pipeline.py)
BUCKETS = 10
# Metrics where a larger value is worse; r2 is the other way round.
LOWER_IS_BETTER = ("mse", "rmse", "mae")
SUMMARY_KEYS = ("GateResult", "GateChampion", "GateRmse", "GateMae", "GateR2", "GateLabelShift", "GateTrainingSize")


# A copy of evaluate.load_booster: each step script is uploaded and run alone, so it cannot import another.
# model-build/tests/test_champion_gate.py keeps the two copies identical.
def load_booster(model_tar: str):
    """Load the Booster from the built-in algorithm's model.tar.gz."""
    import xgboost

    with tempfile.TemporaryDirectory() as folder:
        with tarfile.open(model_tar) as archive:
            archive.extract(MODEL_FILE, path=folder)
        path = os.path.join(folder, MODEL_FILE)
        try:
            with open(path, "rb") as handle:
                return pickle.load(handle)  # noqa: S301 - our own training output, as the container writes it
        except Exception:  # noqa: BLE001 - not a pickle: the container's native format
            booster = xgboost.Booster()
            booster.load_model(path)
            return booster


def regression_metrics(y_true, y_pred) -> dict[str, float]:
    errors = np.asarray(y_true, dtype=float) - np.asarray(y_pred, dtype=float)
    total = float(np.sum((y_true - np.mean(y_true)) ** 2))
    mse = float(np.mean(errors**2))
    return {
        "mse": mse,
        "rmse": float(np.sqrt(mse)),
        "mae": float(np.mean(np.abs(errors))),
        "r2": float(1.0 - np.sum(errors**2) / total) if total else 0.0,
    }


def score(model_tar: str, test: pd.DataFrame) -> dict[str, float]:
    import xgboost

    predictions = load_booster(model_tar).predict(xgboost.DMatrix(test.iloc[:, 1:].to_numpy()))
    return regression_metrics(test.iloc[:, 0].to_numpy(dtype=float), predictions)


def label_buckets(labels) -> list[dict]:
    """The labels' distribution in 10 equal-width buckets over [min, max], as the analyzer writes a number's."""
    values = np.asarray(labels, dtype=float)
    values = values[np.isfinite(values)]
    if not len(values):
        raise ValueError(f"no {LABEL} value to compare")
    low, high = float(values.min()), float(values.max())
    edges = np.linspace(low, high, BUCKETS + 1) if high > low else np.array([low] * (BUCKETS + 1))
    counts = np.histogram(values, bins=BUCKETS, range=(low, high if high > low else low + 1.0))[0]
    return [
        {"lower_bound": float(edges[i]), "upper_bound": float(edges[i + 1]), "count": float(counts[i])}
        for i in range(BUCKETS)
    ]


def cdf(buckets: list[dict], points: np.ndarray) -> np.ndarray:
    """The distribution's CDF at `points`, counts spread evenly within each bucket."""
    bounds = np.array([buckets[0]["lower_bound"]] + [b["upper_bound"] for b in buckets], dtype=float)
    counts = np.array([b["count"] for b in buckets], dtype=float)
    cumulative = np.concatenate([[0.0], np.cumsum(counts)]) / max(counts.sum(), 1.0)
    if bounds[-1] == bounds[0]:  # a constant label: a step at that value
        return (points >= bounds[0]).astype(float)
    return np.interp(points, bounds, cumulative, left=0.0, right=1.0)


def label_distance(new: list[dict], champion: list[dict]) -> float:
    """L-infinity distance of the two CDFs, at every bucket bound of either."""
    points = np.array(sorted({b[k] for b in new + champion for k in ("lower_bound", "upper_bound")}), dtype=float)
    return float(np.max(np.abs(cdf(new, points) - cdf(champion, points))))


def compare(
    new_metrics: dict[str, float],
    champion_metrics: dict[str, float],
    new_labels: list[dict],
    champion_labels: list[dict],
    new_statistics: dict,
    champion_statistics: dict,
    tolerance: float,
    label_bound: float,
    size_ratio: float,
) -> dict:
    """Every comparison with both values, its bound and whether it passed; `failures` names the failed ones."""
    metrics = {}
    for name in (*LOWER_IS_BETTER, "r2"):
        new, old = new_metrics[name], champion_metrics[name]
        if name in LOWER_IS_BETTER:
            bound, passed, rule = old * (1 + tolerance), new <= old * (1 + tolerance), "at most"
        else:
            bound = old - tolerance * abs(old)
            passed, rule = new >= bound, "at least"
        metrics[name] = {"new": new, "champion": old, "bound": bound, "rule": rule, "passed": bool(passed)}
    new_buckets, old_buckets = new_labels, champion_labels
    distance = label_distance(new_buckets, old_buckets)
    label = {
        "distance": distance,
        "bound": label_bound,
        "passed": distance <= label_bound,
        "new_buckets": new_buckets,
        "champion_buckets": old_buckets,
    }
    new_size, old_size = new_statistics["dataset"]["item_count"], champion_statistics["dataset"]["item_count"]
    ratio = new_size / old_size if old_size else float("inf")
    size = {
        "new": new_size,
        "champion": old_size,
        "ratio": ratio,
        "bound": size_ratio,
        "passed": 1 / size_ratio <= ratio <= size_ratio,
    }
    failures = [
        f"{name} {m['new']:.4f} vs champion {m['champion']:.4f}: must be {m['rule']} {m['bound']:.4f} "
        f"(tolerance {tolerance:g})"
        for name, m in metrics.items()
        if not m["passed"]
    ]
    if not label["passed"]:
        failures.append(
            f"label distribution ({LABEL}) shifted by {distance:.4f} (L-infinity of the CDFs), bound {label_bound:g}"
        )
    if not size["passed"]:
        failures.append(
            f"training-set size {new_size} vs champion {old_size}: ratio {ratio:.3f} outside "
            f"[{1 / size_ratio:.3f}, {size_ratio:g}]"
        )
    return {"metrics": metrics, "label_distribution": label, "training_size": size, "failures": failures}


def summary(result: dict) -> dict[str, str]:
    """Short strings for the package's metadata (what the approver sees in the registry)."""
    if result["champion"] is None:
        text = "n/a: no Approved champion"
        return {key: text for key in SUMMARY_KEYS} | {"GateResult": "passed (no Approved champion)"}
    if "metrics" not in result:  # the champion could not be compared with (failures says why)
        return {key: "n/a: not compared" for key in SUMMARY_KEYS} | {
            "GateResult": "failed",
            "GateChampion": result["champion"]["arn"],
        }
    metric = lambda m: f"{m['new']:.4f} vs {m['champion']:.4f} ({m['rule']} {m['bound']:.4f})"  # noqa: E731
    label, size = result["label_distribution"], result["training_size"]
    return {
        "GateResult": "passed" if result["passed"] else "failed",
        "GateChampion": result["champion"]["arn"],
        "GateRmse": metric(result["metrics"]["rmse"]),
        "GateMae": metric(result["metrics"]["mae"]),
        "GateR2": metric(result["metrics"]["r2"]),
        "GateLabelShift": f"{label['distance']:.4f} (bound {label['bound']:g})",
        "GateTrainingSize": f"{size['new']} vs {size['champion']} (ratio {size['ratio']:.3f}, bound {size['bound']:g})",
    }


def sha256_of_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _download(s3, uri: str, path: str) -> str:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    s3.download_file(bucket, key, path)
    return path


def champion_of(sagemaker, group: str) -> dict | None:
    """The latest Approved package of the group (DescribeModelPackage), or None."""
    summaries = sagemaker.list_model_packages(
        ModelPackageGroupName=group, ModelApprovalStatus="Approved", SortBy="CreationTime", SortOrder="Descending"
    )["ModelPackageSummaryList"]
    if not summaries:
        return None
    return sagemaker.describe_model_package(ModelPackageName=summaries[0]["ModelPackageArn"])


def champion_files(package: dict, s3, folder: str) -> tuple[str, dict, pd.DataFrame]:
    """(model.tar.gz path, data statistics, test split) of the champion; the model checked against its digest."""
    arn = package["ModelPackageArn"]
    model_uri = package["InferenceSpecification"]["Containers"][0]["ModelDataUrl"]
    pinned = (package.get("CustomerMetadataProperties") or {}).get(METADATA_MODEL_DIGEST)
    if not pinned:
        raise GateError(f"champion {arn} has no pinned {METADATA_MODEL_DIGEST}: pin it (scripts/approve-model pin)")
    model_tar = _download(s3, model_uri, os.path.join(folder, "champion-model.tar.gz"))
    actual = sha256_of_file(model_tar)
    if actual != pinned:
        raise GateError(f"champion {arn} model {model_uri} has SHA-256 {actual}, pinned {pinned}: it was replaced")
    statistics_uri = package.get("DriftCheckBaselines", {}).get("ModelDataQuality", {}).get("Statistics", {})
    if not statistics_uri.get("S3Uri"):
        raise GateError(f"champion {arn} has no DriftCheckBaselines ModelDataQuality Statistics to compare with")
    path = _download(s3, statistics_uri["S3Uri"], os.path.join(folder, "champion-statistics.json"))
    with open(path) as handle:
        statistics = json.load(handle)
    test_uri = (package.get("CustomerMetadataProperties") or {}).get(METADATA_TEST_DATA)
    if not test_uri:
        raise GateError(f"champion {arn} has no {METADATA_TEST_DATA} (its test split) to compare the labels with")
    test_path = _download(s3, test_uri.rstrip("/") + "/test.csv", os.path.join(folder, "champion-test.csv"))
    return model_tar, statistics, pd.read_csv(test_path, header=None)


class GateError(Exception):
    """The champion cannot be compared with: the gate fails, naming why."""


def run(args, sagemaker, s3) -> dict:
    test = pd.read_csv(os.path.join(args.test_dir, "test.csv"), header=None)
    with open(os.path.join(args.statistics_dir, "statistics.json")) as handle:
        new_statistics = json.load(handle)
    new_metrics = score(os.path.join(args.model_dir, "model.tar.gz"), test)
    bounds = {"tolerance": args.tolerance, "label_bound": args.label_bound, "size_ratio": args.size_ratio}
    result = {"champion": None, "new_metrics": new_metrics, "test_rows": int(len(test)), "bounds": bounds}
    package = champion_of(sagemaker, args.group)
    if package is None:
        result.update(passed=1, failures=[], message=f"no Approved champion in {args.group}: the gate passes")
        return result
    result["champion"] = {"arn": package["ModelPackageArn"], "version": package.get("ModelPackageVersion")}
    with tempfile.TemporaryDirectory() as folder:
        try:
            champion_tar, champion_statistics, champion_test = champion_files(package, s3, folder)
        except GateError as error:
            result.update(passed=0, failures=[str(error)], message=f"champion gate failed: {error}")
            return result
        champion_metrics = score(champion_tar, test)
    labels = label_buckets(test.iloc[:, 0]), label_buckets(champion_test.iloc[:, 0])
    result.update(compare(new_metrics, champion_metrics, *labels, new_statistics, champion_statistics, **bounds))
    result["passed"] = 0 if result["failures"] else 1
    champion = f"champion {package['ModelPackageArn']}"
    result["message"] = (
        f"champion gate failed against {champion}: " + "; ".join(result["failures"])
        if result["failures"]
        else f"champion gate passed against {champion}"
    )
    return result


def main(argv: list[str] | None = None, sagemaker=None, s3=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--group", required=True, help="model package group")
    parser.add_argument("--model-dir", default="/opt/ml/processing/model")
    parser.add_argument("--test-dir", default="/opt/ml/processing/test")
    parser.add_argument("--statistics-dir", default="/opt/ml/processing/statistics")
    parser.add_argument("--output-dir", default="/opt/ml/processing/comparison")
    parser.add_argument("--tolerance", type=float, required=True, help="relative: 0.05 allows 5 %% worse")
    parser.add_argument("--label-bound", type=float, required=True, help="largest L-infinity label CDF distance")
    parser.add_argument("--size-ratio", type=float, required=True, help="largest new/champion training-size ratio")
    args = parser.parse_args(argv)
    if sagemaker is None or s3 is None:
        import boto3  # in the container: its role's credentials and region

        sagemaker, s3 = sagemaker or boto3.client("sagemaker"), s3 or boto3.client("s3")
    result = run(args, sagemaker, s3)
    result["summary"] = summary(result)
    os.makedirs(args.output_dir, exist_ok=True)
    with open(os.path.join(args.output_dir, "comparison.json"), "w") as handle:
        json.dump(result, handle, indent=2)
    print(result["message"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
