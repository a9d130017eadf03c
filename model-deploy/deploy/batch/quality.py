"""Model-quality pipeline steps: join late labels to a batch run's predictions (`join`), then summarize the
MODEL_QUALITY check against the package's baseline (`summarize`).

Runs in the SageMaker scikit-learn image (pandas, numpy, boto3). Self-contained on purpose: SageMaker uploads
this one file. The ground-truth contract (model-deploy/README.md, "Model quality with late labels"):
- a label file is a CSV with a header and at least the columns `record_id` and the label (`rings`);
- it lies in a folder named after the batch execution whose predictions it labels:
  `<GroundTruthUrl>.../<batch-execution-id>/<any name>.csv` (the id is the last part of the batch run's
  PipelineExecutionArn, the folder its outputs live under: `executions/<id>/`);
- `record_id` is the row's 0-based position in that batch's input, counting data rows across its input objects
  in key order: the line number (from 0) of that run's `Postprocess/predictions/predictions.csv`;
- every prediction of the batch gets exactly one label: a missing, repeated or unknown record id is an error that
  names the file and the ids, and the run fails before anything is checked.
Outputs (under /opt/ml/processing/): joined/joined.csv (`prediction,<label>` with a header, the check's data
set), report/join-report.json (what was joined), and later summary/quality-summary.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlparse

import pandas as pd

ROOT = Path("/opt/ml/processing")
RECORD_ID = "record_id"
PREDICTION = "prediction"
MAX_LISTED = 10  # ids named in an error message


class LabelError(ValueError):
    """The labels do not fit the predictions; the message names the file, the problem and the fix."""


def split_uri(uri: str) -> tuple[str, str]:
    parsed = urlparse(uri)
    return parsed.netloc, parsed.path.lstrip("/")


def _ids(values) -> str:
    values = sorted(values)
    listed = ", ".join(str(v) for v in values[:MAX_LISTED])
    return listed + (f" and {len(values) - MAX_LISTED} more" if len(values) > MAX_LISTED else "")


def label_files(folder: Path, ground_truth_url: str) -> dict[str, list[tuple[str, Path]]]:
    """Batch execution id -> [(S3 URI, local path)] of the label files under the mounted GroundTruthUrl."""
    base = ground_truth_url.rstrip("/")
    found: dict[str, list[tuple[str, Path]]] = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")):
        uri = f"{base}/{path.relative_to(folder).as_posix()}"
        if not path.name.endswith(".csv"):
            raise LabelError(f"{uri}: label files are CSV files named *.csv; move or rename it")
        execution_id = uri.rsplit("/", 2)[-2]
        if execution_id in ("ground-truth", ""):
            raise LabelError(
                f"{uri} lies directly under the ground-truth prefix: put it in a folder named after the batch "
                "execution it labels, .../ground-truth/<batch-execution-id>/"
            )
        found.setdefault(execution_id, []).append((uri, path))
    if not found:
        raise LabelError(f"no label file under {ground_truth_url}: expected .../<batch-execution-id>/<name>.csv")
    return found


def read_labels(files: list[tuple[str, Path]], label: str) -> pd.DataFrame:
    """One execution's labels, `record_id` -> label, from all its files; refuses bad and repeated ids."""
    frames = []
    for uri, path in files:
        try:
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
        except pd.errors.EmptyDataError:
            expected = f"a header {RECORD_ID},{label} and one row per prediction"
            raise LabelError(f"{uri} is empty: expected {expected}") from None
        frame.columns = [str(c).strip() for c in frame.columns]
        missing = [c for c in (RECORD_ID, label) if c not in frame.columns]
        if missing:
            raise LabelError(
                f"{uri}: no column {', '.join(missing)} (header: {', '.join(frame.columns)}); a label file needs a "
                f"header with {RECORD_ID} (the row's 0-based position in the batch input) and {label}"
            )
        ids = pd.to_numeric(frame[RECORD_ID], errors="coerce")
        bad = frame.index[ids.isna() | (ids != ids.round())]
        if len(bad):
            raise LabelError(
                f"{uri}: {RECORD_ID} must be a whole number, the row's 0-based position in the batch input "
                f"(data lines {_ids(i + 2 for i in bad)})"
            )
        values = pd.to_numeric(frame[label], errors="coerce")
        bad = frame.index[values.isna()]
        if len(bad):
            raise LabelError(f"{uri}: {label} must be a number (data lines {_ids(i + 2 for i in bad)})")
        frames.append(pd.DataFrame({RECORD_ID: ids.astype(int), label: values, "file": uri}))
    labels = pd.concat(frames, ignore_index=True)
    repeated = labels[labels.duplicated(RECORD_ID, keep=False)]
    if len(repeated):
        raise LabelError(
            f"{', '.join(sorted(set(repeated['file'])))}: {RECORD_ID} {_ids(set(repeated[RECORD_ID]))} labelled more "
            "than once; keep one label per record"
        )
    return labels


def join(predictions: list[float], labels: pd.DataFrame, label: str, execution_id: str) -> pd.DataFrame:
    """`prediction,<label>` in record order; every prediction labelled once, no label without a prediction."""
    count = len(predictions)
    files = ", ".join(sorted(set(labels["file"])))
    unknown = set(labels[RECORD_ID]) - set(range(count))
    if unknown:
        raise LabelError(
            f"{files}: {RECORD_ID} {_ids(unknown)} not in batch execution {execution_id}, which has {count} "
            f"predictions (record ids 0 to {count - 1}); check that the labels are for this batch run"
        )
    missing = set(range(count)) - set(labels[RECORD_ID])
    if missing:
        raise LabelError(
            f"{files}: {len(missing)} of the {count} predictions of batch execution {execution_id} have no label "
            f"({RECORD_ID} {_ids(missing)}); send one label per prediction, or wait until all have arrived"
        )
    ordered = labels.set_index(RECORD_ID).sort_index()
    return pd.DataFrame({PREDICTION: predictions, label: ordered[label].to_numpy()})


