"""Idempotency tokens (ClientRequestToken, ClientToken): a request repeated with the same token
gets the first answer back and does nothing again, as AWS promises ("completes no more than once").

Tokens are kept in the stack's state folder, so a retry after a gateway restart is still recognised. A token
belongs to the account that sent it (AWS scopes idempotency to the caller): the same token from another account
is another request.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

_lock = threading.Lock()


def once(
    state_dir: Path, account_id: str, operation: str, token: str | None, action: Callable[[], dict[str, Any]]
) -> dict[str, Any]:
    """`action()`'s answer; with a token seen before for `operation` from `account_id`, the answer it got then.

    The lock is held while `action` runs: two concurrent requests with one token must not both act.
    """
    if not token:
        return action()
    path = Path(state_dir) / "idempotency-tokens.json"
    key = f"{account_id}:{operation}:{token}"
    with _lock:
        seen = json.loads(path.read_text()) if path.exists() else {}
        if key in seen:
            return seen[key]
        answer = action()
        seen[key] = answer
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(seen))
        temporary.replace(path)
        return answer
