"""Trigger Lambda: a model version approved or rejected -> the model-deploy GitLab pipeline.

EventBridge delivers "SageMaker Model Package State Change" events. A valid event for this project's
model package group with status Approved or Rejected triggers the deploy project's pipeline on its
default branch with MODEL_PACKAGE_ARN, MODEL_PACKAGE_GROUP(_NAME), MODEL_APPROVAL_STATUS and
EVENTBRIDGE_EVENT_ID. Anything else is logged and ignored.

- Auth: the deploy project's pipeline trigger token from Secrets Manager (written by the seed step),
  never a personal token; the project is addressed by id, never searched by name.
- GitLab 429/5xx and timeouts are retried with backoff by python-gitlab; then the error is raised,
  so Lambda's own retries and the dead-letter queue take over. Nothing is swallowed.
- Idempotency (Powertools, DynamoDB) on the EventBridge event id: a redelivered event starts no
  second pipeline. A failed attempt leaves no record, so its retry runs again.

Environment: GITLAB_URL, TRIGGER_SECRET_ARN, MODEL_PACKAGE_GROUP_NAME, IDEMPOTENCY_TABLE.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

import boto3
import gitlab
import requests
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.parser import ValidationError, parse
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from pydantic import BaseModel

logger = Logger(service="model-approval-trigger")

EVENT_SOURCE = "aws.sagemaker"
EVENT_DETAIL_TYPE = "SageMaker Model Package State Change"
TRIGGERING_STATUSES = ("Approved", "Rejected")
GITLAB_TIMEOUT_SECONDS = 10
GITLAB_MAX_RETRIES = 4  # python-gitlab backs off 0.1, 0.2, 0.4, 0.8 s (or as Retry-After says)
# EventBridge retries for up to 24 h and Lambda's async retries for up to 6 h: remember events as long.
IDEMPOTENCY_SECONDS = 24 * 60 * 60


class ModelPackageStateDetail(BaseModel):
    ModelPackageGroupName: str
    ModelPackageArn: str
    ModelApprovalStatus: str
    ModelPackageVersion: int | None = None


class ModelPackageStateChange(EventBridgeModel):
    detail: ModelPackageStateDetail


class ConfigurationError(Exception):
    """The function or its secret is not set up; the message says how to fix it."""


class TriggerError(Exception):
    """GitLab did not start the pipeline; raised so Lambda retries and then dead-letters the event."""


@dataclass(frozen=True)
class Settings:
    gitlab_url: str
    trigger_secret_arn: str
    model_package_group: str
    idempotency_table: str

    @classmethod
    def from_env(cls) -> Settings:
        names = {
            "gitlab_url": "GITLAB_URL",
            "trigger_secret_arn": "TRIGGER_SECRET_ARN",
            "model_package_group": "MODEL_PACKAGE_GROUP_NAME",
            "idempotency_table": "IDEMPOTENCY_TABLE",
        }
        missing = [env for env in names.values() if not os.environ.get(env)]
        if missing:
            raise ConfigurationError(f"environment variables not set: {', '.join(missing)} (the template sets them)")
        return cls(**{attr: os.environ[env] for attr, env in names.items()})


@dataclass(frozen=True)
class TriggerSecret:
    project_id: int
    ref: str
    token: str = field(repr=False)

    @classmethod
    def load(cls, secret_arn: str) -> TriggerSecret:
        raw = boto3.client("secretsmanager").get_secret_value(SecretId=secret_arn)["SecretString"]
        try:
            value = json.loads(raw)
            return cls(project_id=int(value["project_id"]), ref=str(value["ref"]), token=str(value["token"]))
        except (ValueError, KeyError, TypeError):
            raise ConfigurationError(
                f"trigger secret {secret_arn} holds no trigger token yet: seed the projects (stack custom resource,"
                " or `scripts/provision-project seed`)"
            ) from None


def lambda_handler(event: dict, context) -> dict:
    logger.set_correlation_id(event.get("id") if isinstance(event, dict) else None)
    settings = Settings.from_env()
    change, reason = validate(event, settings.model_package_group)
    if change is None:
        logger.info("event ignored", extra={"reason": reason})
        return {"status": "ignored", "reason": reason}

    # Built per invocation (approvals are rare): the client follows the current environment and endpoint.
    config = IdempotencyConfig(
        event_key_jmespath="id", expires_after_seconds=IDEMPOTENCY_SECONDS, response_hook=_log_duplicate
    )
    config.register_lambda_context(context)
    trigger_once = idempotent_function(
        data_keyword_argument="change",
        persistence_store=DynamoDBPersistenceLayer(table_name=settings.idempotency_table),
        config=config,
    )(trigger_deploy_pipeline)
    return trigger_once(change=change, settings=settings)


def validate(event: object, group: str) -> tuple[ModelPackageStateChange | None, str]:
    """The parsed event, or None and why it is not ours."""
    try:
        change = parse(event=event, model=ModelPackageStateChange)
    except ValidationError as error:
        fields = sorted({".".join(str(p) for p in e["loc"]) for e in error.errors()})
        return None, f"malformed event: {', '.join(fields) or 'not an object'}"
    if change.source != EVENT_SOURCE:
        return None, f"source {change.source!r} is not {EVENT_SOURCE}"
    if change.detail_type != EVENT_DETAIL_TYPE:
        return None, f"detail-type {change.detail_type!r} is not {EVENT_DETAIL_TYPE!r}"
    if change.detail.ModelPackageGroupName != group:
        return None, f"model package group {change.detail.ModelPackageGroupName!r} is not this project's ({group!r})"
    if change.detail.ModelApprovalStatus not in TRIGGERING_STATUSES:
        return None, f"approval status {change.detail.ModelApprovalStatus!r} needs no deployment"
    return change, ""


def trigger_deploy_pipeline(change: ModelPackageStateChange, settings: Settings) -> dict:
    secret = TriggerSecret.load(settings.trigger_secret_arn)
    detail = change.detail
    variables = {
        "MODEL_PACKAGE_ARN": detail.ModelPackageArn,
        "MODEL_PACKAGE_GROUP": detail.ModelPackageGroupName,
        "MODEL_PACKAGE_GROUP_NAME": detail.ModelPackageGroupName,
        "MODEL_APPROVAL_STATUS": detail.ModelApprovalStatus,
        "EVENTBRIDGE_EVENT_ID": change.id,
    }
    # No private token: the trigger token alone authorises this one call.
    client = gitlab.Gitlab(settings.gitlab_url, timeout=GITLAB_TIMEOUT_SECONDS, retry_transient_errors=True)
    project = client.projects.get(secret.project_id, lazy=True)  # by id, no lookup request
    try:
        pipeline = project.trigger_pipeline(
            ref=secret.ref, token=secret.token, variables=variables, max_retries=GITLAB_MAX_RETRIES
        )
    except gitlab.GitlabAuthenticationError as error:
        raise TriggerError(
            f"GitLab rejected the trigger token ({error.response_code}): re-run the seed to rotate it"
        ) from error
    except gitlab.GitlabError as error:
        raise TriggerError(
            f"GitLab refused the pipeline trigger for project {secret.project_id} on {secret.ref!r}"
            f" ({error.response_code}: {error.error_message})"
        ) from error
    except requests.RequestException as error:
        raise TriggerError(
            f"GitLab at {settings.gitlab_url} did not answer after retries ({type(error).__name__})"
        ) from error
    logger.info(
        "deploy pipeline triggered",
        extra={
            "pipeline_id": pipeline.id,
            "pipeline_url": pipeline.attributes.get("web_url"),
            "model_package_arn": detail.ModelPackageArn,
            "approval_status": detail.ModelApprovalStatus,
        },
    )
    return {
        "status": "triggered",
        "pipeline_id": pipeline.id,
        "pipeline_url": pipeline.attributes.get("web_url"),
        "event_id": change.id,
    }


def _log_duplicate(response: dict, _record) -> dict:
    logger.info(
        "duplicate event: its pipeline was already triggered", extra={"pipeline_id": response.get("pipeline_id")}
    )
    return {**response, "status": "duplicate"}
