"""One deployment per approval event: build records EVENTBRIDGE_EVENT_ID with a create-only S3 write.

The approval trigger cannot always know whether GitLab started the pipeline (a timeout after the
request was sent, a dropped connection, a 5xx), and its trigger token cannot list pipelines to check.
So a retry may start a second pipeline for the same approval. The effect is made idempotent here,
where it happens: the first job of each pipeline writes `s3://<bucket>/deploy-events/<project>/<event
id>.json` only if it does not exist yet (`IfNoneMatch="*"`, S3's conditional write, atomic on AWS).
The pipeline whose write succeeds deploys; any other pipeline for that event stops at once, naming the
first one. A retried job of the first pipeline goes on (same CI_PIPELINE_ID). A run without an event
id (the web UI's "Run pipeline", a laptop) records nothing and is never stopped.
"""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime

from botocore.exceptions import ClientError

from deploy.environment import Environment
from deploy.errors import DeployError

MARKER_PREFIX = "deploy-events"
# EventBridge event ids are UUIDs; anything else in a key is refused rather than escaped.
EVENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,127}")
# PreconditionFailed: the object exists. ConditionalRequestConflict (409): a concurrent write to the
# same key is in progress, which for this key can only be another pipeline for the same event.
TAKEN = ("PreconditionFailed", "ConditionalRequestConflict")


class DuplicateEvent(DeployError):
    """Another pipeline already took this approval event."""


def marker_key(project_name: str, event_id: str) -> str:
    return f"{MARKER_PREFIX}/{project_name}/{event_id}.json"


def record(s3, environment: Environment) -> str:
    """Take the approval event for this pipeline, or raise DuplicateEvent naming the pipeline that has it.

    Returns what was done, for the job log."""
    event_id = environment.event_id
    if not event_id:
        return "no EVENTBRIDGE_EVENT_ID (a run by hand): nothing to record"
    if not EVENT_ID.fullmatch(event_id):
        raise DeployError(
            f"EVENTBRIDGE_EVENT_ID={event_id!r} is not an EventBridge event id: the approval trigger sets it;"
            " unset it for a run by hand"
        )
    key = marker_key(environment.project_name, event_id)
    uri = f"s3://{environment.artifact_bucket}/{key}"
    this_pipeline = os.environ.get("CI_PIPELINE_ID", "")
    marker = {
        "event_id": event_id,
        "model_package_arn": environment.model_package_arn,
        "pipeline_id": this_pipeline,
        "pipeline_url": os.environ.get("CI_PIPELINE_URL", ""),
        "commit": os.environ.get("CI_COMMIT_SHA", ""),
        "job_url": os.environ.get("CI_JOB_URL", ""),
        "recorded_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    encryption = {"ServerSideEncryption": "aws:kms"}
    if environment.kms_key_arn:
        encryption["SSEKMSKeyId"] = environment.kms_key_arn
    try:
        s3.put_object(
            Bucket=environment.artifact_bucket,
            Key=key,
            Body=(json.dumps(marker, indent=2) + "\n").encode("utf-8"),
            ContentType="application/json",
            IfNoneMatch="*",
            **encryption,
        )
        return f"recorded approval event {event_id} at {uri}"
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") not in TAKEN:
            raise
    first = _read(s3, environment.artifact_bucket, key)
    if this_pipeline and first.get("pipeline_id") == this_pipeline:
        return f"approval event {event_id} is this pipeline's already ({uri}): a retried job goes on"
    raise DuplicateEvent(
        f"approval event {event_id} was already taken by {_describe(first)} ({uri}); this pipeline is a second"
        " delivery of the same approval and stops here, nothing was deployed. If that pipeline failed, retry"
        " its failed job; to deploy the version again on purpose, use 'Run pipeline' with MODEL_PACKAGE_ARN"
        f"={environment.model_package_arn or first.get('model_package_arn') or '<arn>'}."
    )


def _read(s3, bucket: str, key: str) -> dict:
    """The first pipeline's record; empty when it cannot be read yet (a concurrent write still running)."""
    try:
        return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    except (ClientError, ValueError):
        return {}


def _describe(first: dict) -> str:
    if not first.get("pipeline_id") and not first.get("pipeline_url"):
        return "another pipeline"
    where = first.get("pipeline_url") or f"pipeline {first['pipeline_id']}"
    details = [f"commit {first['commit'][:12]}" if first.get("commit") else "", first.get("recorded_at", "")]
    details = [d for d in details if d]
    return f"{where}" + (f" ({', '.join(details)})" if details else "")
