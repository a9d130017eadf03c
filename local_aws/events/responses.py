"""The EventBridge operations the local stack answers itself: TestEventPattern, which moto leaves unimplemented.

The match is moto's own EventBridge pattern matcher, the one its PutEvents routing uses (prefix, anything-but,
numeric, exists, $or, ...), so a pattern matches here exactly when it matches moto's rules.
"""

from __future__ import annotations

import json
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


OPERATIONS: dict[str, api.Handler] = {"AWSEvents.TestEventPattern": test_event_pattern}


def register() -> None:
    for operation, handler in OPERATIONS.items():
        api.register(operation, handler)
