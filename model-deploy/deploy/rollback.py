"""Rollback: put the previous Approved version back on a stage (production by default).

Runs on a Rejected approval event (MODEL_APPROVAL_STATUS=Rejected, MODEL_PACKAGE_ARN = the rejected
version) or by hand. "Previous" is the newest Approved version older than the one the stage
serves now. A rejection of a version the stage does not serve changes nothing.
"""

from __future__ import annotations

from deploy import registry, resolve, stack
from deploy.errors import DeployError
from deploy.settings import Settings


def deployed_package_arn(cloudformation, config: Settings, stage: str) -> str:
    current = stack.describe_stack(cloudformation, config.stack_name(stage))
    if current is None:
        raise DeployError(f"stack {config.stack_name(stage)} does not exist: no {stage} deployment to roll back")
    parameters = {p["ParameterKey"]: p.get("ParameterValue", "") for p in current.get("Parameters", [])}
    if not parameters.get("ModelPackageArn"):
        raise DeployError(f"stack {config.stack_name(stage)} has no ModelPackageArn parameter: not a deploy stack")
    return parameters["ModelPackageArn"]


def choose_target(sagemaker, config: Settings, serving_arn: str) -> registry.ModelPackage | None:
    """The version to roll back to, or None when a rejection does not concern the served version."""
    if config.approval_status == "Rejected" and config.model_package_arn and config.model_package_arn != serving_arn:
        return None
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
    sagemaker = config.client("sagemaker")
    target = choose_target(sagemaker, config, serving_arn)
    if target is None:
        print(
            f"Rejected version {config.model_package_arn} is not the one {stage} serves ({serving_arn}): "
            "nothing to roll back"
        )
        return 0
    print(f"Rolling {stage} back from {serving_arn} to {target.arn} (the previous Approved version)")
    resolve.write_stage_files(config, target, stage)
    stack.deploy(config, stage)
    return 0
