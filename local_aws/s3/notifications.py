"""S3 EventBridge notifications as the S3 user guide documents them ("Using EventBridge", "EventBridge event
message structure"), emitted on the stack's bus instead of moto's own delivery.

    {"version": "0", "id": ..., "detail-type": "Object Created", "source": "aws.s3", "account": ..., "time": ...,
     "region": ..., "resources": ["arn:aws:s3:::<bucket>"],
     "detail": {"version": "0", "bucket": {"name": ...}, "object": {"key", "size", "etag", "version-id"?, "sequencer"},
                "request-id": ..., "requester": <account>, "source-ip-address": "127.0.0.1", "reason": "PutObject"}}

moto calls the hook only for buckets whose notification configuration has EventBridgeConfiguration, as S3 sends
to EventBridge only then. `version-id` is there only for a versioned bucket.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import uuid
from typing import Any

log = logging.getLogger(__name__)

enabled = threading.Event()
# s3:ObjectCreated:<x> -> the documented `reason`
REASONS = {
    "Put": "PutObject",
    "Post": "POST Object",
    "Copy": "CopyObject",
    "CompleteMultipartUpload": "CompleteMultipartUpload",
    "Delete": "DeleteObject",
    "DeleteMarkerCreated": "DeleteObject",
}
_sequence = iter(range(1, 1 << 62))
_sequence_lock = threading.Lock()


def install() -> None:
    from moto.s3 import notifications as moto_notifications

    moto_notifications._send_event_bridge_message = _send  # noqa: SLF001 - the one hook moto has for this


def event_for(account_id: str, bucket: Any, event_name: str, key: Any) -> dict[str, Any]:
    from moto.s3.notifications import _detail_type

    with _sequence_lock:
        sequencer = f"{next(_sequence):016X}"
    action = event_name.split(":")[-1]
    obj: dict[str, Any] = {"key": key.name, "size": key.size, "etag": key.etag.replace('"', "")}
    if getattr(bucket, "is_versioned", False) and getattr(key, "version_id", None):
        obj["version-id"] = key.version_id
    obj["sequencer"] = sequencer
    detail: dict[str, Any] = {
        "version": "0",
        "bucket": {"name": bucket.name},
        "object": obj,
        "request-id": uuid.uuid4().hex[:16].upper(),
        "requester": account_id,
        "source-ip-address": "127.0.0.1",
        "reason": REASONS.get(action, action),
    }
    if "ObjectRemoved" in event_name:
        detail["deletion-type"] = "Delete Marker Created" if action == "DeleteMarkerCreated" else "Permanently Deleted"
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": _detail_type(event_name),
        "source": "aws.s3",
        "account": account_id,
        "time": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": bucket.region_name,
        "resources": [f"arn:aws:s3:::{bucket.name}"],
        "detail": detail,
    }


def _send(account_id: str, bucket: Any, event_name: str, key: Any) -> None:
    if not enabled.is_set():
        return
    from local_aws.events import bus

    try:
        bus.emit(event_for(account_id, bucket, event_name, key))
    except Exception:  # noqa: BLE001 - asynchronous on AWS: the S3 request succeeds whatever happens here
        log.exception("S3 notification of s3://%s/%s (%s) not emitted", bucket.name, key.name, event_name)
