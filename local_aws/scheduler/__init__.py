"""EventBridge Scheduler on the local stack. moto stores schedules (and, with `local_aws.cloudformation.scheduler`,
creates them from templates) but never invokes one: `invoke.fire` does it by the scheduler's own path (the
target's role, its parameters), on demand (`scripts/local-stack schedule fire NAME`) and, while the stack is up,
on each schedule's expression (`ticker`, every LOCAL_STACK_SCHEDULER_SECONDS, default 10)."""

from __future__ import annotations

import os

from local_aws.cloudformation import scheduler as _cloudformation_model  # noqa: F401 - registers the resource type
from local_aws.core import api
from local_aws.scheduler.ticker import Ticker

_ticker: Ticker | None = None


def start(context: api.Context) -> dict:
    global _ticker
    interval = float(os.environ.get("LOCAL_STACK_SCHEDULER_SECONDS", "10"))
    _ticker = Ticker(context.environment, state_dir=context.state_dir).start(interval)
    return {}


def stop() -> None:
    if _ticker is not None:
        _ticker.stop()
