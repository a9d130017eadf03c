"""Batch inference Postprocess step: predictions, one drift summary per run, the retraining rule and its event.

Runs in the SageMaker scikit-learn image (pandas, numpy, boto3; matplotlib for the report). Self-contained on
purpose: SageMaker uploads this one file. Inputs (under /opt/ml/processing/input/): the Transform's `.out`
files, the feature shards, the two drift checks' outputs and the package's baselines. Outputs (in /opt/ml/processing/):
- predictions/predictions.csv: one prediction a line, in input order (shard by shard), nothing else;
- summary/drift-summary.json: checks that ran, their violations, per-feature distances, the attribution nDCG,
  and the retraining decision;
- report/drift-report.png and report/drift-report.html: the drift picture, per feature the baseline's distribution
  against the batch's (numeric: the share of rows in each of the baseline's KLL buckets; categorical: the share of
  each value), titled with the feature's distance, drifted features in red; the HTML adds the violations and the
  decision, with the PNG inline (one self-contained file).
The run's record goes to the history prefix in S3 (one object per execution, beside the outputs), so the rule
"the threshold is broken in N of the last M runs" survives restarts and sees runs of every trigger. When the rule
says retrain, the step puts an EventBridge event (DETAIL_TYPE) on the bus; a rule in the project template
targets retraining. A run with violations or a broken threshold that does not (yet) retrain puts
DRIFT_DETAIL_TYPE instead, for the drift alert. Each event's detail: project, stage, model_package_arn,
execution_arn, max_feature_distance, attribution_ndcg, violation_count, decision, input_data_url.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlparse

import numpy as np

ROOT = Path("/opt/ml/processing")
DETAIL_TYPE = "Batch Inference Retraining Recommended"
DRIFT_DETAIL_TYPE = "Batch Inference Drift Detected"


def source_name(project: str) -> str:
    return f"mlops.{project}.batch-inference"  # custom sources may not start with "aws."


def read_json(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def find(folder: Path, name: str) -> Path:
    found = sorted(folder.rglob(name))
    return found[0] if found else folder / name


def predictions(prediction_dir: Path, feature_dir: Path) -> list[str]:
    """The predictions in input order; each shard must come back with exactly one prediction per row."""
    lines = []
    for shard in sorted(p for p in feature_dir.rglob("*.csv")):
        rows = [line for line in shard.read_text().splitlines() if line.strip()]
        out = find(prediction_dir, f"{shard.name}.out")
        if not out.is_file():
            raise SystemExit(f"Postprocess: no transform output {shard.name}.out for shard {shard.name}")
        answers = [line for line in out.read_text().splitlines() if line.strip()]
        if len(answers) != len(rows):
            raise SystemExit(f"Postprocess: {shard.name} has {len(rows)} rows but {len(answers)} predictions")
        lines += answers
    return lines


def cdf_distance(baseline: dict, current: dict) -> float:
    """Numeric drift: L-infinity distance of the CDFs at the baseline's KLL bucket bounds (as Model Monitor)."""
    buckets = baseline["numerical_statistics"]["distribution"]["kll"]["buckets"]
    total = max(sum(b["count"] for b in buckets), 1.0)
    expected = np.cumsum([b["count"] for b in buckets]) / total
    sketch = current["numerical_statistics"]["distribution"]["kll"]
    values = np.concatenate([np.asarray(level, dtype=float) for level in sketch["sketch"]["data"]])
    if not len(values):
        return 1.0
    observed = np.array([(values <= b["upper_bound"]).mean() for b in buckets])
    return float(np.max(np.abs(expected - observed)))


def categorical_distance(baseline: dict, current: dict) -> float:
    def shares(statistics: dict) -> dict[str, float]:
        buckets = statistics["string_statistics"]["distribution"]["categorical"]["buckets"]
        total = sum(b["count"] for b in buckets) or 1.0
        return {b["value"]: b["count"] / total for b in buckets}

    expected, observed = shares(baseline), shares(current)
    return float(max(abs(expected.get(v, 0.0) - observed.get(v, 0.0)) for v in set(expected) | set(observed)))


def feature_distances(baseline_statistics: dict, current_statistics: dict) -> dict[str, float]:
    """Per-feature baseline distances, for every feature in both statistics files (not only the violated ones)."""
    baseline = {f["name"]: f for f in baseline_statistics.get("features", [])}
    distances = {}
    for feature in current_statistics.get("features", []):
        base = baseline.get(feature["name"])
        if base is None:
            continue
        if "numerical_statistics" in base and "numerical_statistics" in feature:
            distances[feature["name"]] = round(cdf_distance(base, feature), 6)
        elif "string_statistics" in base and "string_statistics" in feature:
            distances[feature["name"]] = round(categorical_distance(base, feature), 6)
    return distances


