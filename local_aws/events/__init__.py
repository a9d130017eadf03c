"""EventBridge on the local stack: the bus the emulators emit on (`bus`), the routing of each event through
the rules moto holds to their targets (`rules`), and TestEventPattern behind EventBridge's API (`responses`).
Importing it registers the operations; `recover` and `start` are called by the server as it starts."""

from __future__ import annotations

from local_aws.core import api, journal
from local_aws.events import bus, responses, rules
from local_aws.events.rules import Router

responses.register()


def recover(state_dir) -> list[str]:
    """A line a crash cut short would glue itself to the next event appended: drop it first."""
    return journal.repair(state_dir / bus.EVENTS_FILE) + journal.repair(state_dir / rules.DELIVERIES_FILE)


def start(context: api.Context) -> dict:
    bus.subscribe(Router(context).route)
    return {}
