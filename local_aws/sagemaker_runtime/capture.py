"""Data capture: what an endpoint config's DataCaptureConfig makes SageMaker write for each sampled request.

SageMaker's "Capture data from real-time endpoint" layout and record format:

    s3://<DestinationS3Uri>/<endpoint>/<variant>/yyyy/mm/dd/hh/<mm>-<ss>-<mmm>-<uuid>.jsonl
    {"captureData": {"endpointInput":  {"observedContentType": "text/csv", "mode": "INPUT",
                                        "data": "...", "encoding": "CSV"},
                     "endpointOutput": {"observedContentType": "text/csv", "mode": "OUTPUT",
                                        "data": "...", "encoding": "CSV"}},
     "eventMetadata": {"eventId": "<uuid>", "inferenceTime": "2026-12-01T10:00:00Z"},
     "eventVersion": "0"}

- `EnableCapture` false (or no DataCaptureConfig): nothing is captured.
- `InitialSamplingPercentage`: each request is captured with that probability.
- `CaptureOptions`: `Input` and/or `Output` (one record holds both when both are asked for).
- `CaptureContentTypeHeader`: a content type listed in `CsvContentTypes` is written as text with encoding
  CSV, one in `JsonContentTypes` as text with encoding JSON; any other is BASE64 (the API reference: "If no
  headers are specified SageMaker will by default base64 encode when capturing the data").
- The hour folder and the file name come from the inference time (UTC); a file holds the records of one
  endpoint, variant and hour.

Records are buffered in memory and written in files by a background thread (every `flush_seconds`, or
at once when a buffer holds `max_records`): the request thread only appends a dict, so capture costs the
p50 microseconds, as SageMaker's own capture runs beside the container, never in the request path.
Files are written with boto3 through moto's HTTP API, so the stack's recording (persistence) keeps them.
`flush()` writes what is buffered now (tests, the monitoring command, shutdown).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import random
import threading
import uuid
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

EVENT_VERSION = "0"
INPUT, OUTPUT = "INPUT", "OUTPUT"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def encode(body: bytes, content_type: str | None, header: dict) -> tuple[str, str]:
    """(data, encoding) as SageMaker writes a captured body, by the config's CaptureContentTypeHeader."""
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    for member, encoding in (("CsvContentTypes", "CSV"), ("JsonContentTypes", "JSON")):
        if media_type and media_type in {value.lower() for value in header.get(member) or []}:
            try:
                return body.decode("utf-8"), encoding
            except UnicodeDecodeError:
                break  # not text after all: kept exactly, as base64
    return base64.b64encode(body).decode("ascii"), "BASE64"


def decode(captured: dict) -> bytes:
    """The body a captured endpointInput/endpointOutput holds (the reverse of `encode`)."""
    if captured.get("encoding") == "BASE64":
        return base64.b64decode(captured.get("data") or "")
    return (captured.get("data") or "").encode("utf-8")


def split_uri(uri: str) -> tuple[str, str]:
    bucket, _, prefix = uri.removeprefix("s3://").removeprefix("https://").partition("/")
    return bucket, prefix.strip("/")


def object_key(prefix: str, endpoint: str, variant: str, first: dt.datetime, file_id: str) -> str:
    """The documented layout: <prefix>/<endpoint>/<variant>/yyyy/mm/dd/hh/<mm>-<ss>-<mmm>-<uuid>.jsonl."""
    stamp = f"{first:%M-%S}-{first.microsecond // 1000:03d}"
    return "/".join(
        part for part in (prefix, endpoint, variant, f"{first:%Y/%m/%d/%H}", f"{stamp}-{file_id}.jsonl") if part
    )