def global_shap(analysis: dict) -> dict[str, float]:
    return analysis["explanations"]["kernel_shap"]["label0"]["global_shap_values"]


def ndcg(baseline: dict[str, float], current: dict[str, float]) -> float:
    """Clarify's feature attribution drift score: DCG of the current ranking with the baseline's attributions as
    gains, over the DCG of the baseline's own ranking ("Feature attribution drift violations")."""
    ideal = sorted(baseline, key=lambda f: -abs(baseline[f]))
    ranked = sorted(current, key=lambda f: -abs(current[f]))

    def gain(order: list[str]) -> float:
        return sum(abs(baseline.get(f, 0.0)) / math.log2(i + 2) for i, f in enumerate(order))

    return gain(ranked) / gain(ideal) if gain(ideal) else 1.0


def check_result(folder: Path) -> dict:
    report = read_json(find(folder, "constraint_violations.json"))
    return {"ran": report is not None, "violations": (report or {}).get("violations", [])}


def summarize(args: argparse.Namespace, inputs: Path, rows: int) -> dict:
    data = check_result(inputs / "data_drift")
    attribution = check_result(inputs / "attribution_drift")
    baseline_statistics = read_json(find(inputs / "baseline_statistics", "*.json")) or {}
    current_statistics = read_json(find(inputs / "data_drift", "statistics.json")) or {}
    distances = feature_distances(baseline_statistics, current_statistics)
    baseline_analysis = read_json(find(inputs / "baseline_explainability", "*.json"))
    current_analysis = read_json(find(inputs / "attribution_drift", "analysis.json"))
    score = (
        ndcg(global_shap(baseline_analysis), global_shap(current_analysis))
        if baseline_analysis and current_analysis
        else None
    )
    max_distance = max(distances.values(), default=0.0)
    breached = {
        "distance": max_distance > args.distance_threshold,
        "ndcg": score is not None and score < args.ndcg_threshold,
    }
    return {
        "execution_id": args.execution_id,
        "execution_arn": args.execution_arn,
        "time": datetime.now(UTC).isoformat(),  # microseconds: runs in the same second keep their order
        "project": args.project,
        "stage": args.stage,
        "model_package_arn": args.model_package_arn,
        "input_data_url": args.input_data_url,
        "rows": rows,
        "checks": {"data_quality": data, "feature_attribution": attribution},
        "violation_count": len(data["violations"]) + len(attribution["violations"]),
        "feature_distances": distances,
        "max_feature_distance": max_distance,
        "attribution_ndcg": None if score is None else round(score, 6),
        "thresholds": {"distance": args.distance_threshold, "ndcg": args.ndcg_threshold},
        "breached": breached,
        "breach": any(breached.values()),
    }


def distributions(baseline: dict, current: dict) -> tuple[list[str], list[float], list[float]] | None:
    """One feature's bins (labels), the baseline's and the batch's shares per bin; None when the two cannot meet."""
    if "numerical_statistics" in baseline and "numerical_statistics" in current:
        buckets = baseline["numerical_statistics"]["distribution"]["kll"]["buckets"]
        total = max(sum(b["count"] for b in buckets), 1.0)
        sketch = current["numerical_statistics"]["distribution"]["kll"]["sketch"]["data"]
        values = np.concatenate([np.asarray(level, dtype=float) for level in sketch]) if sketch else np.array([])
        edges = [buckets[0]["lower_bound"]] + [b["upper_bound"] for b in buckets]
        # Outside the baseline's range counts in the first or last bucket: a shift shows as a pile at the edge.
        counts = (
            np.histogram(np.clip(values, edges[0], edges[-1]), bins=edges)[0] if len(values) else np.zeros(len(buckets))
        )
        labels = [f"{b['lower_bound']:.3g}" for b in buckets]
        return labels, [b["count"] / total for b in buckets], list(counts / max(counts.sum(), 1))
    if "string_statistics" in baseline and "string_statistics" in current:

        def shares(statistics: dict) -> dict[str, float]:
            buckets = statistics["string_statistics"]["distribution"]["categorical"]["buckets"]
            total = sum(b["count"] for b in buckets) or 1.0
            return {b["value"]: b["count"] / total for b in buckets}

        expected, observed = shares(baseline), shares(current)
        labels = sorted(set(expected) | set(observed))
        return labels, [expected.get(v, 0.0) for v in labels], [observed.get(v, 0.0) for v in labels]
    return None


