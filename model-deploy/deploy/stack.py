"""Create or update a CloudFormation stack and wait for it, printing its events: one implementation for all.

- No change is a success, whether we see it first (same template body, parameters and tags) or
  CloudFormation answers "No updates are to be performed".
- A stack left in ROLLBACK_COMPLETE (a failed first create) cannot be updated: it is deleted and
  created again. An operation already in progress is waited for first.
- A failure raises DeployError naming the failed resources with CloudFormation's reasons.
- No change sets: simple, and emulators keep Outputs correct without them.

The project's provisioning script (scripts/provision_project.py in the monorepo) uses it too.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from botocore.exceptions import ClientError

from deploy.errors import DeployError

# States an update cannot start from, but from which nothing is served or worth keeping: delete, create again.
RECREATE = {"ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "CREATE_FAILED", "REVIEW_IN_PROGRESS"}
CASCADE_REASONS = ("Resource creation cancelled", "Resource update cancelled")
NO_UPDATES = "No updates are to be performed"
HEARTBEAT_SECONDS = 60


@dataclass(frozen=True)
class StackOutcome:
    stack: dict  # the final describe_stacks entry
    action: str  # created, recreated, updated, unchanged


@dataclass(frozen=True)
class Waiting:
    poll_seconds: float = 15
    timeout_seconds: float = 5400  # a prod blue/green update waits through canary and termination periods


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


def wait(cloudformation, stack_id: str, log: EventLog, waiting: Waiting) -> dict:
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
        if elapsed > waiting.timeout_seconds:
            raise DeployError(
                f"gave up after {elapsed:.0f} s: stack {stack['StackName']} is still {stack['StackStatus']}. "
                "CloudFormation carries on; watch it in the console, then run this again "
                "(or raise DEPLOY_TIMEOUT_SECONDS)"
            )
        if time.monotonic() - last_news >= HEARTBEAT_SECONDS:
            print(f"  ... still {stack['StackStatus']} after {elapsed:.0f} s", flush=True)
            last_news = time.monotonic()
        time.sleep(waiting.poll_seconds)


def delete_and_wait(cloudformation, stack: dict, waiting: Waiting | None = None) -> None:
    """Delete the stack and wait; raise DeployError naming what could not be deleted."""
    waiting = waiting or Waiting()
    log = EventLog(cloudformation, stack["StackId"])
    log.skip_existing()
    cloudformation.delete_stack(StackName=stack["StackId"])
    final = wait(cloudformation, stack["StackId"], log, waiting)
    if final["StackStatus"] != "DELETE_COMPLETE":
        raise DeployError(
            f"could not delete stack {stack['StackName']} ({final['StackStatus']}):\n"
            f"{failure_summary(log.operation, final)}\n"
            "Delete it by hand in the CloudFormation console, then run this again."
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


def settled_stack(cloudformation, name: str, waiting: Waiting) -> tuple[dict | None, bool]:
    """The stack as an update can start from it (None: create it), and whether a failed one was deleted."""
    stack = describe_stack(cloudformation, name)
    if stack and stack["StackStatus"].endswith("_IN_PROGRESS") and stack["StackStatus"] != "REVIEW_IN_PROGRESS":
        print(f"Stack {name} is {stack['StackStatus']}: waiting for that operation to finish first", flush=True)
        log = EventLog(cloudformation, stack["StackId"])
        log.skip_existing()
        stack = wait(cloudformation, stack["StackId"], log, waiting)
        stack = None if stack["StackStatus"] == "DELETE_COMPLETE" else stack
    if stack and stack["StackStatus"] in RECREATE:
        print(
            f"Stack {name} is {stack['StackStatus']} (a first create that failed): "
            "deleting it so it can be created again",
            flush=True,
        )
        delete_and_wait(cloudformation, stack, waiting)
        return None, True
    if stack and stack["StackStatus"] == "UPDATE_ROLLBACK_FAILED":
        raise DeployError(
            f"stack {name} is UPDATE_ROLLBACK_FAILED: finish the rollback first "
            f"(aws cloudformation continue-update-rollback --stack-name {name}), then run this again"
        )
    if stack and stack["StackStatus"] == "DELETE_FAILED":
        raise DeployError(f"stack {name} is DELETE_FAILED: delete it by hand in the console, then run this again")
    return stack, False


def previous_values(cloudformation, stack: dict, template: dict, given: dict) -> list[dict]:
    """As `aws cloudformation deploy` does: a parameter not given keeps its value on an update, instead of
    reverting to its default (or failing, for one without a default). Only those the template still declares."""
    declared = {p["ParameterKey"] for p in cloudformation.get_template_summary(**template)["Parameters"]}
    kept = {p["ParameterKey"] for p in stack.get("Parameters", [])} & declared
    return [{"ParameterKey": key, "UsePreviousValue": True} for key in sorted(kept - set(given))]


def deploy_stack(
    cloudformation,
    name: str,
    *,
    parameters: dict[str, str],
    template_body: str | None = None,
    template_url: str | None = None,
    tags: dict[str, str] | None = None,
    capabilities: tuple[str, ...] = (),
    role_arn: str = "",
    keep_previous_values: bool = False,
    waiting: Waiting | None = None,
) -> StackOutcome:
    """Create or update stack `name` from a template body (or URL) and wait; raise DeployError on failure.

    Tags are set on create, and on update when there are any (none given: the stack keeps its tags).
    With a template body, an update that would change nothing is not even started.
    """
    if (template_body is None) == (template_url is None):
        raise ValueError("give exactly one of template_body and template_url")
    waiting = waiting or Waiting()
    template = {"TemplateBody": template_body} if template_body is not None else {"TemplateURL": template_url}
    tags = tags or {}
    stack, recreated = settled_stack(cloudformation, name, waiting)
    request = {
        "StackName": name,
        **template,
        "Parameters": [{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        **({"Tags": [{"Key": k, "Value": v} for k, v in tags.items()]} if tags else {}),
        **({"Capabilities": list(capabilities)} if capabilities else {}),
        # With a CloudFormation service role, the caller itself needs no write rights on the resources.
        **({"RoleARN": role_arn} if role_arn else {}),
    }
    if stack is None:
        response = _call(cloudformation.create_stack, name, **request, OnFailure="ROLLBACK")
        action, expected = ("recreated" if recreated else "created"), "CREATE_COMPLETE"
        log = EventLog(cloudformation, response["StackId"])
    else:
        if template_body is not None and unchanged(cloudformation, stack, template_body, parameters, tags):
            return StackOutcome(stack, "unchanged")
        if keep_previous_values:
            request["Parameters"] += previous_values(cloudformation, stack, template, parameters)
        log = EventLog(cloudformation, stack["StackId"])
        log.skip_existing()
        try:
            response = _call(cloudformation.update_stack, name, **request)
        except _NoUpdates:
            return StackOutcome(stack, "unchanged")
        action, expected = "updated", "UPDATE_COMPLETE"

    final = wait(cloudformation, response["StackId"], log, waiting)
    if final["StackStatus"] != expected:
        kept = "the previous version keeps serving" if final["StackStatus"] == "UPDATE_ROLLBACK_COMPLETE" else ""
        raise DeployError(
            f"stack {name} ended {final['StackStatus']} instead of {expected}"
            f"{': ' + kept if kept else ''}. Failed resources:\n{failure_summary(log.operation, final)}"
        )
    return StackOutcome(final, action)


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
