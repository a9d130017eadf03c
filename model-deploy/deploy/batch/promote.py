"""The stage's batch inference follows its endpoint: promoted with it, rolled back with it, stopped on rejection.

- promote: batch-upsert the stage's pipeline on the version (upsert re-reads it: still Approved, artifacts
  unchanged), then point the triggers stack at it (re-read again right before that stack change);
- stop_scoring: a version that is no longer Approved, with none older to take over, is no longer scored: both
  triggers DISABLED (the pipeline keeps its definition, nothing starts it).

The SageMaker SDK is imported only by promote's upsert: a stage without batch inference never loads it, and a
package registered without feature code or drift baselines (before batch inference existed) is skipped with a
warning, as a package without baselines is deployed without a monitor.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from deploy import aws, registry
from deploy.batch import run as batch_run
from deploy.batch import schedule
from deploy.environment import Environment
from deploy.errors import DeployError

FEATURE_CODE = "FeatureCodeUrl"


def batch_ready(package: registry.ModelPackage) -> str:
    """Why this package cannot run batch inference ("" when it can)."""
    if not package.metadata.get(FEATURE_CODE):
        return f"it has no {FEATURE_CODE} metadata (registered before the build recorded its feature code)"
    if not package.drift_check_baselines:
        return "it has no DriftCheckBaselines"
    return ""


def promote(environment: Environment, stage: str, package_arn: str, build_dir: Path, role_arn: str = "") -> str:
    """Batch pipeline and triggers of the stage on this version; returns "promoted" or why it was skipped."""
    sagemaker = aws.client("sagemaker", environment.region)
    package = registry.require_still_approved(sagemaker, package_arn)
    reason = batch_ready(package)
    if reason:
        current = schedule.deployed(environment, stage)
        still = f"; {stage} batch inference keeps scoring {current['ModelPackageArn']}" if current else ""
        print(f"warning: {stage} batch inference not moved to {package.label}: {reason}{still}", flush=True)
        return f"skipped: {reason}"
    missing = [name for name, value in (("ARTIFACT_BUCKET", environment.artifact_bucket),) if not value]
    if not (role_arn or environment.execution_role_arn):
        missing.append("MODEL_EXECUTION_ROLE_ARN")
    if missing:
        raise DeployError(f"batch inference of {stage} needs {', '.join(missing)} (the project's CI/CD variables)")
    batch_environment = replace(environment, execution_role_arn=role_arn or environment.execution_role_arn)
    from deploy.batch import upsert  # the SageMaker SDK (requirements-batch.txt)

    settings = batch_run.stage_settings(stage)
    upsert.upsert(batch_environment, stage, package.arn, build_dir, settings)
    registry.require_still_approved(sagemaker, package.arn)  # right before the triggers change, as for stacks
    # batch_environment: the boundary ARN is named in the account of the stage's model role
    parameters = schedule.parameters(batch_environment, stage, package.arn, settings)
    schedule.deploy(environment, stage, parameters, build_dir)
    return "promoted"


def stop_scoring(environment: Environment, stage: str, build_dir: Path) -> bool:
    """Both triggers of the stage DISABLED; False when the stage has no batch triggers stack."""
    current = schedule.deployed(environment, stage)
    if current is None:
        print(f"{stage}: no batch triggers stack, nothing scores on a schedule")
        return False
    print(
        f"{stage}: no Approved version can take over from {current.get('ModelPackageArn')}: disabling the batch "
        "schedule and the S3 input rule so that it is no longer scored",
        flush=True,
    )
    disabled = {**current, "ScheduleState": schedule.DISABLED, "InputRuleState": schedule.DISABLED}
    schedule.deploy(environment, stage, disabled, build_dir)
    return True


def after_rejection_elsewhere(environment: Environment, stage: str, rejected_arn: str, build_dir: Path) -> None:
    """The endpoint does not serve the rejected version, but the batch triggers may still score it: repoint them."""
    current = schedule.deployed(environment, stage)
    if current is None or current.get("ModelPackageArn") != rejected_arn:
        return
    sagemaker = aws.client("sagemaker", environment.region)
    rejected = registry.describe(sagemaker, rejected_arn)
    target = registry.previous_approved(sagemaker, rejected.group or environment.model_package_group, rejected.version)
    if target is None:
        stop_scoring(environment, stage, build_dir)
        return
    print(f"{stage}: batch inference scores the rejected {rejected.label}: moving it to {target.label}", flush=True)
    promote(environment, stage, target.arn, build_dir)
