"""While the stack is up, ENABLED schedules fire on their expression, each due time once.

    ticker = Ticker(environ, clock=lambda: datetime.now(UTC), state_dir=...)   # the clock is injected
    ticker.tick()                     # fires what fell due since the last tick; returns the invocations
    ticker.start(interval=10.0); ticker.stop()    # the stack's thread (local_aws.scheduler.start)

A schedule seen for the first time is watched from that moment on (nothing is fired for times before it, so a
restart never replays a backlog); a change of its expression or timezone starts it over. Within the window since
the last tick, each due time (`expressions.due_times`, in the schedule's timezone, between its StartDate and
EndDate) fires once, through the same path as `fire` (role assumed, parameters passed). After an `at(...)`
schedule fired, `ActionAfterCompletion: DELETE` deletes it, as the scheduler does.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable, Mapping
from pathlib import Path

from local_aws.sagemaker.pipeline_targets import _client
from local_aws.scheduler import expressions
from local_aws.scheduler.invoke import Invocation, ScheduleError, fire

log = logging.getLogger(__name__)

Clock = Callable[[], dt.datetime]


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Ticker:
    def __init__(
        self,
        environ: Mapping[str, str],
        *,
        clock: Clock = utc_now,
        state_dir: Path | None = None,
        group: str | None = None,  # watch one schedule group only (None: every group)
    ):
        self.environ = dict(environ)
        self.group = group
        self.clock = clock
        self.state_dir = state_dir
        self._watched: dict[str, tuple[tuple, dt.datetime]] = {}  # arn -> (expression key, checked until)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def tick(self) -> list[Invocation]:
        with self._lock:
            now = self.clock().astimezone(dt.UTC)
            fired = []
            scheduler = _client("scheduler", self.environ)
            for summary in _schedules(scheduler, self.group):
                if summary.get("State") != "ENABLED":
                    continue
                schedule = scheduler.get_schedule(Name=summary["Name"], GroupName=summary.get("GroupName", "default"))
                key = (schedule["ScheduleExpression"], schedule.get("ScheduleExpressionTimezone") or "UTC")
                watched = self._watched.get(schedule["Arn"])
                if watched is None or watched[0] != key:
                    self._watched[schedule["Arn"]] = (key, now)
                    continue
                fired += self._fire_due(schedule, key, watched[1], now, scheduler)
                if schedule["Arn"] in self._watched:
                    self._watched[schedule["Arn"]] = (key, now)
            return fired

    def _fire_due(self, schedule: dict, key: tuple, after: dt.datetime, now: dt.datetime, scheduler) -> list:
        anchor = schedule.get("StartDate") or schedule.get("CreationDate")
        try:
            due = expressions.due_times(*key, after, now, anchor=anchor)
        except expressions.ExpressionError as error:
            log.error("schedule %s: %s", schedule["Name"], error)
            return []
        start, end = schedule.get("StartDate"), schedule.get("EndDate")
        due = [when for when in due if (start is None or when >= start) and (end is None or when <= end)]
        fired = []
        for when in due:
            try:
                fired.append(
                    fire(
                        schedule["Name"],
                        self.environ,
                        group=schedule.get("GroupName"),
                        due=when,
                        state_dir=self.state_dir,
                    )
                )
                log.info("schedule %s fired for %s", schedule["Name"], when.isoformat())
            except ScheduleError as error:
                log.error("%s", error)
            except Exception:  # noqa: BLE001 - one failing schedule must not stop the others
                log.exception("schedule %s failed for %s", schedule["Name"], when.isoformat())
        if due and key[0].startswith("at(") and schedule.get("ActionAfterCompletion") == "DELETE":
            scheduler.delete_schedule(Name=schedule["Name"], GroupName=schedule.get("GroupName", "default"))
            self._watched.pop(schedule["Arn"], None)
        return fired

    def start(self, interval: float = 10.0) -> Ticker:
        def loop() -> None:
            while not self._stop.wait(interval):
                try:
                    self.tick()
                except Exception as error:  # noqa: BLE001 - the next tick tries again
                    if self._stop.is_set():
                        return  # the stack is stopping: moto may be gone already
                    log.warning(
                        "scheduler tick failed (%s: %s); trying again in %.0f s", type(error).__name__, error, interval
                    )

        # The first tick (which starts watching what exists) runs on the thread, after one interval: the stack is
        # announced ready without waiting for it.
        self._thread = threading.Thread(target=loop, name="scheduler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


def _schedules(scheduler, group: str | None) -> list[dict]:
    found, token = [], None
    while True:
        page = scheduler.list_schedules(
            **({"NextToken": token} if token else {}), **({"GroupName": group} if group else {})
        )
        found += page.get("Schedules") or []
        token = page.get("NextToken")
        if not token:
            return found
