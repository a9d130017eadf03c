"""Loaded into the tests' stack server with `--plugin` (see conftest.py).

- DescribeDomain gets a local override, so the tests can see the gateway answer a registered
  operation (and its errors) while other operations still go to moto;
- two event subscribers: one records every event it receives in `<state dir>/received-events.jsonl`,
  one always fails, to show that a failing subscriber is logged and does not stop the others.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

from local_aws.core import api
from local_aws.events import bus as events

RECEIVED_FILE = "received-events.jsonl"


def describe_domain(request: dict, context: api.Context) -> dict:
    domain_id = request["DomainId"]
    if domain_id == "d-missing":
        raise api.LocalApiError("ResourceNotFound", f"Domain {domain_id} does not exist (local override).", 400)
    if domain_id == "d-broken":
        raise RuntimeError("the override itself is broken")
    return {
        "DomainId": domain_id,
        "DomainName": f"answered locally in {context.region} for account {context.account_id}",
        "Status": "InService",
        "CreationTime": dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
        "HomeEfsFileSystemId": context.moto_url,  # lets the test check what the context carries
    }


def record_event(event: dict) -> None:
    path = Path(os.environ["LOCAL_STACK_STATE_DIR"]) / RECEIVED_FILE
    with path.open("a", encoding="utf-8") as stream:
        stream.write(json.dumps(event) + "\n")


def failing_subscriber(event: dict) -> None:
    raise RuntimeError(f"this test subscriber always fails (event {event['id']})")


api.register("DescribeDomain", describe_domain)
events.subscribe(failing_subscriber)
events.subscribe(record_event)