class DataCapture:
    """Buffers captured records per destination, endpoint, variant and hour; writes them in files."""

    def __init__(
        self,
        s3_client: Callable[[], Any],
        flush_seconds: float = 1.0,
        max_records: int = 1000,
        clock: Callable[[], dt.datetime] = _now,
        sample: Callable[[], float] = random.random,
    ):
        self._s3_client = s3_client  # called on the flush thread only: never costs a request anything
        self.flush_seconds = flush_seconds
        self.max_records = max_records
        self.clock = clock
        self.sample = sample  # uniform in [0, 1): injectable, so tests can pin the sampling
        self._buffers: dict[tuple[str, str, str, str, str], list[tuple[dt.datetime, dict]]] = {}
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()  # one writer at a time: files never interleave
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self.files_written = 0

    def record(
        self,
        config: dict | None,
        endpoint: str,
        variant: str,
        request: tuple[bytes, str | None],
        response: tuple[bytes, str | None],
        inference_id: str | None = None,
    ) -> bool:
        """Capture one successful invocation if the config asks for it; True when it was captured."""
        if not config or not config.get("EnableCapture", True):  # the API's default: enabled
            return False
        percentage = float(config.get("InitialSamplingPercentage", 0))
        if percentage <= 0 or self.sample() * 100 >= percentage:
            return False
        modes = {str(option.get("CaptureMode", "")).upper() for option in config.get("CaptureOptions") or []}
        header = config.get("CaptureContentTypeHeader") or {}
        now = self.clock()
        data: dict[str, Any] = {}
        for mode, name, (body, content_type) in (
            (INPUT, "endpointInput", request),
            (OUTPUT, "endpointOutput", response),
        ):
            if mode in modes or "INPUTANDOUTPUT" in modes:
                text, encoding = encode(body, content_type, header)
                data[name] = {
                    "observedContentType": content_type or "",
                    "mode": mode,
                    "data": text,
                    "encoding": encoding,
                }
        if not data:
            return False
        metadata = {"eventId": str(uuid.uuid4()), "inferenceTime": now.strftime("%Y-%m-%dT%H:%M:%SZ")}
        if inference_id:
            metadata["inferenceId"] = inference_id
        entry = {"captureData": data, "eventMetadata": metadata, "eventVersion": EVENT_VERSION}
        bucket, prefix = split_uri(config["DestinationS3Uri"])
        key = (bucket, prefix, endpoint, variant, now.strftime("%Y%m%d%H"))
        with self._lock:
            buffer = self._buffers.setdefault(key, [])
            buffer.append((now, entry))
            full = len(buffer) >= self.max_records
        if full:
            self._wake.set()
        return True

    def pending(self) -> int:
        with self._lock:
            return sum(len(records) for records in self._buffers.values())

    def flush(self) -> list[str]:
        """Write every buffered record now, one file per endpoint, variant and hour; the S3 URIs written."""
        with self._flush_lock:
            with self._lock:
                buffers, self._buffers = self._buffers, {}
            written = []
            for (bucket, prefix, endpoint, variant, _hour), records in buffers.items():
                key = object_key(prefix, endpoint, variant, records[0][0], str(uuid.uuid4()))
                body = "".join(json.dumps(entry, separators=(",", ":")) + "\n" for _, entry in records)
                try:
                    self._s3_client().put_object(
                        Bucket=bucket, Key=key, Body=body.encode(), ContentType="application/jsonl"
                    )
                except Exception:  # noqa: BLE001 - as SageMaker: a capture that cannot be written is dropped, logged
                    log.exception("data capture: could not write %d record(s) to s3://%s/%s", len(records), bucket, key)
                    continue
                written.append(f"s3://{bucket}/{key}")
            self.files_written += len(written)
            return written

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="data-capture", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.flush()

    def _run(self) -> None:
        while not self._stopped.is_set():
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            if self.pending():
                self.flush()


# The stack's one DataCapture (the gateway's), for the flush operation below.
_installed: DataCapture | None = None
FLUSH_OPERATION = "LocalAws.FlushDataCapture"  # a local-stack operation: X-Amz-Target LocalAws.FlushDataCapture


def install(capture: DataCapture) -> DataCapture:
    global _installed
    _installed = capture
    return capture


def _flush_operation(request: dict, context) -> dict:
    """Write the buffered captures now: the monitoring command calls it so an execution sees every request."""
    return {"Files": _installed.flush() if _installed is not None else []}


def register() -> None:
    from local_aws.core import api

    if api.handler_for(FLUSH_OPERATION) is None:
        api.register(FLUSH_OPERATION, _flush_operation)
