"""The stage's batch triggers stack (batch-schedule-template.yml): the Scheduler schedule and the S3 input rule.

boto3 only. Both triggers start the stage's pipeline by name, and the pipeline pins its package: "which version
is scored" is the pipeline's definition (batch-upsert), and this stack records it in its ModelPackageArn parameter
(shown on the schedule's description). Repointing the triggers is upserting the pipeline on another version and
updating this stack with that version; stopping the scoring of a version with no Approved one to take over is this
stack with both triggers DISABLED.
"""

from __future__ import annotations

import json
from pathlib import Path

from deploy import aws, naming, stack
from deploy.batch import definition
from deploy.environment import Environment
from deploy.errors import DeployError
from deploy.paths import REPO_DIR

TEMPLATE_PATH = REPO_DIR / "batch-schedule-template.yml"
# The template's parameters that come from batch-config.json's "Parameters" of the stage.
RUN_PARAMETERS = ("ShardCount", "RetrainDistanceThreshold", "RetrainNdcgThreshold", "RetrainBreaches", "RetrainWindow")
DISABLED = "DISABLED"


def input_prefix(project: str, stage: str) -> str:
    return f"batch-inference/{project}/{stage}/input/"


def parameters(environment: Environment, stage: str, package_arn: str, settings: dict) -> dict[str, str]:
    schedule = settings.get("Schedule") or {}
    state = schedule.get("State", "ENABLED")
    if state not in ("ENABLED", DISABLED):
        raise DeployError(f"batch-config.json: {stage}.Schedule.State must be ENABLED or DISABLED, got {state!r}")
    values = {
        "ProjectName": environment.project_name,
        "StageName": stage,
        "PipelineName": definition.pipeline_name(environment.project_name, stage),
        "ModelPackageArn": package_arn,
        "ScheduleExpression": schedule.get("Expression", "cron(0 2 * * ? *)"),
        "ScheduleTimezone": schedule.get("Timezone", "UTC"),
        "ScheduleState": state,
        "InputRuleState": settings.get("InputRuleState", "ENABLED"),
        "InputBucket": environment.artifact_bucket,
        "InputPrefix": input_prefix(environment.project_name, stage),
        "PermissionsBoundaryArn": permissions_boundary_arn(environment, stage),
    }
    run = settings.get("Parameters") or {}
    values.update({name: str(run[name]) for name in RUN_PARAMETERS if name in run})
    return values


def permissions_boundary_arn(environment: Environment, stage: str) -> str:
    """The stage's trigger-role boundary the project template defines, in the account of the stage's model role.

    The deploy role may create the stack's roles only with this boundary (cloudformation/project.yml)."""
    parts = environment.execution_role_arn.split(":")
    if len(parts) < 6 or parts[2] != "iam" or not parts[4]:
        raise DeployError(
            f"MODEL_EXECUTION_ROLE_ARN {environment.execution_role_arn!r} is not a role ARN: the batch triggers' "
            "permissions boundary is named in that role's account; set it to the project stack's ModelExecutionRoleArn"
        )
    partition, account = parts[1], parts[4]
    return f"arn:{partition}:iam::{account}:policy/{environment.project_name}-batch-{stage}-boundary"


def tags(environment: Environment, stage: str) -> dict[str, str]:
    found = {"sagemaker:project-name": environment.project_name, "stage": stage}
    if environment.project_id:
        found["sagemaker:project-id"] = environment.project_id
    return found


def deployed(environment: Environment, stage: str) -> dict[str, str] | None:
    """The parameters of the stage's batch triggers stack; None when it has none."""
    cloudformation = aws.client("cloudformation", environment.region)
    current = stack.describe_stack(cloudformation, naming.batch_stack_name(environment.project_name, stage))
    if current is None or current["StackStatus"] == "DELETE_COMPLETE":
        return None
    return {p["ParameterKey"]: p.get("ParameterValue", "") for p in current.get("Parameters", [])}


def deploy(environment: Environment, stage: str, values: dict[str, str], build_dir: Path, waiting=None) -> dict:
    """Create or update the stage's batch triggers stack; writes build/<stage>-batch-schedule.json."""
    name = naming.batch_stack_name(environment.project_name, stage)
    outcome = stack.deploy_stack(
        aws.client("cloudformation", environment.region),
        name,
        template_body=TEMPLATE_PATH.read_text(),
        parameters=values,
        tags=tags(environment, stage),
        capabilities=("CAPABILITY_IAM",),  # the two trigger roles
        role_arn=environment.cloudformation_role_arn,
        waiting=waiting,
    )
    outputs = {o["OutputKey"]: o["OutputValue"] for o in outcome.stack.get("Outputs") or []}
    record = {
        "StackName": name,
        "StackStatus": outcome.stack["StackStatus"],
        "Action": outcome.action,
        "ModelPackageArn": values["ModelPackageArn"],
        "ScheduleState": values["ScheduleState"],
        "InputRuleState": values["InputRuleState"],
        "Outputs": outputs,
    }
    build_dir.mkdir(parents=True, exist_ok=True)
    (build_dir / f"{stage}-batch-schedule.json").write_text(json.dumps(record, indent=2) + "\n")
    print(
        f"{stage}: batch triggers stack {name} {outcome.action}: schedule {values['ScheduleState']}, "
        f"S3 input rule {values['InputRuleState']}, version {values['ModelPackageArn']}",
        flush=True,
    )
    return record
