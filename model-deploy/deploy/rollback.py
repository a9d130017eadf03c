"""rollback [STAGE]: put the previous Approved version back on a stage (production by default).

Runs on a Rejected approval event (MODEL_APPROVAL_STATUS=Rejected, MODEL_PACKAGE_ARN = the rejected
version), once for staging and once for prod, or by hand. "Previous" is the newest Approved version
older than the one the stage serves now. A rejection of a version the stage does not serve (or of
any version, while the stage has no deployment yet) changes nothing. When the stage serves a version
that is no longer Approved and no older Approved version exists, the stage stops serving: its stack
is deleted. The stage's inputs are built in memory, as build does.
"""

from __future__ import annotations

import json
from pathlib import Path

from deploy import accounts, aws, baselines, build, deploy_stage, naming, registry, stack, stage_config
from deploy.batch import promote, schedule
from deploy.environment import Environment
from deploy.errors import DeployError


def rejection_elsewhere(environment: Environment, serving_arn: str | None) -> bool:
    """True when this run answers a rejection of a version the stage does not serve."""
    return (
        environment.approval_status == "Rejected"
        and bool(environment.model_package_arn)
        and environment.model_package_arn != serving_arn
    )


def stop_serving(environment: Environment, stage: str, serving: registry.ModelPackage, build_dir: Path) -> None:
    """Delete the stage's stack: a rejected model must not serve, even when there is nothing to replace it with."""
    cloudformation = aws.client("cloudformation", environment.region)
    name = naming.stack_name(environment.project_name, stage)
    print(
        f"{stage} serves {serving.label}, which is {serving.approval_status}, and no older version is Approved: "
        f"deleting stack {name} so that {stage} stops serving it",
        flush=True,
    )
    stack.delete_and_wait(cloudformation, stack.describe_stack(cloudformation, name), deploy_stage.waiting())
    build_dir.mkdir(parents=True, exist_ok=True)
    record = {"StackName": name, "StackStatus": "DELETE_COMPLETE", "Action": "deleted", "Rejected": serving.arn}
    (build_dir / f"{stage}-outputs.json").write_text(json.dumps(record, indent=2) + "\n")
    print(f"{stage}: not serving any model now (stack {name} deleted). Approve a version to deploy it again.")
    promote.stop_scoring(environment, stage, build_dir)


def run(environment: Environment, stage: str, build_dir: Path) -> int:
    account_id, region = accounts.of_stage(stage_config.load(stage), stage)
    if account_id:  # checked before anything is read: stop_serving deletes a stack without deploy's check
        accounts.require_credentials_for(aws.client("sts", region or environment.region), stage, account_id)
    cloudformation = aws.client("cloudformation", region or environment.region)
    serving_arn = deploy_stage.deployed_package_arn(cloudformation, environment, stage)
    stack_name = naming.stack_name(environment.project_name, stage)
    if rejection_elsewhere(environment, serving_arn):
        serves = f"serves {serving_arn}" if serving_arn else f"has no deployment ({stack_name})"
        print(f"Rejected version {environment.model_package_arn}: {stage} {serves}, nothing to roll back")
        promote.after_rejection_elsewhere(environment, stage, environment.model_package_arn, build_dir)
        return 0
    if serving_arn is None:
        raise DeployError(f"stack {stack_name} does not exist: no {stage} deployment to roll back")
    sagemaker = aws.client("sagemaker", region or environment.region)
    serving = registry.describe(sagemaker, serving_arn)
    group = accounts.group_reference(serving_arn, environment.model_package_group, account_id)
    target = registry.previous_approved(sagemaker, group, serving.version)
    if target is None and serving.approval_status != registry.APPROVED:
        stop_serving(environment, stage, serving, build_dir)
        return 0
    if target is None:
        raise DeployError(
            f"no Approved version older than {serving.label} in group {environment.model_package_group!r}: "
            "nothing to roll back to. Approve an earlier version, or deploy a fixed model."
        )
    print(f"Rolling {stage} back from {serving_arn} to {target.arn} (the previous Approved version)")
    # The target's own baselines: a rolled-back endpoint is monitored against the version it serves.
    monitoring, warnings = baselines.monitoring_parameters(aws.client("s3", environment.region), target)
    for warning in warnings:
        print(warning)
    inputs = build.stage_inputs(environment, target, stage, monitoring)
    # The batch pipeline and its triggers follow, where the stage has them.
    deploy_stage.deploy(environment, stage, inputs, build_dir, batch=schedule.deployed(environment, stage) is not None)
    return 0
