"""Deliver an approval event to the trigger Lambda's real handler, on the local stack.

    from local_stack.gitlab_receiver import GitLabReceiver
    from local_stack.trigger_bridge import deliver_approval_event

    with GitLabReceiver(on_pipeline=run_deploy_pipeline) as receiver:
        result = deliver_approval_event(event, receiver, model_package_group="abalone")
        # {"status": "triggered" | "duplicate" | "ignored", ...}, exactly what the Lambda returns

What EventBridge and the stack do on AWS, this does against the environment's AWS endpoint (the
moto server of `scripts/local-stack env`, or any `AWS_ENDPOINT_URL`):
- the trigger secret (`{"project_id", "ref", "token"}` of the receiver) is written to Secrets Manager
  on every delivery (each receiver has its own token), and the idempotency table is created in
  DynamoDB once (it outlives receivers, as the template's does);
- the handler from cloudformation/lambdas/model_trigger runs in this process with the environment
  the template gives it, GITLAB_URL pointing at the receiver.
The handler's exceptions propagate, as a failed Lambda invocation would (EventBridge would retry).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import boto3

from local_stack.gitlab_receiver import GitLabReceiver

# The Lambda runtime puts the zip root on sys.path; here the zip root is cloudformation/.
LAMBDA_ROOT = Path(__file__).resolve().parents[1] / "cloudformation"
IDEMPOTENCY_TABLE = "local-model-approval-idempotency"
TIMEOUT_SECONDS = 90  # the template's Timeout for the trigger function (a test keeps them equal)


@dataclass
class LocalLambdaContext:
    """The attributes of Lambda's context object that Powertools reads."""

    function_name: str = "local-model-approval-trigger"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:local-model-approval-trigger"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = "/aws/lambda/local-model-approval-trigger"
    log_stream_name: str = "local"
    deadline: float = field(default_factory=lambda: time.monotonic() + TIMEOUT_SECONDS)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


def deliver_approval_event(event: dict, receiver: GitLabReceiver, *, model_package_group: str) -> dict:
    """Run the trigger Lambda's handler on `event`; returns its result."""
    secret_arn = ensure_trigger_secret(receiver, model_package_group)
    ensure_idempotency_table()
    environment = {
        "GITLAB_URL": receiver.url,
        "TRIGGER_SECRET_ARN": secret_arn,
        "MODEL_PACKAGE_GROUP_NAME": model_package_group,
        "IDEMPOTENCY_TABLE": IDEMPOTENCY_TABLE,
        "POWERTOOLS_SERVICE_NAME": "model-approval-trigger",
    }
    with _environment(environment):
        handler = _trigger_handler()
        return handler.lambda_handler(event, LocalLambdaContext())


def ensure_trigger_secret(receiver: GitLabReceiver, model_package_group: str) -> str:
    """What the seed step stores on AWS: the deploy project's id, default branch and trigger token."""
    client = boto3.client("secretsmanager")
    name = f"local/{model_package_group}/gitlab-trigger"
    value = json.dumps({"project_id": receiver.project_id, "ref": receiver.ref, "token": receiver.trigger_token})
    try:
        return client.put_secret_value(SecretId=name, SecretString=value)["ARN"]
    except client.exceptions.ResourceNotFoundException:
        return client.create_secret(Name=name, SecretString=value)["ARN"]


def ensure_idempotency_table() -> None:
    """The template's table: key `id`, TTL on `expiration` (Powertools' defaults)."""
    client = boto3.client("dynamodb")
    with contextlib.suppress(client.exceptions.ResourceInUseException):
        client.create_table(
            TableName=IDEMPOTENCY_TABLE,
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
        client.get_waiter("table_exists").wait(TableName=IDEMPOTENCY_TABLE)


def _trigger_handler():
    if str(LAMBDA_ROOT) not in sys.path:
        sys.path.insert(0, str(LAMBDA_ROOT))
    from lambdas.model_trigger import handler

    return handler


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old
