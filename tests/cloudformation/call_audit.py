"""The AWS calls a command really makes, decided against a role of the rendered project template.

`recorded_calls()` records every botocore call of this process (boto3's and the SageMaker SDK's clients alike);
`undecided(calls, role)` turns each into the IAM request it is (action, resource ARN, condition keys) and returns
those the role's policies (and, for S3, the bucket policy) do not allow. The local stack's names are mapped onto
the rendered template's sample account, region and bucket, so the same policies decide them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from unittest import mock

from botocore.client import BaseClient

from .policy_evaluator import ALLOW, Request, decide
from .rendered_template import ACCOUNT, BUCKET, REGION, Rendered

# What IAM calls them when the API name differs.
ACTION = {("s3", "HeadObject"): "s3:GetObject", ("s3", "ListObjectsV2"): "s3:ListBucket"}
NOT_AUTHORIZED = {("sts", "GetCallerIdentity")}  # needs no permission


@contextmanager
def recorded_calls() -> Iterator[list[tuple[str, str, dict]]]:
    calls: list[tuple[str, str, dict]] = []
    original = BaseClient._make_api_call

    def record(client, operation, params):
        calls.append((client.meta.service_model.service_name, operation, dict(params)))
        return original(client, operation, params)

    with mock.patch.object(BaseClient, "_make_api_call", record):
        yield calls


def _sm(kind: str, name: str) -> str:
    return f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:{kind}/{name.lower()}"


def _local(arn: str) -> str:
    """A local ARN in the rendered template's account and region."""
    return re.sub(r"^arn:aws:([a-z0-9-]+):[a-z0-9-]*:[0-9]*:", rf"arn:aws:\1:{REGION}:{ACCOUNT}:", arn)


def requests(calls, bucket: str, names: dict[str, str] | None = None) -> list[Request]:
    """The IAM requests these calls are (PassRole too, where a call hands a role to the service).

    names: local resource names -> the names AWS would have (moto's CloudFormation ignores name properties)."""
    found = []
    for service, operation, params in calls:
        params = {
            key: (names or {}).get(value, value) if isinstance(value, str) else value for key, value in params.items()
        }
        if (service, operation) in NOT_AUTHORIZED:
            continue
        action = ACTION.get((service, operation), f"{service}:{operation}")
        resource, context = "*", {}
        if service == "s3":
            target = BUCKET if params.get("Bucket") == bucket else params.get("Bucket")
            resource = f"arn:aws:s3:::{target}" + (f"/{params['Key']}" if "Key" in params else "")
            if "Prefix" in params:
                context["s3:prefix"] = params["Prefix"]
        elif service == "cloudformation" and "StackName" in params:
            name = params["StackName"]
            resource = (
                _local(name) if name.startswith("arn:") else f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{name}/x"
            )
        elif service == "sagemaker":
            for key, kind in (
                ("PipelineExecutionArn", None),
                ("ResourceArn", None),
                ("ModelPackageName", None),
                ("ModelPackageArn", None),
                ("PipelineName", "pipeline"),
                ("ModelName", "model"),
                ("EndpointName", "endpoint"),
                ("EndpointConfigName", "endpoint-config"),
                ("ModelPackageGroupName", "model-package-group"),
            ):
                if key in params:
                    value = params[key]
                    resource = _local(value) if kind is None or value.startswith("arn:") else _sm(kind, value)
                    break
            for tag in params.get("Tags") or []:
                context[f"aws:RequestTag/{tag['Key']}"] = tag["Value"]
            if params.get("Tags"):
                context["aws:TagKeys"] = [tag["Key"] for tag in params["Tags"]]
        found.append(Request(action, resource, context))
        for key in ("RoleArn", "ExecutionRoleArn"):
            if service == "sagemaker" and key in params:
                found.append(
                    Request(
                        "iam:PassRole",
                        f"arn:aws:iam::{ACCOUNT}:role/ModelExecutionRole",
                        {"iam:PassedToService": "sagemaker.amazonaws.com"},
                    )
                )
    return found


def undecided(rendered: Rendered, role: str, calls, bucket: str, names=None) -> list[tuple[str, str]]:
    """(action, resource) of every call the role may not make."""
    principal = rendered.arn(role)
    refused = []
    for request in requests(calls, bucket, names):
        context = {"aws:PrincipalArn": principal, "aws:SecureTransport": "true", "s3:TlsVersion": "1.3"}
        asked = Request(request.action, request.resource, {**context, **request.context}, principal={"AWS": principal})
        policies = rendered.identity_policies(role)
        if request.action.startswith("s3:"):
            policies.append(rendered.bucket_policy())
        if decide(asked, policies) != ALLOW:
            refused.append((request.action, request.resource))
    return sorted(set(refused))
