"""Deploy step: create or update one stage's CloudFormation stack and wait for it, printing its events.

- No change (same template, parameters and tags) is a success, whether we see it first or
  CloudFormation answers "No updates are to be performed".
- A stack left in ROLLBACK_COMPLETE (a failed first create) cannot be updated: it is deleted and
  created again. An operation already in progress is waited for first.
- A failure exits non-zero naming the failing resources and CloudFormation's reasons.
- Names come from the stack Outputs, and the endpoint is checked to serve exactly the package in
  the parameters: no change sets (simple, and emulators keep Outputs correct without them).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from botocore.exceptions import ClientError

from deploy import endpoints, settings
from deploy.errors import DeployError
from deploy.settings import Settings

# States an update cannot start from, but from which nothing is served or worth keeping: delete, create again.
RECREATE = {"ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "CREATE_FAILED", "REVIEW_IN_PROGRESS"}
REQUIRED_OUTPUTS = ("EndpointName", "EndpointConfigName", "ModelName")
CASCADE_REASONS = ("Resource creation cancelled", "Resource update cancelled")
NO_UPDATES = "No updates are to be performed"
HEARTBEAT_SECONDS = 60


@dataclass
class StackResult:
    stage: str
    stack_name: str
    status: str
    action: str  # created, updated, unchanged, recreated
    outputs: dict
    seconds: float


def poll_seconds() -> float:
    return float(os.environ.get("DEPLOY_POLL_SECONDS", "15"))


def timeout_seconds() -> float:
    # A prod blue/green update waits through canary and termination periods: give it room.
    return float(os.environ.get("DEPLOY_TIMEOUT_SECONDS", "5400"))


class EventLog:
    """Prints a stack's events once each, oldest first, and keeps those of the current operation."""

    def __init__(self, cloudformation, stack_id: str):
        self.cloudformation = cloudformation
        self.stack_id = stack_id
        self.seen: set[str] = set()
        self.operation: list[dict] = []

    def skip_existing(self) -> None:
        # Only the newest page: fetch_new() stops at the first event it has seen.
        page = self.cloudformation.describe_stack_events(StackName=self.stack_id)["StackEvents"]
        self.seen.update(event["EventId"] for event in page)

    def fetch_new(self) -> list[dict]:
        new = []
        for page in self.cloudformation.get_paginator("describe_stack_events").paginate(StackName=self.stack_id):
            fresh = [event for event in page["StackEvents"] if event["EventId"] not in self.seen]
            new.extend(fresh)
            if len(fresh) < len(page["StackEvents"]):
                break
        new.reverse()
        for event in new:
            self.seen.add(event["EventId"])
            print("  " + format_event(event), flush=True)
        self.operation.extend(new)
        return new


def format_event(event: dict) -> str:
    reason = event.get("ResourceStatusReason") or ""
    when = event["Timestamp"].strftime("%H:%M:%S")
    line = f"{when}  {event['LogicalResourceId']:<20} {event['ResourceType']:<44} {event['ResourceStatus']}"
    return f"{line}  {reason}" if reason else line


def failure_summary(events: list[dict], stack: dict | None = None) -> str:
    """The resources that failed, with CloudFormation's reasons; cascade cancellations left out."""
    failed = [
        event
        for event in events
        if event["ResourceStatus"].endswith("_FAILED")
        and event["ResourceType"] != "AWS::CloudFormation::Stack"
        and not (event.get("ResourceStatusReason") or "").startswith(CASCADE_REASONS)
    ]
    lines = [
        f"{e['LogicalResourceId']} ({e['ResourceType']}) {e['ResourceStatus']}: "
        + (e.get("ResourceStatusReason") or "no reason given")
        for e in failed
    ]
    if not lines and stack and stack.get("StackStatusReason"):
        lines.append(f"stack: {stack['StackStatusReason']}")
    if not lines:
        lines.append("(CloudFormation named no failed resource; see the events above)")
    return "\n".join(f"  {line}" for line in lines)


def is_no_update_error(error: ClientError) -> bool:
    return error.response["Error"]["Code"] == "ValidationError" and NO_UPDATES in error.response["Error"]["Message"]


def describe_stack(cloudformation, name_or_id: str) -> dict | None:
    try:
        return cloudformation.describe_stacks(StackName=name_or_id)["Stacks"][0]
    except ClientError as error:
        if "does not exist" in error.response["Error"]["Message"]:
            return None
        raise


