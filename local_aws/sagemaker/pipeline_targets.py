"""A SageMaker pipeline as the target of another AWS service: an EventBridge rule or an EventBridge Scheduler
schedule. What those services do with such a target, as AWS documents it:

    execution_arn = start_as_service(target, service="scheduler.amazonaws.com", source_arn=schedule_arn,
                                     source_account=account, environ=stack_environment)

1. the target's `RoleArn` must exist and its trust policy must let the service (`scheduler.amazonaws.com`,
   `events.amazonaws.com`) assume it, with the `aws:SourceAccount` / `aws:SourceArn` conditions AWS sets for
   these services evaluated (`StringEquals`, `StringLike`, `ArnEquals`, `ArnLike`); another condition is refused,
   naming it, rather than assumed true;
2. the service assumes the role through STS;
3. as that role, StartPipelineExecution of the pipeline the target's ARN names, with the target's
   `SageMakerPipelineParameters.PipelineParameterList`.

moto evaluates no IAM policy: whether the role's own policy allows `sagemaker:StartPipelineExecution` on that
pipeline is asserted by the template tests (tests/cloudformation), not here (README, deviations).
"""

from __future__ import annotations

import fnmatch
import json
import re
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

PIPELINE_ARN = re.compile(
    r"^arn:(?P<partition>[\w-]+):sagemaker:(?P<region>[\w-]+):(?P<account>\d{12}):pipeline/(?P<name>[A-Za-z0-9-]+)$"
)
CONDITION_OPERATORS = {
    "StringEquals": lambda value, wanted: value == wanted,
    "ArnEquals": lambda value, wanted: value == wanted,
    "StringLike": lambda value, wanted: fnmatch.fnmatchcase(value, wanted),
    "ArnLike": lambda value, wanted: fnmatch.fnmatchcase(value, wanted),
}


@dataclass(frozen=True)
class Started:
    execution_arn: str
    caller: str  # the assumed-role session that called StartPipelineExecution


class TargetError(ValueError):
    """The target cannot be invoked as AWS would invoke it; the message names the problem and the fix."""


def pipeline_name(target: Mapping[str, Any]) -> str:
    arn = str(target.get("Arn", ""))
    found = PIPELINE_ARN.match(arn)
    if found is None:
        raise TargetError(
            f"target {arn!r} is not a SageMaker pipeline ARN (arn:aws:sagemaker:<region>:<account>:pipeline/<name>)"
        )
    return found["name"]


def start_as_service(
    target: Mapping[str, Any],
    *,
    service: str,
    source_arn: str,
    source_account: str,
    environ: Mapping[str, str],
    session_name: str = "local-stack-target",
) -> Started:
    """Start the target's pipeline as its role, assumed by `service`."""
    name = pipeline_name(target)
    role_arn = target.get("RoleArn")
    if not role_arn:
        raise TargetError(f"target {target.get('Arn')} has no RoleArn: {service} needs a role to start a pipeline")
    iam = _client("iam", environ)
    role_name = role_arn.rsplit("/", 1)[-1]
    try:
        trust = iam.get_role(RoleName=role_name)["Role"]["AssumeRolePolicyDocument"]
    except iam.exceptions.NoSuchEntityException:
        raise TargetError(f"the target's role {role_arn} does not exist: deploy the stack that creates it") from None
    check_trust(trust, role_arn, service=service, source_account=source_account, source_arn=source_arn)
    credentials = _client("sts", environ).assume_role(RoleArn=role_arn, RoleSessionName=session_name)["Credentials"]
    sagemaker = _client(
        "sagemaker",
        environ,
        endpoint=environ.get("AWS_ENDPOINT_URL_SAGEMAKER") or environ["AWS_ENDPOINT_URL"],
        credentials=credentials,
    )
    parameters = list((target.get("SageMakerPipelineParameters") or {}).get("PipelineParameterList") or [])
    caller = _client("sts", environ, credentials=credentials).get_caller_identity()["Arn"]
    answer = sagemaker.start_pipeline_execution(
        PipelineName=name, PipelineParameters=parameters, ClientRequestToken=str(uuid.uuid4())
    )
    return Started(answer["PipelineExecutionArn"], caller)


def check_trust(trust: Any, role_arn: str, *, service: str, source_account: str, source_arn: str) -> None:
    """Raise TargetError unless a statement of the trust policy lets `service` assume the role for this source."""
    if isinstance(trust, str):
        trust = json.loads(unquote(trust))
    refusals = []
    for statement in _as_list((trust or {}).get("Statement")):
        if statement.get("Effect") != "Allow":
            continue
        actions = _as_list(statement.get("Action"))
        if not any(fnmatch.fnmatchcase("sts:AssumeRole", action) for action in actions):
            continue
        services = _as_list((statement.get("Principal") or {}).get("Service"))
        if service not in services:
            continue
        reason = _conditions_refuse(statement.get("Condition") or {}, source_account, source_arn)
        if reason is None:
            return
        refusals.append(reason)
    detail = f" ({'; '.join(refusals)})" if refusals else f": no statement allows {service} sts:AssumeRole"
    raise TargetError(
        f"{service} may not assume {role_arn}{detail}. Fix the role's AssumeRolePolicyDocument: Principal"
        f" {{Service: {service}}}, Action sts:AssumeRole, aws:SourceAccount {source_account}"
    )


def _conditions_refuse(conditions: Mapping[str, Any], source_account: str, source_arn: str) -> str | None:
    context = {"aws:sourceaccount": source_account, "aws:sourcearn": source_arn}
    for operator, tests in conditions.items():
        compare = CONDITION_OPERATORS.get(operator)
        if compare is None:
            return f"condition operator {operator} is not evaluated by the local stack"
        for key, wanted in tests.items():
            value = context.get(key.lower())
            if value is None:
                return f"condition key {key} is not set by the service"
            if not any(compare(value, str(each)) for each in _as_list(wanted)):
                return f"{operator} {key} {wanted!r} does not admit {value!r}"
    return None


def _as_list(value: Any) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _client(service: str, environ: Mapping[str, str], *, endpoint: str | None = None, credentials=None):
    """A boto3 client on the stack; those with the stack's own keys are cached (building one costs ~50 ms)."""
    if credentials:
        return _new_client(service, environ, endpoint, credentials)
    region = environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION")
    key = (service, endpoint or environ["AWS_ENDPOINT_URL"], region, environ["AWS_ACCESS_KEY_ID"])
    with _clients_lock:
        if key not in _clients:
            _clients[key] = _new_client(service, environ, endpoint, None)
        return _clients[key]


_clients: dict[tuple, Any] = {}
_clients_lock = threading.Lock()


def _new_client(service: str, environ: Mapping[str, str], endpoint: str | None, credentials):
    import boto3
    from botocore.config import Config

    keys = (
        {
            "aws_access_key_id": credentials["AccessKeyId"],
            "aws_secret_access_key": credentials["SecretAccessKey"],
            "aws_session_token": credentials["SessionToken"],
        }
        if credentials
        else {
            "aws_access_key_id": environ["AWS_ACCESS_KEY_ID"],
            "aws_secret_access_key": environ["AWS_SECRET_ACCESS_KEY"],
        }
    )
    return boto3.session.Session().client(
        service,
        endpoint_url=endpoint or environ["AWS_ENDPOINT_URL"],
        region_name=environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION"),
        config=Config(retries={"max_attempts": 1}),
        **keys,
    )
