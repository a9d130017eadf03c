"""The demo's batch inference stages, after production: each run is started by the path that starts it on AWS.

    clean batch lands under prod's input prefix -> S3 "Object Created" -> the input rule -> the batch pipeline
    drifted batch replaces it                   -> the same rule: violations, the drift report, 1 breach
    the nightly schedule fires now              -> the scheduler's path (its role, its parameters): 2 breaches
                                                -> the retraining rule's event -> trigger Lambda -> GitLab build

Each run is followed with the deploy repo's own `batch-run prod --follow ARN`, which prints its drift summary.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

import boto3

from local_aws import LocalStack
from local_demo import batch_triggers, batches

PROJECT = "abalone"
STAGE = "prod"
INPUT_KEY = f"batch-inference/{PROJECT}/{STAGE}/input/batch.csv"  # under the triggers stack's InputPrefix
TRIGGERS_STACK = f"sagemaker-{PROJECT}-batch-{STAGE}"


def follow(run_command: Callable, env: dict[str, str], repo: Path, state_dir: Path, name: str, arn: str) -> dict:
    """The run's drift summary, as `python -m deploy batch-run prod --follow ARN` prints and writes it."""
    out = state_dir / "batch" / f"{name}-summary.json"
    command = [sys.executable, "-m", "deploy", "batch-run", STAGE, "--follow", arn, "--summary-json", str(out)]
    run_command(command, env, repo, f"following the {name} batch run")
    return json.loads(out.read_text())


def land(stack: LocalStack, frame) -> str:
    """Put the day's batch under the input prefix; the execution the bucket's event started through the input rule."""
    print(f"    s3://{stack.env['ARTIFACT_BUCKET']}/{INPUT_KEY} ({len(frame)} rows) -> S3 event -> input rule")
    return batch_triggers.upload_batch(stack, INPUT_KEY, batches.csv_bytes(frame))


def fire_nightly_schedule(stack: LocalStack) -> str:
    """Fire prod's schedule now, by the scheduler's path; the execution it started."""
    cloudformation = stack.client("cloudformation")
    outputs = cloudformation.describe_stacks(StackName=TRIGGERS_STACK)["Stacks"][0].get("Outputs", [])
    name = next(o["OutputValue"] for o in outputs if o["OutputKey"] == "ScheduleName")
    invocation = batch_triggers.fire_schedule(stack, name)
    print(f"    schedule {name} fired now as {invocation.role_arn.rsplit('/', 1)[-1]}")
    return invocation.pipeline_execution_arn


def show(summary: dict, state_dir: Path, name: str) -> Path:
    """The run's violations and distances, and its drift report (PNG + HTML) fetched next to the demo's state."""
    for check, result in summary["checks"].items():
        for violation in result["violations"]:
            feature = violation.get("feature_name") or violation.get("metric_name")
            print(f"    violation ({check}): {feature} {violation['constraint_check_type']}")
    distances = sorted(summary["feature_distances"].items(), key=lambda item: -item[1])
    print("    distances: " + ", ".join(f"{feature} {value:.3f}" for feature, value in distances[:5]))
    s3 = boto3.client("s3")
    execution_id = summary["execution_arn"].rsplit("/", 1)[-1]
    bucket = summary["input_data_url"].removeprefix("s3://").split("/", 1)[0]
    folder = state_dir / "batch" / name
    folder.mkdir(parents=True, exist_ok=True)
    for file in ("drift-report.png", "drift-report.html"):
        key = f"batch-inference/{PROJECT}/{summary['stage']}/executions/{execution_id}/Postprocess/report/{file}"
        s3.download_file(bucket, key, str(folder / file))
    print(f"    drift report: {(folder / 'drift-report.html').as_uri()} (picture: {folder / 'drift-report.png'})")
    return folder / "drift-report.html"


def decision_line(summary: dict) -> str:
    decision = summary["decision"]
    verdict = "RETRAIN: the retraining event was sent" if decision["retrain"] else "no retraining"
    return f"{decision['rule']}: broken in {decision['broken_in_window']} of {decision['runs_in_window']} -> {verdict}"
