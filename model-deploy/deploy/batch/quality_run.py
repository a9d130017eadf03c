"""quality-run STAGE --ground-truth S3_PREFIX: check late labels once with the stage's model-quality pipeline, follow
it, print its summary (boto3 only).

The same StartPipelineExecution the ground-truth S3 rule makes, with GroundTruthUrl set: one batch run's label
folder (`.../ground-truth/<batch-execution-id>/`) or the whole ground-truth prefix.
"""

from __future__ import annotations

import json
import os

from deploy import aws, registry
from deploy.batch import quality_definition
from deploy.batch.run import follow
from deploy.environment import Environment
from deploy.errors import DeployError


def summary_uri(environment: Environment, stage: str, execution_arn: str) -> str:
    execution_id = execution_arn.rsplit("/", 1)[-1]
    return (
        f"s3://{environment.artifact_bucket}/batch-inference/{environment.project_name}/{stage}/model-quality/"
        f"executions/{execution_id}/QualitySummary/summary/quality-summary.json"
    )


def check_ground_truth(environment: Environment, stage: str, ground_truth: str) -> str:
    """The prefix, refused unless it lies under this stage's ground-truth prefix (the role may read only there)."""
    root = quality_definition.ground_truth_root(environment.artifact_bucket, environment.project_name, stage)
    if not ground_truth.startswith(root):
        raise DeployError(
            f"--ground-truth {ground_truth!r} is not under {root}: put the label files in "
            f"{root}<batch-execution-id>/ and pass that folder (or {root} for every labelled run)"
        )
    return ground_truth if ground_truth.endswith("/") else ground_truth + "/"


def execute(environment: Environment, stage: str, ground_truth: str) -> dict:
    """Start, follow, and return the run's quality summary."""
    sagemaker = aws.client("sagemaker", environment.region)
    execution_arn = sagemaker.start_pipeline_execution(
        PipelineName=quality_definition.pipeline_name(environment.project_name, stage),
        PipelineExecutionDescription=os.environ.get("CI_PIPELINE_URL") or "quality-run outside GitLab CI",
        PipelineParameters=[{"Name": "GroundTruthUrl", "Value": check_ground_truth(environment, stage, ground_truth)}],
    )["PipelineExecutionArn"]
    print(f"Started {execution_arn}", flush=True)
    follow(
        environment,
        execution_arn,
        float(os.environ.get("DEPLOY_POLL_SECONDS", "2")),
        float(os.environ.get("DEPLOY_TIMEOUT_SECONDS", "5400")),
        what="model quality",
    )
    s3 = aws.client("s3", environment.region)
    return json.loads(registry.read_s3_text(s3, summary_uri(environment, stage, execution_arn)))


def describe(summary: dict) -> str:
    runs = ", ".join(f"{r['execution_id']} ({r['rows']} rows)" for r in summary["batch_executions"])
    lines = [f"model quality: {summary['rows']} labelled predictions of {summary['model_package_arn']}: {runs}"]
    for name, metric in sorted(summary["metrics"].items()):
        threshold = metric["threshold"]
        lines.append(
            f"  {name:<4} {metric['value']:.4f}  baseline {metric['baseline']:.4f}  "
            f"threshold {'-' if threshold is None else f'{threshold:.4f}'} {metric['comparison_operator'] or ''}"
            + ("  VIOLATED" if metric["violated"] else "")
        )
    skipped = summary.get("skipped_other_versions") or []
    if skipped:
        lines.append(f"  skipped (scored with other versions): {', '.join(s['execution_id'] for s in skipped)}")
    lines.append(f"  violations: {summary['violation_count']}")
    return "\n".join(lines)


def run(environment: Environment, stage: str, ground_truth: str) -> int:
    print(describe(execute(environment, stage, ground_truth)), flush=True)
    return 0
