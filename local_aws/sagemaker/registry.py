"""CreateModelPackage and UpdateModelPackage with AWS semantics, and the state-change event AWS sends
to EventBridge on both.

moto's UpdateModelPackage replaces ApprovalDescription and CustomerMetadataProperties with
whatever the request carries (nothing, if the field is left out) and emits no event. AWS keeps
fields a request leaves out, merges CustomerMetadataProperties, and sends a
"SageMaker Model Package State Change" event when the package changes. This override fills the
left-out fields from the current package before forwarding to moto, and emits the event (through
`local_aws.events.bus`) when ModelApprovalStatus changed.

Event shape: https://docs.aws.amazon.com/sagemaker/latest/dg/automating-sagemaker-with-eventbridge.html
(section "SageMaker model package state change"): the EventBridge envelope, and as `detail` the
package as DescribeModelPackage returns it, timestamps as ISO 8601 strings, plus
`UpdatedModelPackageFields`.
"""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from typing import Any

from local_aws.core import api
from local_aws.events import bus as events
from local_aws.sagemaker import idempotency

DETAIL_TYPE = "SageMaker Model Package State Change"
SOURCE = "aws.sagemaker"

# Fields an UpdateModelPackage request can change that the event reports in UpdatedModelPackageFields.
TRACKED_FIELDS = (
    "ModelApprovalStatus",
    "ApprovalDescription",
    "CustomerMetadataProperties",
    "AdditionalInferenceSpecifications",
    "InferenceSpecification",
    "SourceUri",
    "ModelCard",
    "ModelLifeCycle",
)

# Describe-then-update must not interleave with another update of the same registry.
_update_lock = threading.Lock()


def create_model_package(request: dict[str, Any], context: api.Context) -> dict[str, Any]:
    """CreateModelPackage as AWS does it: ClientToken makes it idempotent, a version's approval status
    defaults to PendingManualApproval, and the creation sends the state-change event."""

    def create() -> dict[str, Any]:
        complete = dict(request)
        complete.pop("ClientToken", None)  # moto does not know it; idempotency is answered here
        if complete.get("ModelPackageGroupName") and not complete.get("ModelApprovalStatus"):
            complete["ModelApprovalStatus"] = "PendingManualApproval"
        sagemaker = context.client("sagemaker")
        arn = sagemaker.create_model_package(**complete)["ModelPackageArn"]
        events.emit(created_event(sagemaker, arn))
        return {"ModelPackageArn": arn}

    return idempotency.once(
        context.state_dir, context.account_id, "CreateModelPackage", request.get("ClientToken"), create
    )


def created_event(sagemaker, arn: str) -> dict:
    """The event AWS sends when a package is created: the package, no UpdatedModelPackageFields.
    A new version is PendingManualApproval, so the approval rule (Approved/Rejected) ignores it."""
    return state_change_event(_describe(sagemaker, arn), None)


def update_model_package(request: dict[str, Any], context: api.Context) -> dict[str, Any]:
    arn = request.get("ModelPackageArn")
    if not arn:
        raise api.LocalApiError("ValidationException", "UpdateModelPackage needs ModelPackageArn.")
    sagemaker = context.client("sagemaker")
    with _update_lock:
        before = _describe(sagemaker, arn)
        answer = sagemaker.update_model_package(**with_unchanged_fields(request, before))
        after = _describe(sagemaker, arn)
    if after.get("ModelApprovalStatus") != before.get("ModelApprovalStatus"):
        events.emit(state_change_event(after, changed_fields(before, after)))
    return {"ModelPackageArn": answer["ModelPackageArn"]}


def with_unchanged_fields(request: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    """The request moto needs to apply `request` the way AWS does: left-out fields keep their value,
    CustomerMetadataProperties are merged (CustomerMetadataPropertiesToRemove still removes)."""
    complete = dict(request)
    for name in ("ModelApprovalStatus", "ApprovalDescription"):
        if name not in complete and current.get(name) is not None:
            complete[name] = current[name]
    metadata = {
        **(current.get("CustomerMetadataProperties") or {}),
        **(request.get("CustomerMetadataProperties") or {}),
    }
    if metadata:
        complete["CustomerMetadataProperties"] = metadata
    else:
        # Nothing to remove from: moto would pop the names from a missing dict and answer 500.
        complete.pop("CustomerMetadataPropertiesToRemove", None)
    return complete


def changed_fields(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    return [name for name in TRACKED_FIELDS if before.get(name) != after.get(name)]


def state_change_event(
    package: dict[str, Any], updated_fields: list[str] | None, now: dt.datetime | None = None
) -> dict:
    """The EventBridge event AWS delivers for a model package change (documented shape)."""
    arn = package["ModelPackageArn"]
    _, _, _, region, account, _ = arn.split(":", 5)
    detail = {name: _iso_timestamps(value) for name, value in package.items() if name != "ResponseMetadata"}
    if updated_fields is not None:  # an update's event says what changed; a creation's has no such list
        detail["UpdatedModelPackageFields"] = updated_fields
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": DETAIL_TYPE,
        "source": SOURCE,
        "account": account,
        "time": _iso(now or dt.datetime.now(dt.UTC)),
        "region": region,
        "resources": [arn],
        "detail": detail,
    }


def _describe(sagemaker, arn: str) -> dict[str, Any]:
    package = sagemaker.describe_model_package(ModelPackageName=arn)
    package.pop("ResponseMetadata", None)
    return package


def _iso_timestamps(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return _iso(value)
    if isinstance(value, dict):
        return {key: _iso_timestamps(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_iso_timestamps(item) for item in value]
    return value


def _iso(moment: dt.datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
