"""Answer a CloudFormation custom resource request exactly once, whatever happens.

`Responder` sends SUCCESS or FAILED to the pre-signed ResponseURL. It also arms a timer that answers
FAILED shortly before the Lambda times out, so a stack never waits an hour for an answer that a
killed function cannot give. The URL is pre-signed: it is never logged.
"""

from __future__ import annotations

import json
import logging
import threading
import time

import requests

log = logging.getLogger(__name__)

MAX_REASON_CHARS = 1000  # CloudFormation caps the whole response at 4 KB
SAFETY_MARGIN_SECONDS = 10
PUT_ATTEMPTS = 3


class Responder:
    def __init__(self, event: dict, context, default_physical_id: str):
        self.event = event
        self.context = context
        self.default_physical_id = default_physical_id
        self._lock = threading.Lock()
        self.sent: dict | None = None
        self._timer: threading.Timer | None = None

    def arm_timeout(self) -> None:
        remaining = self.context.get_remaining_time_in_millis() / 1000 - SAFETY_MARGIN_SECONDS
        self._timer = threading.Timer(max(remaining, 1.0), self._on_timeout)
        self._timer.daemon = True
        self._timer.start()

    def _on_timeout(self) -> None:
        self.failed("the seed function ran out of time; see its CloudWatch logs, then retry the stack operation")

    def succeeded(self, physical_id: str, data: dict[str, str] | None = None, reason: str = "") -> bool:
        return self._send("SUCCESS", physical_id, reason or "OK", data or {})

    def failed(self, reason: str, physical_id: str | None = None) -> bool:
        return self._send("FAILED", physical_id or self.default_physical_id, reason, {})

    def _send(self, status: str, physical_id: str, reason: str, data: dict[str, str]) -> bool:
        """Returns False when an answer was already sent (the timer and the handler may race)."""
        with self._lock:
            if self.sent is not None:
                return False
            if self._timer is not None:
                self._timer.cancel()
            body = {
                "Status": status,
                "Reason": _clip(f"{reason} (log stream {getattr(self.context, 'log_stream_name', '?')})"),
                "PhysicalResourceId": physical_id,
                "StackId": self.event["StackId"],
                "RequestId": self.event["RequestId"],
                "LogicalResourceId": self.event["LogicalResourceId"],
                "NoEcho": False,
                "Data": data,
            }
            self.sent = body
            _put(self.event["ResponseURL"], json.dumps(body).encode())
            log.info("answered CloudFormation %s for %s (%s)", status, physical_id, self.event["RequestType"])
            return True


def _clip(text: str) -> str:
    return text if len(text) <= MAX_REASON_CHARS else text[: MAX_REASON_CHARS - 3] + "..."


def _put(url: str, body: bytes) -> None:
    # The pre-signed S3 URL is signed without a content type: send none.
    for attempt in range(1, PUT_ATTEMPTS + 1):
        try:
            response = requests.put(url, data=body, headers={"Content-Type": ""}, timeout=15)
            if response.status_code < 300:
                return
            log.error("CloudFormation response rejected: HTTP %s (attempt %d)", response.status_code, attempt)
        except requests.RequestException as error:
            log.error("CloudFormation response not delivered: %s (attempt %d)", type(error).__name__, attempt)
        if attempt < PUT_ATTEMPTS:
            time.sleep(attempt)
    log.error("gave up answering CloudFormation after %d attempts", PUT_ATTEMPTS)
