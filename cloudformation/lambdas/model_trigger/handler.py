"""Trigger Lambda: a model version approved or rejected -> the model-deploy GitLab pipeline.

EventBridge delivers "SageMaker Model Package State Change" events. A valid event for this project's
model package group with status Approved or Rejected triggers the deploy project's pipeline on its
default branch with MODEL_PACKAGE_ARN, MODEL_PACKAGE_GROUP(_NAME), MODEL_APPROVAL_STATUS and
EVENTBRIDGE_EVENT_ID. Anything else is logged and ignored.

- The package ARN must be in this project's group, account and region (the function's own, from its
  ARN), whatever the event's group field says: checked before any call to GitLab.
- Auth: the deploy project's pipeline trigger token from Secrets Manager (written by the seed step),
  never a personal token; the project is addressed by id, never searched by name. The token is in no
  log record at any level (botocore's DEBUG output of the secret is switched off for that one call)
  and in no exception text (GitLab or proxy error bodies that echo it are redacted).
- The trigger POST is not idempotent and the trigger token cannot list pipelines, so the function
  cannot ask GitLab whether a lost request arrived. It re-sends only requests that never left
  (connection refused, DNS, connect timeout) and 429s (GitLab's rate limiter answers before any work).
  A timeout after sending, a dropped connection or a 5xx may have started a pipeline: it is raised,
  once, so Lambda's retries (minutes apart) and the dead-letter queue take over. A pipeline such a
  retry starts for the same event stops in its first job: `python -m deploy build` records
  EVENTBRIDGE_EVENT_ID in S3 with a create-only write, so one approval deploys once.
- Idempotency (Powertools, DynamoDB) on the EventBridge event id: a redelivered event starts no
  second pipeline. A failed attempt leaves no record, so its retry runs again.

The retraining decision: a "Batch Inference Retraining Recommended" event of this project's batch inference
(source `mlops.<group>.batch-inference`, put by its Postprocess step) starts a retraining build on the latest
data at the build's configured input, as RETRAINING_TARGET says:
- `gitlab` (the default): the model-build project's pipeline, through its own trigger token (the secret's
  "build" entry, written by the seed), with DRIFT_EXECUTION_ARN, DRIFT_STAGE, DRIFT_MODEL_PACKAGE_ARN and
  EVENTBRIDGE_EVENT_ID; the build keeps GitLab's lineage (commit, pipeline URL) as any build does;
- `pipeline`: StartPipelineExecution of the build pipeline (BUILD_PIPELINE_NAME) with the drift run named in the
  execution's display name and description; the package it registers names that execution (GeneratedBy).
Same validation (the event's account, the project), same idempotency on the event id, same GitLab code path.

Environment: GITLAB_URL, TRIGGER_SECRET_ARN, MODEL_PACKAGE_GROUP_NAME, IDEMPOTENCY_TABLE; RETRAINING_TARGET
(gitlab | pipeline, default gitlab) and BUILD_PIPELINE_NAME (default <group>-build) for retraining.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import time
from dataclasses import dataclass, field

import boto3
import gitlab
import requests
import urllib3.exceptions
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
RETRAINING_DETAIL_TYPE = "Batch Inference Retraining Recommended"  # model-deploy/deploy/batch/postprocess.py
RETRAINING_TARGETS = ("gitlab", "pipeline")
TRIGGERING_STATUSES = ("Approved", "Rejected")
# (connect, read). A slow GitLab gets 30 s to answer: every read timeout may mean a second pipeline.
GITLAB_TIMEOUT_SECONDS = (5, 30)
# Sends of a request that never reached GitLab (and of 429s, which python-gitlab retries as Retry-After says).
GITLAB_MAX_RETRIES = 4  # backoff 0.1, 0.2, 0.4, 0.8 s
# arn:<partition>:sagemaker:<region>:<account>:model-package/<group>/<version>
PACKAGE_ARN = re.compile(
    r"arn:(?P<partition>[\w-]+):sagemaker:(?P<region>[\w-]+):(?P<account>\d{12})"
    r":model-package/(?P<group>[^/]+)/\d+"
)
REDACTED = "[REDACTED]"
# EventBridge retries for up to 24 h and Lambda's async retries for up to 6 h: remember events as long.
IDEMPOTENCY_SECONDS = 24 * 60 * 60


class ModelPackageStateDetail(BaseModel):
    ModelPackageGroupName: str
    ModelPackageArn: str
    ModelApprovalStatus: str
    ModelPackageVersion: int | None = None


class ModelPackageStateChange(EventBridgeModel):
    detail: ModelPackageStateDetail


class RetrainingDetail(BaseModel):
    project: str
    stage: str
    model_package_arn: str
    execution_arn: str
    decision: dict = {}


class RetrainingRecommended(EventBridgeModel):
    detail: RetrainingDetail


def retraining_source(group: str) -> str:
    return f"mlops.{group}.batch-inference"  # as postprocess.source_name


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
    retraining_target: str = "gitlab"
    build_pipeline_name: str = ""

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
        target = os.environ.get("RETRAINING_TARGET") or "gitlab"
        if target not in RETRAINING_TARGETS:
            raise ConfigurationError(f"RETRAINING_TARGET {target!r} is not one of {', '.join(RETRAINING_TARGETS)}")
        group = os.environ["MODEL_PACKAGE_GROUP_NAME"]
        return cls(
            **{attr: os.environ[env] for attr, env in names.items()},
            retraining_target=target,
            build_pipeline_name=os.environ.get("BUILD_PIPELINE_NAME") or f"{group}-build",
        )


@dataclass(frozen=True)
class TriggerSecret:
    project_id: int
    ref: str
    token: str = field(repr=False)
    build: TriggerSecret | None = None  # the model-build project's trigger (retraining)

    @classmethod
    def load(cls, secret_arn: str) -> TriggerSecret:
        with _no_debug_records():
            raw = boto3.client("secretsmanager").get_secret_value(SecretId=secret_arn)["SecretString"]
        try:
            value = json.loads(raw)
            build = value.get("build")
            return cls(
                project_id=int(value["project_id"]),
                ref=str(value["ref"]),
                token=str(value["token"]),
                build=cls(int(build["project_id"]), str(build["ref"]), str(build["token"])) if build else None,
            )
        except (ValueError, KeyError, TypeError):
            raise ConfigurationError(
                f"trigger secret {secret_arn} holds no trigger token yet: seed the projects (stack custom resource,"
                " or `scripts/provision-project seed`)"
            ) from None


@dataclass(frozen=True)
class Home:
    """Where this function runs: a package of this project is in this partition, region and account."""

    partition: str
    region: str
    account: str

    @classmethod
    def of(cls, context) -> Home:
        # arn:aws:lambda:<region>:<account>:function:<name>; STS only when the context has no ARN.
        parts = (getattr(context, "invoked_function_arn", "") or "").split(":")
        if len(parts) >= 5 and parts[4]:
            return cls(partition=parts[1], region=parts[3], account=parts[4])
        identity = boto3.client("sts").get_caller_identity()
        region = os.environ.get("AWS_REGION") or boto3.session.Session().region_name or ""
        return cls(partition=identity["Arn"].split(":")[1], region=region, account=identity["Account"])


def lambda_handler(event: dict, context) -> dict:
    logger.set_correlation_id(event.get("id") if isinstance(event, dict) else None)
    settings = Settings.from_env()
    retraining = isinstance(event, dict) and event.get("detail-type") == RETRAINING_DETAIL_TYPE
    if retraining:
        change, reason = validate_retraining(event, settings.model_package_group, Home.of(context))
    else:
        change, reason = validate(event, settings.model_package_group, Home.of(context))
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
    )(start_retraining if retraining else trigger_deploy_pipeline)
    return trigger_once(change=change, settings=settings)


def validate_retraining(event: object, group: str, home: Home) -> tuple[RetrainingRecommended | None, str]:
    """The parsed retraining event, or None and why it is not ours."""
    try:
        change = parse(event=event, model=RetrainingRecommended)
    except ValidationError as error:
        fields = sorted({".".join(str(p) for p in e["loc"]) for e in error.errors()})
        return None, f"malformed event: {', '.join(fields) or 'not an object'}"
    if change.source != retraining_source(group):
        return None, f"source {change.source!r} is not {retraining_source(group)!r}"
    if change.detail.project != group:
        return None, f"project {change.detail.project!r} is not this project's ({group!r})"
    if change.account != home.account:
        return None, f"event account {change.account!r} is not {home.account!r}"
    return change, ""


def start_retraining(change: RetrainingRecommended, settings: Settings) -> dict:
    """A build on the latest data at the build's configured input: its GitLab pipeline, or its SageMaker pipeline."""
    detail = change.detail
    if settings.retraining_target == "pipeline":
        run = detail.execution_arn.rsplit("/", 1)[-1]
        answer = boto3.client("sagemaker").start_pipeline_execution(
            PipelineName=settings.build_pipeline_name,
            PipelineExecutionDisplayName=f"retrain-{run}"[:82],
            PipelineExecutionDescription=(
                f"Retraining recommended by batch inference run {detail.execution_arn} ({detail.stage},"
                f" {detail.decision.get('rule', 'retraining rule')}; scored with {detail.model_package_arn})"
            )[:3072],
            ClientRequestToken=change.id[:128],  # a redelivered event starts no second build
        )
        logger.info("retraining pipeline started", extra={"execution_arn": answer["PipelineExecutionArn"]})
        return {"status": "started", "execution_arn": answer["PipelineExecutionArn"], "event_id": change.id}
    secret = TriggerSecret.load(settings.trigger_secret_arn)
    if secret.build is None:
        raise ConfigurationError(
            f"trigger secret {settings.trigger_secret_arn} has no build project trigger: seed the projects again"
            " (the seed writes it), or set RetrainingTarget to pipeline"
        )
    variables = {
        "DRIFT_EXECUTION_ARN": detail.execution_arn,
        "DRIFT_STAGE": detail.stage,
        "DRIFT_MODEL_PACKAGE_ARN": detail.model_package_arn,
        "EVENTBRIDGE_EVENT_ID": change.id,
    }
    pipeline = _trigger(settings, secret.build, variables)
    logger.info("retraining build triggered", extra={"pipeline_id": pipeline.id, "drift_run": detail.execution_arn})
    return {
        "status": "triggered",
        "pipeline_id": pipeline.id,
        "pipeline_url": pipeline.attributes.get("web_url"),
        "event_id": change.id,
    }


