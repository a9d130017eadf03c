"""The Model Monitor analyzer's container contract, run in the sandbox with the analyzer image's environment.

SageMaker's `sagemaker-model-monitor-analyzer` image (Spark + Deequ) reads its settings from the environment:
`dataset_format` (JSON), `dataset_source`, `output_path`, `analysis_type` (DATA_QUALITY unless MODEL_QUALITY),
`problem_type`, `inference_attribute`, `ground_truth_attribute`, and, for a drift check, `baseline_statistics`
and `baseline_constraints`. It writes statistics.json, constraints.json and, against a baseline,
constraint_violations.json, in the schemas of the developer guide ("Schema for Statistics", "Schema for
Constraints", "Schema for Violations", "Model quality metrics"). This file computes the same documented figures
with pandas and numpy; byte-identical output is impossible (the image's KLL sketch is randomized).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd

BUCKETS = 10  # "By default, the distribution is materialized in 10 buckets. You can't change this."
KLL_K, KLL_C = 2048, 0.64  # the sketch parameters the analyzer reports
MONITORING_CONFIG = {
    "evaluate_constraints": "Enabled",
    "emit_metrics": "Enabled",
    "datatype_check_threshold": 1.0,
    "domain_content_threshold": 1.0,
    "distribution_constraints": {
        "perform_comparison": "Enabled",
        "comparison_threshold": 0.1,
        "comparison_method": "Robust",
        "categorical_comparison_threshold": 0.1,
        "categorical_drift_method": "LInfinity",
    },
}
MAX_DOMAIN = 20  # string columns with more distinct values get no domain constraint ("for small cardinality")
BOOTSTRAP_ROUNDS, BOOTSTRAP_SEED = 200, 0
# Model quality: regression metric -> the comparison that flags it (higher error, lower r2 is worse).
REGRESSION_OPERATORS = {
    "mae": "GreaterThanThreshold",
    "mse": "GreaterThanThreshold",
    "rmse": "GreaterThanThreshold",
    "r2": "LessThanThreshold",
}


class AnalyzerError(Exception):
    pass


# Reading the data set.
def read_dataset(source: str, dataset_format: dict) -> pd.DataFrame:
    if "sagemakerCaptureJson" in dataset_format:
        return read_captured(source, dataset_format["sagemakerCaptureJson"])
    csv = dataset_format.get("csv")
    if csv is None:
        raise AnalyzerError(f"dataset_format {json.dumps(dataset_format)}: the local analyzer reads csv only")
    root = Path(source)  # the input's folder, as SageMaker mounts it (or one file)
    files = (
        [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))
    )
    if not files:
        raise AnalyzerError(f"no data file under {source}")
    header = bool(csv.get("header"))
    frames = [pd.read_csv(f, header=0 if header else None, dtype=str, keep_default_na=False) for f in files]
    frame = pd.concat(frames, ignore_index=True)
    if not header:  # Spark's names for headerless CSV columns
        frame.columns = [f"_c{i}" for i in range(frame.shape[1])]
    return frame.replace("", np.nan)


def read_captured(source: str, capture_format: dict) -> pd.DataFrame:
    """Endpoint data capture files (SageMaker's JSON lines) as a monitoring job reads them: the CSV rows of each
    record's endpointInput, columns `_c0..` by position (the capture has no header)."""
    import base64

    names = capture_format.get("captureIndexNames") or ["endpointInput"]
    if "endpointInput" not in names:
        raise AnalyzerError(f"captureIndexNames {names}: the local analyzer checks endpointInput only")
    rows = []
    for path in sorted(p for p in Path(source).rglob("*.jsonl") if p.is_file()):
        for line in path.read_text().splitlines():
            if not line.strip():
                continue
            captured = json.loads(line).get("captureData", {}).get("endpointInput")
            if not captured:
                continue
            if captured.get("encoding") not in ("CSV", "BASE64"):
                raise AnalyzerError(f"{path.name}: endpointInput encoding {captured.get('encoding')}: CSV data only")
            data = captured.get("data") or ""
            text = base64.b64decode(data).decode("utf-8") if captured["encoding"] == "BASE64" else data
            rows.extend(row.split(",") for row in text.splitlines() if row.strip())
    if not rows:
        raise AnalyzerError(f"no captured endpointInput record under {source}")
    frame = pd.DataFrame(rows, dtype=str)
    frame.columns = [f"_c{i}" for i in range(frame.shape[1])]
    return frame.apply(lambda column: column.str.strip()).replace("", np.nan)


def inferred_type(column: pd.Series) -> str:
    present = column.dropna()
    if present.empty:
        return "Unknown"
    numbers = pd.to_numeric(present, errors="coerce")
    if numbers.isna().any():
        return "String"
    return (
        "Integral"
        if bool((numbers == np.floor(numbers)).all()) and not present.str.contains(r"[.eE]").any()
        else "Fractional"
    )


# Statistics.
def kll(values: np.ndarray) -> dict:
    low, high = float(values.min()), float(values.max())
    edges = np.linspace(low, high, BUCKETS + 1)
    counts, _ = np.histogram(values, bins=edges)
    buckets = [
        {"lower_bound": float(edges[i]), "upper_bound": float(edges[i + 1]), "count": float(counts[i])}
        for i in range(BUCKETS)
    ]
    ordered = np.sort(values)
    if len(ordered) > KLL_K:  # one compacted level: evenly spaced order statistics
        ordered = ordered[np.linspace(0, len(ordered) - 1, KLL_K).astype(int)]
    return {"buckets": buckets, "sketch": {"parameters": {"c": KLL_C, "k": float(KLL_K)}, "data": [ordered.tolist()]}}


def feature_statistics(name: str, column: pd.Series) -> dict:
    kind = inferred_type(column)
    common = {"num_present": int(column.notna().sum()), "num_missing": int(column.isna().sum())}
    if kind in ("Integral", "Fractional"):
        values = pd.to_numeric(column.dropna()).to_numpy(dtype=float)
        numerical = {
            "common": common,
            "mean": float(values.mean()),
            "sum": float(values.sum()),
            "std_dev": float(values.std()),
            "min": float(values.min()),
            "max": float(values.max()),
            "distribution": {"kll": kll(values)},
        }
        return {"name": name, "inferred_type": kind, "numerical_statistics": numerical}
    counts = column.dropna().value_counts()
    strings = {
        "common": common,
        "distinct_count": float(len(counts)),
        "distribution": {
            "categorical": {"buckets": [{"value": str(v), "count": float(c)} for v, c in sorted(counts.items())]}
        },
    }
    return {"name": name, "inferred_type": kind, "string_statistics": strings}


def data_statistics(frame: pd.DataFrame) -> dict:
    features = [feature_statistics(str(name), frame[name]) for name in frame.columns]
    return {"version": 0.0, "dataset": {"item_count": int(len(frame))}, "features": features}


def data_constraints(statistics: dict) -> dict:
    features = []
    for feature in statistics["features"]:
        stats = feature.get("numerical_statistics") or feature["string_statistics"]
        total = stats["common"]["num_present"] + stats["common"]["num_missing"]
        constraint = {
            "name": feature["name"],
            "inferred_type": feature["inferred_type"],
            "completeness": stats["common"]["num_present"] / total if total else 0.0,
        }
        if "numerical_statistics" in feature:
            constraint["num_constraints"] = {"is_non_negative": stats["min"] >= 0}
        else:
            values = [b["value"] for b in stats["distribution"]["categorical"]["buckets"]]
            if len(values) <= MAX_DOMAIN:
                constraint["string_constraints"] = {"domains": values}
        features.append(constraint)
    return {"version": 0.0, "features": features, "monitoring_config": MONITORING_CONFIG}


def name_by_baseline(frame: pd.DataFrame, baseline_constraints: dict | None, headerless: bool) -> pd.DataFrame:
    """Headerless data (endpoint captures, CSV without a header) takes the baseline's column names by position, as
    Model Monitor maps it: the i-th captured column is the baseline's i-th feature. Columns beyond the baseline's
    keep Spark's `_c<i>` (extra columns); baseline features beyond the data's are missing columns."""
    if not headerless or not baseline_constraints:
        return frame
    names = [feature["name"] for feature in baseline_constraints.get("features", [])]
    frame = frame.copy()
    frame.columns = [names[i] if i < len(names) else f"_c{i}" for i in range(frame.shape[1])]
    return frame


# Violations against a baseline (data quality).
def numeric_drift(baseline: dict, values: np.ndarray) -> float:
    """L-infinity distance of the two CDFs at the baseline's bucket bounds (the KLL buckets the baseline has)."""
    buckets = baseline["numerical_statistics"]["distribution"]["kll"]["buckets"]
    expected = np.cumsum([b["count"] for b in buckets]) / max(sum(b["count"] for b in buckets), 1.0)
    observed = np.array([(values <= b["upper_bound"]).mean() for b in buckets]) if len(values) else expected * 0
    return float(np.max(np.abs(expected - observed)))


def categorical_drift(baseline: dict, column: pd.Series) -> float:
    buckets = {b["value"]: b["count"] for b in baseline["string_statistics"]["distribution"]["categorical"]["buckets"]}
    total = sum(buckets.values()) or 1.0
    observed = column.dropna().value_counts(normalize=True)
    values = set(buckets) | set(observed.index)
    return float(max(abs(buckets.get(v, 0.0) / total - float(observed.get(v, 0.0))) for v in values))


def data_violations(
    frame: pd.DataFrame, baseline_statistics: dict, baseline_constraints: dict, distances: dict | None = None
) -> list[dict]:
    """The violations; `distances` (when given) receives each compared feature's drift distance (for metrics)."""
    distances = {} if distances is None else distances
    violations = []
    config = baseline_constraints.get("monitoring_config", MONITORING_CONFIG)
    expected = [f["name"] for f in baseline_constraints["features"]]
    current = [str(c) for c in frame.columns]
    for check, names, word in (
        ("missing_column_check", set(expected) - set(current), "missing"),
        ("extra_column_check", set(current) - set(expected), "extra"),
    ):
        if names:
            violations.append(
                {
                    "feature_name": ", ".join(sorted(names)),
                    "constraint_check_type": check,
                    "description": f"There are {word} columns in current dataset. Number of columns in "
                    f"current dataset: {len(current)}, Number of columns in baseline constraints: "
                    f"{len(expected)}",
                }
            )
    statistics = {f["name"]: f for f in baseline_statistics.get("features", [])}
    distribution = config.get("distribution_constraints", {})
    for constraint in baseline_constraints["features"]:
        name = constraint["name"]
        if name not in current:
            continue
        column = frame[name]
        present = column.dropna()
        completeness = len(present) / len(column) if len(column) else 0.0
        if completeness < constraint.get("completeness", 0.0):
            violations.append(
                {
                    "feature_name": name,
                    "constraint_check_type": "completeness_check",
                    "description": f"Data completeness requirement is not met. Expected: "
                    f"{constraint['completeness']:.1%}. Observed: Only {completeness:.1%} of data is present.",
                }
            )
        kind = constraint["inferred_type"]
        if kind in ("Integral", "Fractional") and len(present):
            numbers = pd.to_numeric(present, errors="coerce")
            matching = numbers.notna() & ((numbers == np.floor(numbers)) if kind == "Integral" else True)
            share = float(matching.mean())
            if share < config.get("datatype_check_threshold", 1.0):
                violations.append(
                    {
                        "feature_name": name,
                        "constraint_check_type": "data_type_check",
                        "description": f"Data type match requirement is not met. Expected data type: {kind}, "
                        f"Expected match: {config.get('datatype_check_threshold', 1.0):.1%}. Observed: Only "
                        f"{share:.1%} of data is {kind}.",
                    }
                )
                continue
            if constraint.get("num_constraints", {}).get("is_non_negative") and (numbers < 0).any():
                violations.append(
                    {
                        "feature_name": name,
                        "constraint_check_type": "data_type_check",
                        "description": f"Data type match requirement is not met. Expected: non-negative "
                        f"values. Observed: {int((numbers < 0).sum())} negative values.",
                    }
                )
            baseline = statistics.get(name, {})
            if "numerical_statistics" in baseline and distribution.get("perform_comparison") == "Enabled":
                distance = numeric_drift(baseline, numbers.dropna().to_numpy(dtype=float))
                distances[name] = distance
                threshold = distribution.get("comparison_threshold", 0.1)
                if distance > threshold:
                    violations.append(_drift(name, distance, threshold))
        elif kind == "String" and len(present):
            domain = constraint.get("string_constraints", {}).get("domains")
            if domain is not None:
                share = float(present.isin(domain).mean())
                if share < config.get("domain_content_threshold", 1.0):
                    violations.append(
                        {
                            "feature_name": name,
                            "constraint_check_type": "categorical_values_check",
                            "description": f"Value list requirement is not met. Expected: "
                            f"{config.get('domain_content_threshold', 1.0):.1%}. Observed: Only {share:.1%} "
                            f"of data has values in the baseline domain.",
                        }
                    )
            baseline = statistics.get(name, {})
            if "string_statistics" in baseline and distribution.get("perform_comparison") == "Enabled":
                distance = categorical_drift(baseline, column)
                distances[name] = distance
                threshold = distribution.get("categorical_comparison_threshold", 0.1)
                if distance > threshold:
                    violations.append(_drift(name, distance, threshold))
    return violations


def _drift(name: str, distance: float, threshold: float) -> dict:
    return {
        "feature_name": name,
        "constraint_check_type": "baseline_drift_check",
        "description": f"Baseline drift distance: {distance} exceeds threshold: {threshold}",
    }


# Model quality (regression).
def regression_values(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    errors = y_true - y_pred
    mse = float(np.mean(errors**2))
    total = float(np.sum((y_true - y_true.mean()) ** 2))
    r2 = 1.0 - float(np.sum(errors**2)) / total if total else 0.0
    return {"mae": float(np.mean(np.abs(errors))), "mse": mse, "rmse": float(np.sqrt(mse)), "r2": r2}


def model_quality_statistics(frame: pd.DataFrame, environment: dict) -> dict:
    if environment.get("problem_type", "").lower() != "regression":
        raise AnalyzerError(
            f"problem_type {environment.get('problem_type')!r}: the local analyzer does Regression only"
        )
    columns = {}
    for variable in ("inference_attribute", "ground_truth_attribute"):
        name = environment.get(variable)
        if name not in frame.columns:
            raise AnalyzerError(f"{variable} {name!r} is not a column of the data set ({', '.join(frame.columns)})")
        columns[variable] = pd.to_numeric(frame[name], errors="raise").to_numpy(dtype=float)
    y_pred, y_true = columns["inference_attribute"], columns["ground_truth_attribute"]
    values = regression_values(y_true, y_pred)
    # Standard deviations by bootstrap, as the analyzer reports them: the spread of each metric over resamples.
    rng = np.random.RandomState(BOOTSTRAP_SEED)
    samples = [
        regression_values(y_true[i], y_pred[i])
        for i in (rng.randint(0, len(y_true), len(y_true)) for _ in range(BOOTSTRAP_ROUNDS))
    ]
    metrics = {
        name: {"value": value, "standard_deviation": float(np.std([s[name] for s in samples]))}
        for name, value in values.items()
    }
    return {"version": 0.0, "dataset": {"item_count": int(len(frame))}, "regression_metrics": metrics}


def model_quality_constraints(statistics: dict) -> dict:
    metrics = statistics["regression_metrics"]
    return {
        "version": 0.0,
        "regression_constraints": {
            name: {"threshold": metrics[name]["value"], "comparison_operator": operator}
            for name, operator in REGRESSION_OPERATORS.items()
        },
    }


def model_quality_violations(statistics: dict, baseline_constraints: dict) -> list[dict]:
    violations = []
    for name, constraint in baseline_constraints.get("regression_constraints", {}).items():
        value, threshold = statistics["regression_metrics"][name]["value"], constraint["threshold"]
        operator = constraint["comparison_operator"]
        broken = value > threshold if operator == "GreaterThanThreshold" else value < threshold
        if broken:
            violations.append(
                {
                    "constraint_check_type": operator,
                    "metric_name": name,
                    "description": f"Metric {name} with {value} was {operator} '{threshold}'",
                }
            )
    return violations


METRICS_FOLDER = "/opt/ml/output/metrics/cloudwatch"  # what a monitoring container writes for SageMaker to publish


def write_metrics(environment: dict, distances: dict[str, float]) -> None:
    """A monitoring execution's drift metrics, one JSON object a line, as "CloudWatch Metrics for Bring Your Own
    Containers" documents: SageMaker publishes them to aws/sagemaker/Endpoints/data-metrics."""
    dimensions = [
        {"Name": "Endpoint", "Value": environment["sagemaker_endpoint_name"]},
        {"Name": "MonitoringSchedule", "Value": environment.get("sagemaker_monitoring_schedule_name", "")},
    ]
    timestamp = environment.get("metric_time") or environment.get("end_time") or ""
    folder = Path(environment.get("local_stack_metrics_folder", METRICS_FOLDER))
    folder.mkdir(parents=True, exist_ok=True)
    lines = [
        json.dumps(
            {
                "MetricName": f"feature_baseline_drift_{name}",
                "Timestamp": timestamp,
                "Dimensions": dimensions,
                "Value": float(distance),
            }
        )
        for name, distance in sorted(distances.items())
    ]
    (folder / "metrics.json").write_text("".join(line + "\n" for line in lines))


def _read(path: str | None) -> dict | None:
    return json.loads(Path(path).read_text()) if path else None


def main() -> int:
    environment = dict(os.environ)
    output = Path(environment.get("output_path", "/opt/ml/processing/output"))
    distances: dict[str, float] = {}
    try:
        dataset_format = json.loads(environment["dataset_format"])
        frame = read_dataset(environment["dataset_source"], dataset_format)
        baseline_statistics = _read(environment.get("baseline_statistics"))
        baseline_constraints = _read(environment.get("baseline_constraints"))
        headerless = "sagemakerCaptureJson" in dataset_format or not (dataset_format.get("csv") or {}).get("header")
        if environment.get("analysis_type") == "MODEL_QUALITY":
            statistics = model_quality_statistics(frame, environment)
            constraints = model_quality_constraints(statistics)
            violations = model_quality_violations(statistics, baseline_constraints) if baseline_constraints else None
        else:
            frame = name_by_baseline(frame, baseline_constraints, headerless)
            statistics = data_statistics(frame)
            constraints = data_constraints(statistics)
            violations = (
                data_violations(frame, baseline_statistics or {}, baseline_constraints, distances)
                if baseline_constraints
                else None
            )
    except (AnalyzerError, KeyError, ValueError) as error:
        Path("/opt/ml/output").mkdir(parents=True, exist_ok=True)
        Path("/opt/ml/output/failure").write_text(f"AlgorithmError: {error}")
        print(f"analyzer failed: {error}", file=sys.stderr)
        return 1
    output.mkdir(parents=True, exist_ok=True)
    (output / "statistics.json").write_text(json.dumps(statistics, indent=2))
    (output / "constraints.json").write_text(json.dumps(constraints, indent=2))
    if violations is not None:
        (output / "constraint_violations.json").write_text(json.dumps({"violations": violations}, indent=2))
    if environment.get("publish_cloudwatch_metrics") == "Enabled" and environment.get("sagemaker_endpoint_name"):
        write_metrics(environment, distances)
    print(
        f"analyzer: {len(frame)} rows, {frame.shape[1]} columns"
        + (f", {len(violations)} violation(s)" if violations is not None else ", no baseline to check against")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
