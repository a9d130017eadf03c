"""Put a template's EventBridge rules, and the Lambda functions they target, into moto.

    provision(Path("cloudformation/project.yml"), stack_name="sagemaker-abalone", parameters={...},
              resources={"TriggerSecret": secret_arn, "IdempotencyTable": table}, clients=..., task_roots=...)

What CloudFormation would create from the template, for these two resource types only:
- each `AWS::Events::Rule` on the default bus: its name `<stack>-<LogicalId>`, its `EventPattern`, `State`
  and `Description` resolved from the template, and its targets' `Id`, `Arn`, `RetryPolicy`, `Input`,
  `InputPath` and `InputTransformer`;
- each `AWS::Lambda::Function` a rule targets: `<stack>-<LogicalId>`, with the template's `Handler`,
  `Runtime`, `Timeout`, `MemorySize` and `Environment`, its role (created in IAM from the template's trust
  policy), and its code: the folder the handler imports from, copied into the stack's state as the task root
  that `local_aws.awslambda` runs.
A target that is an SNS topic (`!Ref AlertTopic`) gets the topic the caller made and passes in `resources`.
Parameters the caller does not give take the template's `Default`.
Provisioning again updates what exists (the local GitLab's URL changes on every start). Target settings that
name resources the local stack does not make (a dead-letter queue, a KMS key) are left out; the README says so.
"""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from local_aws.cloudformation.template import TemplateError, load, resolve

TARGET_FIELDS = ("Id", "Arn", "RetryPolicy", "Input", "InputPath", "InputTransformer")
FUNCTION_FIELDS = ("Handler", "Runtime", "Timeout", "MemorySize", "Description", "Environment")


@dataclass(frozen=True)
class ProvisionedRule:
    name: str
    logical_id: str
    targets: tuple[str, ...]  # target ARNs


def provision(
    template_path: Path,
    *,
    stack_name: str,
    parameters: Mapping[str, str],
    resources: Mapping[str, str],
    client: Callable[[str], Any],
    account_id: str,
    region: str,
    code_root: Path,
    task_roots: Path,
) -> list[ProvisionedRule]:
    """Provision every rule of the template. `code_root` is the folder a function's zip is made from
    (cloudformation/ for this project: the handler is `lambdas.<function>.handler`); `task_roots` is where the
    copied code of each function goes (`<task_roots>/<function name>/`)."""
    template = load(template_path)
    declared = template.get("Resources") or {}
    # A parameter left out takes its Default, as CloudFormation does (e.g. AlertWindowMinutes).
    defaults = {
        name: str(declaration["Default"])
        for name, declaration in (template.get("Parameters") or {}).items()
        if "Default" in declaration
    }
    references: dict[str, Any] = {**defaults, **parameters, **resources}
    references |= {"AWS::AccountId": account_id, "AWS::Region": region, "AWS::Partition": "aws"}
    references["AWS::StackName"] = stack_name
    rules = {logical: resource for logical, resource in declared.items() if resource.get("Type") == "AWS::Events::Rule"}
    provisioned = []
    for logical_id, rule in rules.items():
        properties = rule.get("Properties") or {}
        for target in properties.get("Targets") or []:
            function_id = _targeted_function(target, declared)
            if function_id is not None and f"{function_id}.Arn" not in references:
                references[f"{function_id}.Arn"] = _provision_function(
                    function_id, declared, stack_name, references, client, code_root, task_roots
                )
        provisioned.append(_provision_rule(logical_id, properties, stack_name, references, client))
    return provisioned


def _targeted_function(target: Mapping[str, Any], declared: Mapping[str, Any]) -> str | None:
    arn = target.get("Arn")
    if isinstance(arn, dict) and "Fn::GetAtt" in arn:
        logical_id = arn["Fn::GetAtt"][0]
        if (declared.get(logical_id) or {}).get("Type") == "AWS::Lambda::Function":
            return logical_id
    return None


def _provision_rule(
    logical_id: str, properties: Mapping[str, Any], stack_name: str, references, client
) -> ProvisionedRule:
    events = client("events")
    name = f"{stack_name}-{logical_id}"
    where = f"Resources.{logical_id}.Properties"
    pattern = resolve(properties.get("EventPattern"), references, f"{where}.EventPattern")
    if pattern is None:
        raise TemplateError(f"{where}: the local stack routes rules with an EventPattern only")
    rule = {"Name": name, "EventPattern": json.dumps(pattern), "State": properties.get("State", "ENABLED")}
    if "Description" in properties:
        rule["Description"] = resolve(properties["Description"], references, f"{where}.Description")
    events.put_rule(**rule)
    targets = [
        {
            field: resolve(target[field], references, f"{where}.Targets.{field}")
            for field in TARGET_FIELDS
            if field in target
        }
        for target in properties.get("Targets") or []
    ]
    if targets:
        events.put_targets(Rule=name, Targets=targets)
    return ProvisionedRule(name, logical_id, tuple(target["Arn"] for target in targets))


def _provision_function(
    logical_id: str, declared, stack_name: str, references, client, code_root: Path, task_roots: Path
) -> str:
    properties = declared[logical_id].get("Properties") or {}
    where = f"Resources.{logical_id}.Properties"
    name = f"{stack_name}-{logical_id}"
    settings = {
        field: resolve(properties[field], references, f"{where}.{field}")
        for field in FUNCTION_FIELDS
        if field in properties
    }
    task_root = task_roots / name
    _copy_code(code_root, settings["Handler"], task_root)
    role_arn = _function_role(properties.get("Role"), declared, stack_name, client)
    lambda_client = client("lambda")
    try:
        lambda_client.get_function_configuration(FunctionName=name)
    except lambda_client.exceptions.ResourceNotFoundException:
        answer = lambda_client.create_function(
            FunctionName=name, Role=role_arn, Code={"ZipFile": _zip(task_root)}, **settings
        )
        return answer["FunctionArn"]
    lambda_client.update_function_code(FunctionName=name, ZipFile=_zip(task_root))
    return lambda_client.update_function_configuration(FunctionName=name, Role=role_arn, **settings)["FunctionArn"]


def _copy_code(code_root: Path, handler: str, task_root: Path) -> None:
    """The top-level package the handler imports from (e.g. `lambdas`), as the zip would hold it."""
    package = handler.split(".", 1)[0]
    if not (code_root / package).is_dir():
        raise TemplateError(f"handler {handler}: no package {package!r} in {code_root}")
    shutil.rmtree(task_root, ignore_errors=True)
    shutil.copytree(code_root / package, task_root / package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


def _zip(task_root: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(task_root.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(task_root).as_posix())
    return buffer.getvalue()


def _function_role(role: Any, declared, stack_name: str, client) -> str:
    """The function's role, created in IAM with the template's trust policy (moto wants the role to exist)."""
    if not (isinstance(role, dict) and "Fn::GetAtt" in role):
        raise TemplateError(f"a function's Role must be !GetAtt <Role>.Arn to provision it locally, not {role!r}")
    logical_id = role["Fn::GetAtt"][0]
    trust = ((declared.get(logical_id) or {}).get("Properties") or {}).get("AssumeRolePolicyDocument")
    iam = client("iam")
    name = f"{stack_name}-{logical_id}"[:64]
    try:
        return iam.get_role(RoleName=name)["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        return iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
