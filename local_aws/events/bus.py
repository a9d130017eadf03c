"""The local stack's EventBridge stand-in: events the gateway emits, in a file and to subscribers.

Inside the stack's server process:

    from local_aws.events import bus as events

    def on_event(event: dict) -> None:      # an EventBridge event, exactly as AWS delivers it
        if event["detail-type"] == "SageMaker Model Package State Change": ...

    unsubscribe = events.subscribe(on_event)

`emit(event)` appends the event to `<state dir>/events.jsonl` (one JSON document a line: the
record other processes and tests read, see `read_events`) and queues it for the subscribers.
Subscribers run one event at a time, in order, on a dispatch thread: a slow subscriber never
delays the API answer that emitted the event. A subscriber that raises is logged with its
traceback and the event id, and the other subscribers still get the event.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from local_aws.core import journal

log = logging.getLogger(__name__)

EVENTS_FILE = "events.jsonl"

Event = dict[str, Any]
Subscriber = Callable[[Event], None]


class EventBus:
    def __init__(self, log_path: Path | None = None):
        self.log_path = log_path
        self._subscribers: list[Subscriber] = []
        self._lock = threading.Lock()
        self._queue: queue.Queue[Event | None] = queue.Queue()
        self._worker: threading.Thread | None = None

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Call `subscriber(event)` for every event emitted from now on. Returns the unsubscribe function."""
        with self._lock:
            self._subscribers.append(subscriber)

        def unsubscribe() -> None:
            with self._lock:
                if subscriber in self._subscribers:
                    self._subscribers.remove(subscriber)

        return unsubscribe

    def emit(self, event: Event) -> None:
        """Record the event and queue it for the subscribers; returns at once."""
        if self.log_path is not None:
            with self._lock:  # one writer at a time: lines never interleave
                self.log_path.parent.mkdir(parents=True, exist_ok=True)
                journal.append(self.log_path, event)  # one write: a crash never leaves half an event
        log.info("event %s: %s %s", event.get("id"), event.get("detail-type"), event.get("resources"))
        self._ensure_worker()
        self._queue.put(event)

    def close(self, timeout: float = 10.0) -> None:
        """Deliver the events already queued (up to `timeout` seconds), then stop the dispatch thread."""
        worker = self._worker
        if worker is None:
            return
        self._queue.put(None)
        worker.join(timeout)
        if worker.is_alive():
            log.warning("event dispatch still busy after %.0f s at shutdown: pending events are dropped", timeout)
        self._worker = None

    def _ensure_worker(self) -> None:
        with self._lock:
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._dispatch_loop, name="event-dispatch", daemon=True)
                self._worker.start()

    def _dispatch_loop(self) -> None:
        while True:
            event = self._queue.get()
            if event is None:
                return
            with self._lock:
                subscribers = list(self._subscribers)
            for subscriber in subscribers:
                try:
                    subscriber(event)
                except Exception:  # noqa: BLE001 - one broken subscriber must not starve the others
                    log.exception(
                        "event subscriber %s failed on event %s (%s)",
                        getattr(subscriber, "__qualname__", repr(subscriber)),
                        event.get("id"),
                        event.get("detail-type"),
                    )


# The server process's bus; `configure` points it at the state folder at startup.
_bus = EventBus()


def configure(state_dir: Path) -> None:
    _bus.log_path = Path(state_dir) / EVENTS_FILE


def subscribe(subscriber: Subscriber) -> Callable[[], None]:
    return _bus.subscribe(subscriber)


def emit(event: Event) -> None:
    _bus.emit(event)


def close(timeout: float = 10.0) -> None:
    _bus.close(timeout)


def read_events(state_dir: Path, detail_type: str | None = None) -> list[Event]:
    """The events a stack has emitted so far (from any process), oldest first; unreadable lines left out
    (`scan_events` says how many)."""
    found = scan_events(state_dir).entries
    return [event for event in found if detail_type is None or event.get("detail-type") == detail_type]


def scan_events(state_dir: Path) -> journal.Read:
    return journal.read(Path(state_dir) / EVENTS_FILE)