def wait(cloudformation, stack_id: str, log: EventLog) -> dict:
    """Poll until the stack leaves *_IN_PROGRESS, printing events; returns the final description."""
    start = time.monotonic()
    last_news = start
    while True:
        if log.fetch_new():
            last_news = time.monotonic()
        stack = describe_stack(cloudformation, stack_id)
        if stack is None or not stack["StackStatus"].endswith("_IN_PROGRESS"):
            log.fetch_new()
            return stack or {"StackStatus": "DELETE_COMPLETE", "StackId": stack_id}
        elapsed = time.monotonic() - start
        if elapsed > timeout_seconds():
            raise DeployError(
                f"gave up after {elapsed:.0f} s: stack {stack['StackName']} is still {stack['StackStatus']}. "
                "CloudFormation carries on; watch it in the console, then re-run this job "
                "(or raise DEPLOY_TIMEOUT_SECONDS)"
            )
        if time.monotonic() - last_news >= HEARTBEAT_SECONDS:
            print(f"  ... still {stack['StackStatus']} after {elapsed:.0f} s", flush=True)
            last_news = time.monotonic()
        time.sleep(poll_seconds())


def delete_and_wait(cloudformation, stack: dict) -> None:
    print(
        f"Stack {stack['StackName']} is {stack['StackStatus']} (a first create that failed): "
        "deleting it so it can be created again",
        flush=True,
    )
    log = EventLog(cloudformation, stack["StackId"])
    log.skip_existing()
    cloudformation.delete_stack(StackName=stack["StackId"])
    final = wait(cloudformation, stack["StackId"], log)
    if final["StackStatus"] != "DELETE_COMPLETE":
        raise DeployError(
            f"could not delete stack {stack['StackName']} ({final['StackStatus']}):\n"
            f"{failure_summary(log.operation, final)}\n"
            "Delete it by hand in the CloudFormation console, then re-run this job."
        )


def unchanged(cloudformation, stack: dict, template_body: str, parameters: dict, tags: dict) -> bool:
    """True when an update would change nothing (CloudFormation would answer "No updates").

    A shortcut only: when it cannot tell (e.g. no cloudformation:GetTemplateSummary permission), the
    update goes ahead and CloudFormation's own "No updates are to be performed" answer is a success too.
    """
    try:
        current = cloudformation.get_template(StackName=stack["StackId"], TemplateStage="Original")["TemplateBody"]
        if not isinstance(current, str) or current.strip() != template_body.strip():
            return False
        summary = cloudformation.get_template_summary(TemplateBody=template_body)
    except ClientError as error:
        print(f"  (cannot compare with the deployed stack: {error.response['Error']['Code']}; updating)")
        return False
    # Parameters left out fall back to their defaults: compare the full set.
    desired = {p["ParameterKey"]: str(p["DefaultValue"]) for p in summary["Parameters"] if "DefaultValue" in p}
    desired.update(parameters)
    deployed = {p["ParameterKey"]: p.get("ParameterValue", "") for p in stack.get("Parameters", [])}
    deployed_tags = {t["Key"]: t["Value"] for t in stack.get("Tags", [])}
    return desired == deployed and tags == deployed_tags


def read_inputs(build_dir: Path, stage: str) -> tuple[dict, dict]:
    try:
        parameter_list = json.loads((build_dir / f"{stage}-params.json").read_text())
        tag_list = json.loads((build_dir / f"{stage}-tags.json").read_text())
    except FileNotFoundError as error:
        raise DeployError(f"{error.filename} is missing: run `python -m deploy build` first") from None
    parameters = {p["ParameterKey"]: p["ParameterValue"] for p in parameter_list}
    tags = {t["Key"]: t["Value"] for t in tag_list}
    if parameters.get("StageName") != stage:
        raise DeployError(f"{build_dir / f'{stage}-params.json'} is for stage {parameters.get('StageName')!r}")
    return parameters, tags


def outputs_of(stack: dict) -> dict:
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs") or []}
    missing = [key for key in REQUIRED_OUTPUTS if key not in outputs]
    if missing:
        # A failed or rolled-back stack has no outputs either: its status tells which case this is.
        raise DeployError(
            f"stack {stack['StackName']} ({stack['StackStatus']}) has no output(s) {', '.join(missing)}: "
            "deploy the stage again if it failed, otherwise check the template's Outputs"
        )
    return outputs


