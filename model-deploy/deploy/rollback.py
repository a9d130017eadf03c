"""rollback [STAGE]: put the previous Approved version back on a stage (production by default).

Runs on a Rejected approval event (MODEL_APPROVAL_STATUS=Rejected, MODEL_PACKAGE_ARN = the rejected
version) or by hand. "Previous" is the newest Approved version older than the one the stage
serves now. A rejection of a version the stage does not serve (or of any version, while the stage
has no deployment yet) changes nothing. The stage's inputs are built in memory, as build does.
"""

from __future__ import annotations

from pathlib import Path

from deploy import aws, build, deploy_stage, naming, registry
from deploy.environment import Environment
from deploy.errors import DeployError


def rejection_elsewhere(environment: Environment, serving_arn: str | None) -> bool:
    """True when this run answers a rejection of a version the stage does not serve."""
    return (
        environment.approval_status == "Rejected"
        and bool(environment.model_package_arn)
        and environment.model_package_arn != serving_arn
    )


def choose_target(sagemaker, environment: Environment, serving_arn: str) -> registry.ModelPackage:
    """The newest Approved version older than the one served."""
    serving = registry.describe(sagemaker, serving_arn)
    target = registry.previous_approved(sagemaker, environment.model_package_group, serving.version)
    if target is None:
        raise DeployError(
            f"no Approved version older than {serving.label} in group {environment.model_package_group!r}: "
            "nothing to roll back to. Approve an earlier version, or deploy a fixed model."
        )
    return target


def run(environment: Environment, stage: str, build_dir: Path) -> int:
    cloudformation = aws.client("cloudformation", environment.region)
    serving_arn = deploy_stage.deployed_package_arn(cloudformation, environment, stage)
    stack_name = naming.stack_name(environment.project_name, stage)
    if rejection_elsewhere(environment, serving_arn):
        serves = f"serves {serving_arn}" if serving_arn else f"has no deployment ({stack_name})"
        print(f"Rejected version {environment.model_package_arn}: {stage} {serves}, nothing to roll back")
        return 0
    if serving_arn is None:
        raise DeployError(f"stack {stack_name} does not exist: no {stage} deployment to roll back")
    target = choose_target(aws.client("sagemaker", environment.region), environment, serving_arn)
    print(f"Rolling {stage} back from {serving_arn} to {target.arn} (the previous Approved version)")
    deploy_stage.deploy(environment, stage, build.stage_inputs(environment, target, stage), build_dir)
    return 0
