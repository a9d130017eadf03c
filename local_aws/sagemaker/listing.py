"""List* semantics of the SageMaker API: time filters, sorting, MaxResults and NextToken.

A NextToken is opaque to clients; here it is the offset of the next item, tied to the operation
that issued it, so a token from another listing (or a made-up one) is refused as AWS refuses it.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Callable, Iterable
from typing import Any

from local_aws.core import api

DEFAULT_MAX_RESULTS = 10  # what SageMaker's List* operations return when MaxResults is left out


def epoch(value: Any) -> float | None:
    """A request's timestamp (epoch seconds as boto3 sends them, or ISO 8601 from raw clients) in seconds."""
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    try:
        moment = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise api.LocalApiError("ValidationException", f"{value!r} is not a timestamp") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)).timestamp()


def within(items: Iterable[dict], key: str, after: Any = None, before: Any = None) -> list[dict]:
    """Items whose `key` time is strictly after `after` and strictly before `before` (as AWS filters)."""
    low, high = epoch(after), epoch(before)
    return [item for item in items if (low is None or item[key] > low) and (high is None or item[key] < high)]


def sort(items: list[dict], request: dict, keys: dict[str, Callable[[dict], Any]], default: str) -> list[dict]:
    by = request.get("SortBy") or default
    if by not in keys:
        raise api.LocalApiError("ValidationException", f"SortBy {by!r} is not one of {sorted(keys)}")
    order = request.get("SortOrder") or "Descending"
    return sorted(items, key=keys[by], reverse=order == "Descending")


def page(operation: str, items: list, request: dict, result_key: str) -> dict[str, Any]:
    """One page of `items`: {result_key: [...], "NextToken": ...} (NextToken only when more remain)."""
    start = _offset(operation, request.get("NextToken"))
    size = request.get("MaxResults") or DEFAULT_MAX_RESULTS
    answer: dict[str, Any] = {result_key: items[start : start + size]}
    if start + size < len(items):
        answer["NextToken"] = _token(operation, start + size)
    return answer


def _token(operation: str, offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"op": operation, "offset": offset}).encode()).decode()


def _offset(operation: str, token: str | None) -> int:
    if not token:
        return 0
    try:
        document = json.loads(base64.urlsafe_b64decode(token.encode()))
        if document["op"] == operation and isinstance(document["offset"], int) and document["offset"] >= 0:
            return document["offset"]
    except (ValueError, KeyError, TypeError):
        pass
    raise api.LocalApiError("ValidationException", "Invalid pagination token because the token is malformed.")