def deploy(config: Settings, stage: str, template_path: Path = settings.TEMPLATE_PATH) -> StackResult:
    """Create or update the stage's stack from the build folder's inputs; raise DeployError on failure."""
    cloudformation = config.client("cloudformation")
    parameters, tags = read_inputs(config.build_dir, stage)
    template_body = template_path.read_text()
    name = config.stack_name(stage)
    started = time.monotonic()
    print(f"Deploying {parameters['ModelPackageArn']} to {stage}: stack {name}", flush=True)

    stack = describe_stack(cloudformation, name)
    if stack and stack["StackStatus"].endswith("_IN_PROGRESS") and stack["StackStatus"] != "REVIEW_IN_PROGRESS":
        print(f"Stack {name} is {stack['StackStatus']}: waiting for that operation to finish first", flush=True)
        log = EventLog(cloudformation, stack["StackId"])
        log.skip_existing()
        stack = wait(cloudformation, stack["StackId"], log)
        stack = None if stack["StackStatus"] == "DELETE_COMPLETE" else stack
    recreated = False
    if stack and stack["StackStatus"] in RECREATE:
        delete_and_wait(cloudformation, stack)
        stack, recreated = None, True
    if stack and stack["StackStatus"] == "UPDATE_ROLLBACK_FAILED":
        raise DeployError(
            f"stack {name} is UPDATE_ROLLBACK_FAILED: finish the rollback first "
            f"(aws cloudformation continue-update-rollback --stack-name {name}), then re-run this job"
        )
    if stack and stack["StackStatus"] == "DELETE_FAILED":
        raise DeployError(f"stack {name} is DELETE_FAILED: delete it by hand in the console, then re-run this job")

    parameter_list = [{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()]
    tag_list = [{"Key": k, "Value": v} for k, v in tags.items()]
    # With a CloudFormation service role, the CI role itself needs no SageMaker write permissions.
    role = {"RoleARN": config.cloudformation_role_arn} if config.cloudformation_role_arn else {}
    if stack is None:
        response = _call(
            cloudformation.create_stack,
            name,
            StackName=name,
            TemplateBody=template_body,
            Parameters=parameter_list,
            Tags=tag_list,
            OnFailure="ROLLBACK",
            **role,
        )
        action, expected = ("recreated" if recreated else "created"), "CREATE_COMPLETE"
        log = EventLog(cloudformation, response["StackId"])
    else:
        if unchanged(cloudformation, stack, template_body, parameters, tags):
            return _finish(config, stage, stack, "unchanged", started, parameters)
        log = EventLog(cloudformation, stack["StackId"])
        log.skip_existing()
        try:
            response = _call(
                cloudformation.update_stack,
                name,
                StackName=stack["StackId"],
                TemplateBody=template_body,
                Parameters=parameter_list,
                Tags=tag_list,
                **role,
            )
        except _NoUpdates:
            return _finish(config, stage, stack, "unchanged", started, parameters)
        action, expected = "updated", "UPDATE_COMPLETE"

    final = wait(cloudformation, response["StackId"], log)
    if final["StackStatus"] != expected:
        kept = "the previous version keeps serving" if final["StackStatus"] == "UPDATE_ROLLBACK_COMPLETE" else ""
        raise DeployError(
            f"stack {name} ended {final['StackStatus']} instead of {expected}"
            f"{': ' + kept if kept else ''}. Failed resources:\n{failure_summary(log.operation, final)}"
        )
    return _finish(config, stage, final, action, started, parameters)


class _NoUpdates(Exception):
    pass


def _call(operation, name: str, **kwargs) -> dict:
    try:
        return operation(**kwargs)
    except ClientError as error:
        if is_no_update_error(error):
            raise _NoUpdates() from None
        raise DeployError(
            f"CloudFormation refused {operation.__name__} for stack {name}: {error.response['Error']['Message']}"
        ) from None


def _finish(config: Settings, stage: str, stack: dict, action: str, started: float, parameters: dict) -> StackResult:
    outputs = outputs_of(stack)
    # Proof, not trust: the endpoint must serve exactly the package this stack was given.
    sagemaker = config.client("sagemaker")
    served = endpoints.require_serving(sagemaker, outputs["EndpointName"], parameters["ModelPackageArn"])
    result = StackResult(
        stage=stage,
        stack_name=stack["StackName"],
        status=stack["StackStatus"],
        action=action,
        outputs=outputs,
        seconds=time.monotonic() - started,
    )
    config.build_dir.mkdir(parents=True, exist_ok=True)
    record = {**outputs, "StackName": result.stack_name, "StackStatus": result.status, "Action": action}
    (config.build_dir / f"{stage}-outputs.json").write_text(json.dumps(record, indent=2) + "\n")
    print(f"{stage}: stack {result.stack_name} {action} ({result.status}) in {result.seconds:.0f} s")
    print(f"  endpoint  {served.name} ({served.status})")
    print(f"  config    {served.config_name}")
    print(f"  model     {', '.join(served.model_names)}")
    print(f"  package   {parameters['ModelPackageArn']}")
    return result


def run(config: Settings, stage: str) -> int:
    deploy(config, stage)
    return 0