def drift_report(baseline_statistics: dict, current_statistics: dict, summary: dict, folder: Path) -> list[Path]:
    """The drift picture of this run: drift-report.png and drift-report.html in `folder`."""
    import base64
    import html

    # A bare Figure, not pyplot: no GUI backend or global figure state to set up (pyplot's import alone is ~0.2 s);
    # savefig renders the PNG with Agg.
    from matplotlib.figure import Figure

    baseline = {f["name"]: f for f in baseline_statistics.get("features", [])}
    panels = []
    for feature in current_statistics.get("features", []):
        if feature["name"] in baseline and (found := distributions(baseline[feature["name"]], feature)):
            panels.append((feature["name"], *found))
    distances, threshold = summary["feature_distances"], summary["thresholds"]["distance"]
    violated = {v.get("feature_name") for v in summary["checks"]["data_quality"]["violations"]}
    columns = 3
    rows = max(1, math.ceil(len(panels) / columns))
    figure = Figure(figsize=(4.2 * columns, 2.8 * rows))
    axes = figure.subplots(rows, columns, squeeze=False)
    for axis, (name, labels, expected, observed) in zip(axes.flat, panels, strict=False):
        positions = np.arange(len(labels))
        axis.bar(positions - 0.2, expected, width=0.4, label="baseline", color="#4c72b0")
        axis.bar(positions + 0.2, observed, width=0.4, label="batch", color="#dd8452")
        axis.set_xticks(positions, labels, rotation=45, fontsize=6)
        axis.tick_params(axis="y", labelsize=7)
        distance = distances.get(name, 0.0)
        drifted = distance > threshold or name in violated
        axis.set_title(f"{name}: distance {distance:.3f}", fontsize=9, color="#c0392b" if drifted else "black")
    for axis in list(axes.flat)[len(panels) :]:
        axis.axis("off")
    axes.flat[0].legend(fontsize=7)
    figure.suptitle(
        f"{summary['project']} {summary['stage']} batch {summary['execution_id']}: {summary['rows']} rows, "
        f"{summary['violation_count']} violation(s), attribution nDCG {summary['attribution_ndcg']}",
        fontsize=10,
    )
    # Fixed margins in inches, not tight_layout: it lays the figure out by drawing it, about half the report's
    # time, on every run (the panels' size never changes, so neither do the margins it would find).
    height = 2.8 * rows
    figure.subplots_adjust(left=0.05, right=0.99, top=1 - 0.75 / height, bottom=0.45 / height, wspace=0.18, hspace=0.37)
    folder.mkdir(parents=True, exist_ok=True)
    png = folder / "drift-report.png"
    figure.savefig(png, dpi=90)
    violations = "".join(
        f"<tr><td>{html.escape(check)}</td><td>{html.escape(str(v.get('feature_name') or v.get('metric_name')))}</td>"
        f"<td>{html.escape(v['constraint_check_type'])}</td><td>{html.escape(str(v.get('description', '')))}</td></tr>"
        for check, result in summary["checks"].items()
        for v in result["violations"]
    )
    table = "".join(
        f"<tr><td>{html.escape(name)}</td><td>{value:.3f}</td><td>{'drifted' if value > threshold else ''}</td></tr>"
        for name, value in sorted(distances.items(), key=lambda item: -item[1])
    )
    decision = summary.get("decision") or {}
    picture = base64.b64encode(png.read_bytes()).decode()
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Drift report {html.escape(summary["execution_id"])}</title></head>
<body style="font-family: sans-serif">
<h1>Batch drift report: {html.escape(summary["project"])} {html.escape(summary["stage"])}</h1>
<p>Execution {html.escape(summary["execution_arn"])}<br>Model package {html.escape(summary["model_package_arn"])}<br>
Input {html.escape(str(summary["input_data_url"]))}: {summary["rows"]} rows</p>
<p>Max feature distance {summary["max_feature_distance"]:.3f} (threshold {threshold}); attribution nDCG
{summary["attribution_ndcg"]} (threshold {summary["thresholds"]["ndcg"]}).
Retraining rule ({html.escape(str(decision.get("rule", "")))}): broken in {decision.get("broken_in_window")} of
{decision.get("runs_in_window")}: <b>{"retrain" if decision.get("retrain") else "no retraining"}</b></p>
<img alt="per-feature baseline and batch distributions" src="data:image/png;base64,{picture}">
<h2>Violations ({summary["violation_count"]})</h2>
<table border="1"><tr><th>check</th><th>feature</th><th>type</th><th>description</th></tr>{violations}</table>
<h2>Feature distances</h2>
<table border="1"><tr><th>feature</th><th>distance</th><th></th></tr>{table}</table>
</body></html>
"""
    page_path = folder / "drift-report.html"
    page_path.write_text(page)
    return [png, page_path]


def split_uri(uri: str) -> tuple[str, str]:
    parsed = urlparse(uri)
    return parsed.netloc, parsed.path.lstrip("/")


def history(s3, history_uri: str) -> list[dict]:
    """Every earlier run's record under the history prefix, oldest first."""
    bucket, prefix = split_uri(history_uri)
    records = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            records.append(json.loads(s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()))
    return sorted(records, key=lambda r: (r["time"], r["execution_id"]))


