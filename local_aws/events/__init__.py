"""EventBridge on the local stack: the bus the emulators emit on (`bus`), the routing of each event through
the rules moto holds to their targets (`rules`), and TestEventPattern behind EventBridge's API (`responses`).
Importing it registers the operations; `start` is called by the server once moto runs."""

from __future__ import annotations

from local_aws.core import api
from local_aws.events import bus, responses
from local_aws.events.rules import Router

responses.register()


def start(context: api.Context) -> dict:
    bus.subscribe(Router(context).route)
    return {}