def read_s3_text(s3, uri: str) -> str | None:
    bucket, key = split_uri(uri)
    try:
        return s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
    except s3.exceptions.NoSuchKey:
        return None


def run_join(args: argparse.Namespace, s3) -> dict:
    files = label_files(args.root / "input" / "ground_truth", args.ground_truth_url)
    joined, executions, skipped = [], [], []
    for execution_id, paths in sorted(files.items()):
        run = f"{args.batch_root.rstrip('/')}/executions/{execution_id}/Postprocess"
        summary_text = read_s3_text(s3, f"{run}/summary/drift-summary.json")
        text = read_s3_text(s3, f"{run}/predictions/predictions.csv")
        if text is None or summary_text is None:
            raise LabelError(
                f"{paths[0][0]}: no batch execution {execution_id} with predictions under "
                f"{args.batch_root}/executions/: "
                "name the label folder after the batch run's execution id (the last part of its PipelineExecutionArn)"
            )
        scored_with = json.loads(summary_text).get("model_package_arn")
        if scored_with != args.model_package_arn:  # another version's predictions: not this baseline's to judge
            skipped.append({"execution_id": execution_id, "model_package_arn": scored_with})
            continue
        predictions = [float(line) for line in text.splitlines() if line.strip()]
        frame = join(predictions, read_labels(paths, args.label), args.label, execution_id)
        joined.append(frame)
        executions.append({"execution_id": execution_id, "rows": len(frame), "label_files": [u for u, _ in paths]})
    if not joined:
        raise LabelError(
            f"the labels under {args.ground_truth_url} are all for batch runs scored with other versions "
            f"({', '.join(s['execution_id'] for s in skipped)}); this pipeline checks {args.model_package_arn}"
        )
    (args.root / "joined").mkdir(parents=True, exist_ok=True)
    pd.concat(joined, ignore_index=True).to_csv(args.root / "joined" / "joined.csv", index=False)
    report = {
        "ground_truth_url": args.ground_truth_url,
        "model_package_arn": args.model_package_arn,
        "rows": sum(e["rows"] for e in executions),
        "batch_executions": executions,
        "skipped_other_versions": skipped,
    }
    (args.root / "report").mkdir(parents=True, exist_ok=True)
    (args.root / "report" / "join-report.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"Join: {report['rows']} labelled predictions from {len(executions)} batch run(s), {len(skipped)} skipped")
    return report


def read_json(folder: Path, name: str) -> dict | None:
    found = sorted(folder.rglob(name))
    return json.loads(found[0].read_text()) if found else None


def summarize(inputs: Path, execution_id: str) -> dict:
    """Each metric beside the baseline's value and threshold, and the check's violations."""
    report = read_json(inputs / "join", "join-report.json") or {}
    statistics = read_json(inputs / "check", "statistics.json")
    if statistics is None:
        raise LabelError(f"no statistics.json from the model-quality check under {inputs / 'check'}")
    report_of_check = read_json(inputs / "check", "constraint_violations.json")
    if report_of_check is None:  # the check compares against the package's baseline: it always writes one
        raise LabelError(f"no constraint_violations.json from the model-quality check under {inputs / 'check'}")
    violations = report_of_check.get("violations", [])
    baseline = (read_json(inputs / "baseline_statistics", "*.json") or {}).get("regression_metrics", {})
    constraints = (read_json(inputs / "baseline_constraints", "*.json") or {}).get("regression_constraints", {})
    violated = {v.get("metric_name") for v in violations}
    metrics = {
        name: {
            "value": metric["value"],
            "baseline": baseline.get(name, {}).get("value"),
            "threshold": constraints.get(name, {}).get("threshold"),
            "comparison_operator": constraints.get(name, {}).get("comparison_operator"),
            "violated": name in violated,
        }
        for name, metric in statistics.get("regression_metrics", {}).items()
    }
    return {
        "execution_id": execution_id,
        "time": datetime.now(UTC).isoformat(),
        "model_package_arn": report.get("model_package_arn"),
        "ground_truth_url": report.get("ground_truth_url"),
        "rows": report.get("rows"),
        "batch_executions": report.get("batch_executions", []),
        "skipped_other_versions": report.get("skipped_other_versions", []),
        "metrics": metrics,
        "violations": violations,
        "violation_count": len(violations),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("join", "summarize"))
    parser.add_argument("--root", type=Path, default=ROOT)
    parser.add_argument("--ground-truth-url")
    parser.add_argument("--batch-root", help="s3://<bucket>/batch-inference/<project>/<stage>")
    parser.add_argument("--model-package-arn")
    parser.add_argument("--label", default="rings")
    parser.add_argument("--execution-id")
    args = parser.parse_args(argv)
    try:
        if args.mode == "join":
            import boto3

            run_join(args, boto3.client("s3"))
        else:
            summary = summarize(args.root / "input", args.execution_id)
            (args.root / "summary").mkdir(parents=True, exist_ok=True)
            (args.root / "summary" / "quality-summary.json").write_text(json.dumps(summary, indent=2) + "\n")
            print(f"Model quality: {summary['rows']} labelled rows, {summary['violation_count']} violation(s)")
    except LabelError as error:
        # A processing container's reason, as SageMaker reports it in FailureReason.
        failure = args.root.parent / "output" / "failure"  # /opt/ml/output/failure
        failure.parent.mkdir(parents=True, exist_ok=True)
        failure.write_text(f"AlgorithmError: {error}")
        print(f"Model quality {args.mode} failed: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