def validate(event: object, group: str, home: Home) -> tuple[ModelPackageStateChange | None, str]:
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
    # The group field is only a label: the deploy acts on the ARN, so the ARN itself must be ours.
    arn = change.detail.ModelPackageArn
    found = PACKAGE_ARN.fullmatch(arn)
    if found is None:
        return None, f"model package ARN {arn!r} is not a model package version ARN"
    expected = {"partition": home.partition, "region": home.region, "account": home.account, "group": group}
    wrong = [f"{key} {found[key]!r} is not {value!r}" for key, value in expected.items() if found[key] != value]
    if change.account != home.account:
        wrong.append(f"event account {change.account!r} is not {home.account!r}")
    if wrong:
        return None, f"model package ARN {arn!r} is not this project's: {', '.join(wrong)}"
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
    pipeline = _trigger(settings, secret, variables)
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


def _trigger(settings: Settings, secret: TriggerSecret, variables: dict[str, str]):
    """Trigger the secret's project on its ref with `variables`; the GitLab pipeline, or TriggerError."""
    # No private token: the trigger token alone authorises this one call. python-gitlab retries 429s
    # only (retry_transient_errors=False): a 5xx or a timeout may come after GitLab created the pipeline.
    client = gitlab.Gitlab(settings.gitlab_url, timeout=GITLAB_TIMEOUT_SECONDS, retry_transient_errors=False)
    project = client.projects.get(secret.project_id, lazy=True)  # by id, no lookup request
    # Every message below goes through _redact and drops the chained GitLab/requests exception
    # (`from None`): an error body, or an exception's text, may echo the request and so the token.
    try:
        pipeline = _send_until_delivered(
            lambda: project.trigger_pipeline(
                ref=secret.ref, token=secret.token, variables=variables, max_retries=GITLAB_MAX_RETRIES
            )
        )
    except gitlab.GitlabAuthenticationError as error:
        raise TriggerError(
            f"GitLab rejected the trigger token ({error.response_code}): re-run the seed to rotate it"
        ) from None
    except gitlab.GitlabError as error:
        message = _redact(f"{error.error_message}", secret.token)
        maybe = " (GitLab may have started the pipeline anyway: a second one stops at its build job)"
        raise TriggerError(
            f"GitLab refused the pipeline trigger for project {secret.project_id} on {secret.ref!r}"
            f" ({error.response_code}: {message})" + (maybe if (error.response_code or 0) >= 500 else "")
        ) from None
    except requests.RequestException as error:
        if _never_sent(error):
            raise TriggerError(
                f"GitLab at {settings.gitlab_url} could not be reached after {GITLAB_MAX_RETRIES + 1} attempts"
                f" ({type(error).__name__}): check the URL, DNS and the network path from Lambda"
            ) from None
        raise TriggerError(
            f"GitLab at {settings.gitlab_url} got the request but gave no answer ({type(error).__name__});"
            " not re-sent, it may have started the pipeline: Lambda's retry sends it again and a second"
            " pipeline for this event stops at its build job"
        ) from None
    return pipeline


