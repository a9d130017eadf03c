"""Rollback: put the previous Approved version back on a stage (production by default).

Runs on a Rejected approval event (MODEL_APPROVAL_STATUS=Rejected, MODEL_PACKAGE_ARN = the rejected
version) or by hand. "Previous" is the newest Approved version older than the one the stage
serves now. A rejection of a version the stage does not serve (or of any version, while the stage
has no deployment yet) changes nothing.
"""

from __future__ import annotations

from deploy import registry, resolve, stack
from deploy.errors import DeployError
from deploy.settings import Settings


def deployed_package_arn(cloudformation, config: Settings, stage: str) -> str | None:
    """The package the stage's stack was given; None when the stage has no stack."""
    current = stack.describe_stack(cloudformation, config.stack_name(stage))
    if current is None:
        return None
    parameters = {p["ParameterKey"]: p.get("ParameterValue", "") for p in current.get("Parameters", [])}
    if not parameters.get("ModelPackageArn"):
        raise DeployError(f"stack {config.stack_name(stage)} has no ModelPackageArn parameter: not a deploy stack")
    return parameters["ModelPackageArn"]


def rejection_elsewhere(config: Settings, serving_arn: str | None) -> bool:
    """True when this run answers a rejection of a version the stage does not serve."""
    return (
        config.approval_status == "Rejected"
        and bool(config.model_package_arn)
        and config.model_package_arn != serving_arn
    )


def choose_target(sagemaker, config: Settings, serving_arn: str) -> registry.ModelPackage:
    """The newest Approved version older than the one served."""
    serving = registry.describe(sagemaker, serving_arn)
    target = registry.previous_approved(sagemaker, config.model_package_group, serving.version)
    if target is None:
        raise DeployError(
            f"no Approved version older than {serving.label} in group {config.model_package_group!r}: "
            "nothing to roll back to. Approve an earlier version, or deploy a fixed model."
        )
    return target


def run(config: Settings, stage: str = "prod") -> int:
    serving_arn = deployed_package_arn(config.client("cloudformation"), config, stage)
    if rejection_elsewhere(config, serving_arn):
        serves = f"serves {serving_arn}" if serving_arn else f"has no deployment ({config.stack_name(stage)})"
        print(f"Rejected version {config.model_package_arn}: {stage} {serves}, nothing to roll back")
        return 0
    if serving_arn is None:
        raise DeployError(f"stack {config.stack_name(stage)} does not exist: no {stage} deployment to roll back")
    target = choose_target(config.client("sagemaker"), config, serving_arn)
    print(f"Rolling {stage} back from {serving_arn} to {target.arn} (the previous Approved version)")
    resolve.write_stage_files(config, target, stage)
    stack.deploy(config, stage)
    return 0
