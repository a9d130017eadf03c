"""Custom resource `Custom::GitLabSeed`: seeds the model-build and model-deploy GitLab projects.

Create and Update: create or reuse both projects, commit the seed archives (from S3), set the CI/CD
variables, rotate the deploy project's trigger token and store it in the trigger secret. An Update
keeps the physical id, so CloudFormation never replaces (and deletes) the resource: when it renamed a
repository, it cleans the old project itself, leaving alone any project the new properties still use.
Delete: revoke the trigger token and remove the variables; the repositories stay (users' code).
Every request gets exactly one answer, SUCCESS or FAILED with a reason (see cfn_response).
"""

from __future__ import annotations

import boto3
from aws_lambda_powertools import Logger

from lambdas.seed_code import cfn_response
from lambdas.seed_code.seeding import (
    Seeder,
    SeedError,
    SeedRequest,
    connect,
    personal_token_from_secret,
    read_seed_archive,
)

logger = Logger(service="gitlab-seed")

FAILED_CREATE_PREFIX = "gitlab-seed-failed:"


@logger.inject_lambda_context(log_event=False)  # the event holds the pre-signed response URL
def lambda_handler(event: dict, context) -> dict | None:
    request_type = event.get("RequestType", "?")
    # A failed Create must not leave an id that a later Delete would act on.
    default_id = event.get("PhysicalResourceId") or FAILED_CREATE_PREFIX + event.get("RequestId", "unknown")
    responder = cfn_response.Responder(event, context, default_physical_id=default_id)
    responder.arm_timeout()
    try:
        logger.info("custom resource request", extra={"request_type": request_type})
        if request_type == "Create":
            request, data, warnings = _create_or_update(event["ResourceProperties"])
            responder.succeeded(request.physical_resource_id, data, reason=_reason(warnings))
        elif request_type == "Update":
            request, data, warnings = _create_or_update(event["ResourceProperties"])
            reason = _clean_renamed(event["OldResourceProperties"], request)
            responder.succeeded(event["PhysicalResourceId"], data, reason=_reason(warnings, reason))
        elif request_type == "Delete":
            reason = _delete(event)
            responder.succeeded(event["PhysicalResourceId"], reason=reason)
        else:
            responder.failed(f"unknown RequestType {request_type!r}")
    except SeedError as error:
        logger.error("seed failed", extra={"reason": str(error)})
        responder.failed(str(error))
    except Exception as error:  # noqa: BLE001 - any failure must reach CloudFormation, never hang the stack
        logger.exception("seed failed unexpectedly")
        responder.failed(f"{type(error).__name__}: {error}")
    return responder.sent


def _reason(warnings: list[str], reason: str = "") -> str:
    """The SUCCESS reason: what GitLab refused shows in the stack's events (CloudFormation keeps 4 KB)."""
    return "; ".join([*([reason] if reason else []), *(f"warning: {w}" for w in warnings)])[:3900]


def _create_or_update(properties: dict) -> tuple[SeedRequest, dict[str, str], list[str]]:
    request = SeedRequest.from_properties(properties)
    seeder = Seeder(_gitlab(request, properties), request)
    s3 = boto3.client("s3")
    bucket = _required(properties, "SeedBucket")
    archives = {}
    for name in ("ModelBuildSeedKey", "ModelDeploySeedKey"):
        key = _required(properties, name)
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        archives[name] = read_seed_archive(body, f"s3://{bucket}/{key}")
    outcome = seeder.seed(archives["ModelBuildSeedKey"], archives["ModelDeploySeedKey"])
    boto3.client("secretsmanager").put_secret_value(
        SecretId=_required(properties, "TriggerSecretArn"), SecretString=outcome.trigger_secret()
    )
    logger.info("trigger token stored", extra={"deploy_project_id": outcome.deploy.project_id})
    return request, outcome.response_data(), outcome.warnings


def _clean_renamed(old_properties: dict, new: SeedRequest) -> str:
    """After an Update: clean the projects the old properties named and the new ones no longer do."""
    old = SeedRequest.from_properties(old_properties)
    if {old.project_key(old.build_repo), old.project_key(old.deploy_repo)} <= {
        new.project_key(new.build_repo),
        new.project_key(new.deploy_repo),
    }:
        return ""
    return "seeded; the renamed-away project: " + _clean_up(old, old_properties, keep=new)


def _delete(event: dict) -> str:
    if event.get("PhysicalResourceId", "").startswith(FAILED_CREATE_PREFIX):
        return "nothing to clean: the create had failed"
    request = SeedRequest.from_properties(event["ResourceProperties"])
    return _clean_up(request, event["ResourceProperties"])


def _clean_up(request: SeedRequest, properties: dict, keep: SeedRequest | None = None) -> str:
    try:
        leftovers = Seeder(_gitlab(request, properties), request).clean_up(keep=keep)
    except Exception as error:  # noqa: BLE001 - a GitLab problem must not block deleting the stack
        logger.warning("clean-up skipped", extra={"error": f"{type(error).__name__}: {error}"})
        return f"GitLab clean-up skipped ({type(error).__name__}): revoke the trigger token by hand"
    return "cleaned up" if not leftovers else "cleaned up, except: " + "; ".join(leftovers)


def _gitlab(request: SeedRequest, properties: dict):
    secret = boto3.client("secretsmanager").get_secret_value(SecretId=_required(properties, "GitLabTokenSecretId"))
    return connect(request.gitlab_url, personal_token_from_secret(secret["SecretString"]))


def _required(properties: dict, name: str) -> str:
    value = str(properties.get(name) or "").strip()
    if not value:
        raise SeedError(f"missing seed property {name}: set it on the custom resource")
    return value
