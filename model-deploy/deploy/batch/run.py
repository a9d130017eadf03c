"""batch-run STAGE: start the stage's batch inference pipeline once, follow it, print its drift summary (boto3 only).

The same StartPipelineExecution the schedule and the S3 rule make; parameters default to the stage's
batch-config.json, `-p NAME=VALUE` wins.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from deploy import aws, registry
from deploy.batch import definition
from deploy.environment import Environment
from deploy.errors import DeployError
from deploy.paths import REPO_DIR

TERMINAL = ("Succeeded", "Failed", "Stopped")


def stage_settings(stage: str, repo_dir: Path = REPO_DIR) -> dict:
    settings = json.loads((repo_dir / "batch-config.json").read_text())
    if stage not in settings:
        raise DeployError(f"batch-config.json has no settings for stage {stage!r}")
    return settings[stage]


def summary_uri(environment: Environment, stage: str, execution_arn: str) -> str:
    execution_id = execution_arn.rsplit("/", 1)[-1]
    return (
        f"s3://{environment.artifact_bucket}/batch-inference/{environment.project_name}/{stage}/executions/"
        f"{execution_id}/Postprocess/summary/drift-summary.json"
    )


def pinned_package(sagemaker, pipeline: str) -> str:
    """The package the pipeline scores with: its Transform's Model's container, fixed in the definition."""
    document = json.loads(sagemaker.describe_pipeline(PipelineName=pipeline)["PipelineDefinition"])
    transform = next((step for step in document["Steps"] if step["Type"] == "Transform"), None)
    if transform is None:
        raise DeployError(f"pipeline {pipeline} has no Transform step: not a batch inference pipeline")
    model = sagemaker.describe_model(ModelName=transform["Arguments"]["ModelName"])
    container = model.get("PrimaryContainer") or (model.get("Containers") or [{}])[0]
    return container.get("ModelPackageName", "")


def start(environment: Environment, stage: str, parameters: dict[str, str]) -> str:
    """StartPipelineExecution, after checking that the version the pipeline pins is still Approved."""
    sagemaker = aws.client("sagemaker", environment.region)
    pipeline = definition.pipeline_name(environment.project_name, stage)
    package_arn = pinned_package(sagemaker, pipeline)
    # A rejected version is never scored: not by its triggers (disabled or repointed), not by hand either.
    registry.require_still_approved(sagemaker, package_arn)
    return sagemaker.start_pipeline_execution(
        PipelineName=definition.pipeline_name(environment.project_name, stage),
        PipelineExecutionDescription=os.environ.get("CI_PIPELINE_URL") or "batch-run outside GitLab CI",
        PipelineParameters=[{"Name": name, "Value": str(value)} for name, value in sorted(parameters.items())],
    )["PipelineExecutionArn"]


def follow(
    environment: Environment, execution_arn: str, poll_seconds: float, timeout_seconds: float, what="batch inference"
) -> str:
    sagemaker = aws.client("sagemaker", environment.region)
    deadline = time.monotonic() + timeout_seconds
    while True:
        status = sagemaker.describe_pipeline_execution(PipelineExecutionArn=execution_arn)
        if status["PipelineExecutionStatus"] in TERMINAL:
            if status["PipelineExecutionStatus"] != "Succeeded":
                pages = sagemaker.get_paginator("list_pipeline_execution_steps").paginate(
                    PipelineExecutionArn=execution_arn
                )
                failed = [
                    f"{s['StepName']}: {s.get('FailureReason', '')}"
                    for page in pages
                    for s in page["PipelineExecutionSteps"]
                    if s["StepStatus"] == "Failed"
                ]
                raise DeployError(f"{what} {execution_arn} {status['PipelineExecutionStatus']}: {'; '.join(failed)}")
            return status["PipelineExecutionStatus"]
        if time.monotonic() > deadline:
            raise DeployError(f"{what} {execution_arn} still running after {timeout_seconds:.0f} s")
        time.sleep(poll_seconds)


def execute(environment: Environment, stage: str, parameters: dict[str, str], execution_arn: str | None = None) -> dict:
    """Start (or, given `execution_arn`, join a run a trigger started), follow, and return the run's drift summary."""
    if execution_arn is None:
        values = {**stage_settings(stage).get("Parameters", {}), **parameters}
        execution_arn = start(environment, stage, values)
        print(f"Started {execution_arn}", flush=True)
    elif f":pipeline/{definition.pipeline_name(environment.project_name, stage)}/execution/" not in execution_arn:
        raise DeployError(
            f"{execution_arn} is not an execution of {definition.pipeline_name(environment.project_name, stage)}: "
            "pass an execution ARN of the stage's batch inference pipeline (the schedule's or the S3 rule's run)"
        )
    else:
        print(f"Following {execution_arn}", flush=True)
    follow(
        environment,
        execution_arn,
        float(os.environ.get("DEPLOY_POLL_SECONDS", "2")),
        float(os.environ.get("DEPLOY_TIMEOUT_SECONDS", "5400")),
    )
    s3 = aws.client("s3", environment.region)
    return json.loads(registry.read_s3_text(s3, summary_uri(environment, stage, execution_arn)))


def describe(summary: dict) -> str:
    decision = summary["decision"]
    lines = [
        f"batch inference {summary['stage']}: {summary['rows']} rows scored with {summary['model_package_arn']}",
        f"  violations: {summary['violation_count']} "
        + ", ".join(
            f"{v.get('feature_name') or v.get('metric_name')} {v['constraint_check_type']}"
            for check in summary["checks"].values()
            for v in check["violations"]
        ),
        f"  max feature distance {summary['max_feature_distance']:.3f}, attribution nDCG {summary['attribution_ndcg']}",
        f"  retraining rule ({decision['rule']}): broken in {decision['broken_in_window']} of "
        f"{decision['runs_in_window']} -> {'RETRAIN (event sent)' if decision['retrain'] else 'no retraining'}",
    ]
    return "\n".join(lines)


def run(
    environment: Environment,
    stage: str,
    pairs: list[str],
    summary_json: Path | None = None,
    execution_arn: str | None = None,
) -> int:
    if execution_arn and pairs:
        raise DeployError("--follow joins a run that has its parameters already: leave out -p")
    parameters = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise DeployError(f"parameter {pair!r} is not NAME=VALUE")
        parameters[name] = value
    summary = execute(environment, stage, parameters, execution_arn)
    if summary_json:
        summary_json.parent.mkdir(parents=True, exist_ok=True)
        summary_json.write_text(json.dumps(summary, indent=2) + "\n")
    print(describe(summary), flush=True)
    return 0