def decide(records: list[dict], breaches: int, window: int) -> dict:
    """Retrain when the threshold was broken in at least `breaches` of the last `window` runs (this one included).

    The window holds only runs that scored with this run's model version, and only those since the last retraining
    request for it: a new version starts with an empty window (the old version's drift is not its own), and one
    request per trend, not one per drifted run while the retrained version is being built and approved.
    """
    current = records[-1]
    mine = [r for r in records if r.get("model_package_arn") == current.get("model_package_arn")]
    requested = [i for i, r in enumerate(mine[:-1]) if r.get("retrain")]
    if requested:
        mine = mine[requested[-1] + 1 :]
    recent = mine[-window:]
    broken = sum(1 for r in recent if r["breach"])
    return {
        "retrain": broken >= breaches,
        "rule": f"threshold broken in {breaches} of the last {window} runs",
        "broken_in_window": broken,
        "runs_in_window": len(recent),
        "window_executions": [r["execution_id"] for r in recent],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in (
        "execution-id",
        "execution-arn",
        "history-uri",
        "input-data-url",
        "project",
        "stage",
        "model-package-arn",
        "event-bus",
    ):
        parser.add_argument(f"--{name}", required=True)
    parser.add_argument("--distance-threshold", type=float, required=True)
    parser.add_argument("--ndcg-threshold", type=float, required=True)
    parser.add_argument("--breaches", type=int, required=True)
    parser.add_argument("--window", type=int, required=True)
    parser.add_argument("--root", type=Path, default=ROOT)
    args = parser.parse_args(argv)
    if not 1 <= args.breaches <= args.window:
        raise SystemExit(
            f"Postprocess: RetrainBreaches {args.breaches} must be between 1 and RetrainWindow {args.window}"
        )
    import boto3

    inputs = args.root / "input"
    lines = predictions(inputs / "predictions", inputs / "features")
    (args.root / "predictions").mkdir(parents=True, exist_ok=True)
    (args.root / "predictions" / "predictions.csv").write_text("\n".join(lines) + "\n")
    summary = summarize(args, inputs, len(lines))
    s3 = boto3.client("s3")
    record = {
        key: summary[key]
        for key in (
            "execution_id",
            "time",
            "breach",
            "max_feature_distance",
            "attribution_ndcg",
            "violation_count",
            "model_package_arn",
        )
    }
    bucket, prefix = split_uri(args.history_uri)
    earlier = [r for r in history(s3, args.history_uri) if r["execution_id"] != args.execution_id]
    summary["decision"] = decide([*earlier, record], args.breaches, args.window)
    record["retrain"] = summary["decision"]["retrain"]
    s3.put_object(Bucket=bucket, Key=f"{prefix}{record['time']}-{args.execution_id}.json", Body=json.dumps(record))
    drifted = summary["violation_count"] > 0 or summary["breach"]
    if summary["decision"]["retrain"] or drifted:
        detail_type = DETAIL_TYPE if summary["decision"]["retrain"] else DRIFT_DETAIL_TYPE
        answer = boto3.client("events").put_events(
            Entries=[
                {
                    "Source": source_name(args.project),
                    "DetailType": detail_type,
                    "Detail": json.dumps(
                        {
                            key: summary[key]
                            for key in (
                                "project",
                                "stage",
                                "model_package_arn",
                                "execution_arn",
                                "max_feature_distance",
                                "attribution_ndcg",
                                "violation_count",
                                "decision",
                                "input_data_url",
                            )
                        }
                    ),
                    "EventBusName": args.event_bus,
                    "Resources": [args.execution_arn],
                }
            ]
        )
        if answer.get("FailedEntryCount"):
            raise SystemExit(f"Postprocess: PutEvents refused the {detail_type!r} event: {answer['Entries']}")
        summary["decision"]["event_id"] = answer["Entries"][0].get("EventId")
        summary["decision"]["event_detail_type"] = detail_type
    (args.root / "summary").mkdir(parents=True, exist_ok=True)
    (args.root / "summary" / "drift-summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    drift_report(
        read_json(find(inputs / "baseline_statistics", "*.json")) or {},
        read_json(find(inputs / "data_drift", "statistics.json")) or {},
        summary,
        args.root / "report",
    )
    print(
        f"Postprocess: {len(lines)} predictions, {summary['violation_count']} violation(s), max distance "
        f"{summary['max_feature_distance']:.3f}, nDCG {summary['attribution_ndcg']}; "
        f"{summary['decision']['rule']}: {summary['decision']['broken_in_window']} -> "
        f"{'retrain' if summary['decision']['retrain'] else 'no retraining'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
