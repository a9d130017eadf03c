"""The event bus: a record on disk, in-order delivery that never blocks the emitter, loud failures."""

from __future__ import annotations

import logging
import threading
import time

from local_aws.events.bus import EventBus, read_events


def event(number: int) -> dict:
    return {"id": f"event-{number}", "detail-type": "SageMaker Model Package State Change", "resources": ["arn"]}


def test_emit_records_the_event_and_returns_before_a_slow_subscriber_finishes(tmp_path):
    bus = EventBus(tmp_path / "events.jsonl")
    release = threading.Event()
    delivered = []
    bus.subscribe(lambda received: (release.wait(5), delivered.append(received["id"])))

    started = time.monotonic()
    bus.emit(event(1))
    bus.emit(event(2))
    emitting = time.monotonic() - started

    assert emitting < 0.5
    assert [found["id"] for found in read_events(tmp_path)] == ["event-1", "event-2"]
    assert delivered == []  # still held by the subscriber
    release.set()
    bus.close()
    assert delivered == ["event-1", "event-2"]  # in order, none lost at close


def test_a_failing_subscriber_is_logged_and_the_others_still_get_the_event(tmp_path, caplog):
    bus = EventBus(tmp_path / "events.jsonl")
    received = []

    def broken(_event: dict) -> None:
        raise ValueError("cannot reach GitLab")

    bus.subscribe(broken)
    bus.subscribe(lambda found: received.append(found["id"]))

    with caplog.at_level(logging.ERROR, logger="local_aws.events.bus"):
        bus.emit(event(7))
        bus.close()

    assert received == ["event-7"]
    [record] = [record for record in caplog.records if "failed on event event-7" in record.getMessage()]
    assert "broken" in record.getMessage()
    assert record.exc_info[0] is ValueError  # the traceback is in the log


def test_unsubscribed_callbacks_get_nothing(tmp_path):
    bus = EventBus(tmp_path / "events.jsonl")
    received = []
    unsubscribe = bus.subscribe(lambda found: received.append(found["id"]))
    bus.emit(event(1))
    bus.close()

    unsubscribe()
    bus.emit(event(2))
    bus.close()

    assert received == ["event-1"]
    assert [found["id"] for found in read_events(tmp_path)] == ["event-1", "event-2"]


def test_read_events_filters_by_detail_type(tmp_path):
    bus = EventBus(tmp_path / "events.jsonl")
    bus.emit(event(1))
    bus.emit({"id": "other", "detail-type": "Something Else", "resources": []})
    bus.close()

    assert [found["id"] for found in read_events(tmp_path, "SageMaker Model Package State Change")] == ["event-1"]
    assert read_events(tmp_path / "nowhere") == []
