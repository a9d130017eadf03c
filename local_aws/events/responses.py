"""The EventBridge operations the local stack answers itself: TestEventPattern, which moto leaves unimplemented,
and PutEvents, so that an application's own events (the batch inference's retraining event) are recorded and
routed through the rules moto holds to their targets, like the events the emulators emit.

The match is moto's own EventBridge pattern matcher, the one its PutEvents routing uses (prefix, anything-but,
numeric, exists, $or, ...), so a pattern matches here exactly when it matches moto's rules.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from local_aws.core import api


def matches(pattern: str, event: dict[str, Any]) -> bool:
    # Imported when first used: importing moto's models at plugin load would load its recorder before the
    # server configures persistence.
    from moto.events.models import EventPattern

    return EventPattern.load(pattern).matches_event(event)


def test_event_pattern(request: dict, _context: api.Context) -> dict:
    try:
        event = json.loads(request.get("Event") or "")
    except ValueError as error:
        raise api.LocalApiError("InvalidEventPatternException", f"Event is not valid JSON: {error}") from error
    if not isinstance(event, dict):
        raise api.LocalApiError("ValidationException", "Event must be a JSON object")
    missing = [name for name in ("id", "account", "source", "time", "region", "detail-type") if name not in event]
    if missing:
        raise api.LocalApiError("ValidationException", f"Parameter Event is not valid: missing {', '.join(missing)}")
    from moto.events.exceptions import InvalidEventPatternException

    try:
        return {"Result": matches(request.get("EventPattern") or "", event)}
    except InvalidEventPatternException as error:
        raise api.LocalApiError("InvalidEventPatternException", str(error.message)) from error


def put_events(request: dict, context: api.Context) -> dict:
    """Each entry becomes an event as EventBridge delivers it, emitted on the stack's bus (recorded and routed)."""
    from local_aws.events import bus

    answers = []
    for entry in request.get("Entries") or []:
        source = entry.get("Source", "")
        if source.startswith("aws."):
            answers.append(
                {
                    "ErrorCode": "NotAuthorizedForSourceException",
                    "ErrorMessage": f"Not authorized for the source {source}.",
                }
            )
            continue
        try:
            detail = json.loads(entry.get("Detail") or "{}")
        except ValueError:
            answers.append({"ErrorCode": "MalformedDetail", "ErrorMessage": "Detail is malformed."})
            continue
        event = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": entry.get("DetailType", ""),
            "source": source,
            "account": context.account_id,
            "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": context.region,
            "resources": entry.get("Resources") or [],
            "detail": detail,
        }
        bus.emit(event)
        answers.append({"EventId": event["id"]})
    return {"FailedEntryCount": sum(1 for a in answers if "ErrorCode" in a), "Entries": answers}


OPERATIONS: dict[str, api.Handler] = {
    "AWSEvents.TestEventPattern": test_event_pattern,
    "AWSEvents.PutEvents": put_events,
}


def register() -> None:
    for operation, handler in OPERATIONS.items():
        api.register(operation, handler)
