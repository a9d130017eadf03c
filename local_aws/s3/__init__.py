"""S3 on the local stack (a part): its EventBridge notifications reach the stack's rules.

S3 requests go straight to moto, not through the gateway. moto sends S3 -> EventBridge notifications when a
bucket's notification configuration has `EventBridgeConfiguration` (moto/s3/notifications.py), but hands them
to its own `rule.send_to_targets`, which knows neither our Router's targets (Lambda handlers, SageMaker
pipelines) nor the event's documented fields. The path chosen: moto's notification hook
(`moto.s3.notifications._send_event_bridge_message`) is replaced, in the server process, by `notifications.emit`,
which builds the event as S3 documents it and emits it on the stack's bus (`local_aws.events.bus`): recorded in
events.jsonl and routed by `local_aws.events.rules.Router` through the rules moto holds, like every other event.
Installed when the stack starts serving (`start`): a journal replay at startup re-creates objects without notifying.
"""

from __future__ import annotations

from local_aws.core import api
from local_aws.s3 import notifications


def start(_context: api.Context) -> dict:
    notifications.install()  # after the replay, which re-creates objects without notifying anyone
    notifications.enabled.set()
    return {}


def stop() -> None:
    notifications.enabled.clear()