def _send_until_delivered(send):
    """send(), again only while the request provably never reached GitLab."""
    for attempt in range(GITLAB_MAX_RETRIES + 1):
        try:
            return send()
        except requests.RequestException as error:
            if not _never_sent(error) or attempt == GITLAB_MAX_RETRIES:
                raise
            logger.warning(
                "GitLab not reachable, sending again", extra={"error": type(error).__name__, "attempt": attempt + 1}
            )
            time.sleep(0.1 * 2**attempt)
    raise AssertionError("unreachable")


def _never_sent(error: requests.RequestException) -> bool:
    """True when the connection was never made (refused, DNS, connect timeout): GitLab saw nothing.

    requests wraps urllib3's MaxRetryError, whose reason says what failed. A read timeout, a dropped
    connection (ProtocolError: "Connection aborted") or a proxy error may come after the request was sent.
    """
    if isinstance(error, requests.exceptions.ConnectTimeout):
        return True
    if type(error) is not requests.exceptions.ConnectionError:  # not its subclasses: ProxyError, SSLError
        return False
    cause = error.args[0] if error.args else None
    return isinstance(cause, urllib3.exceptions.MaxRetryError) and isinstance(
        cause.reason, urllib3.exceptions.NewConnectionError | urllib3.exceptions.ConnectTimeoutError
    )


def _redact(text: str, secret: str) -> str:
    return text.replace(secret, REDACTED) if secret else text


@contextlib.contextmanager
def _no_debug_records():
    """No DEBUG record from any logger while this runs: botocore logs every response body at DEBUG,
    and GetSecretValue's body is the token. Lambda runs one event at a time, so this is not racy."""
    previous = logging.root.manager.disable
    logging.disable(max(previous, logging.DEBUG))
    try:
        yield
    finally:
        logging.disable(previous)


def _log_duplicate(response: dict, _record) -> dict:
    logger.info(
        "duplicate event: its pipeline was already triggered", extra={"pipeline_id": response.get("pipeline_id")}
    )
    return {**response, "status": "duplicate"}
