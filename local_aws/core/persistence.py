"""moto keeps its state in memory; this keeps the local stack's AWS state across restarts.

moto's own request recorder writes every request it serves to `<state dir>/moto-recording.jsonl`;
the next start replays that file into the new server before it is announced ready. So a second
`make demo` finds the first run's buckets, models and pipeline outputs, and SageMaker's step cache
(kept by the executor in the same folder) hits as it would on AWS. Delete the state folder
(`make clean`) to start empty.
"""

from __future__ import annotations

import logging
import os
import sys
import time
import urllib.request
from pathlib import Path

log = logging.getLogger(__name__)

RECORDING = "moto-recording.jsonl"
_RECORDER_MODULE = "moto.moto_api._internal.recorder.models"


def record_into(state_dir: Path) -> Path:
    """Make the moto server about to start record into the state folder. Call before it starts."""
    if _RECORDER_MODULE in sys.modules:  # its settings are read once, when it is first imported
        raise RuntimeError("moto's recorder is already loaded: call persistence.record_into before moto starts")
    path = Path(state_dir) / RECORDING
    os.environ["MOTO_RECORDER_FILEPATH"] = str(path)
    os.environ["MOTO_ENABLE_RECORDING"] = "true"
    return path


def restore(moto_url: str, state_dir: Path) -> int:
    """Replay an earlier recording into the running moto server; returns how many requests it held."""
    path = Path(state_dir) / RECORDING
    if not path.exists() or path.stat().st_size == 0:
        return 0
    started = time.monotonic()
    with path.open("rb") as recording:
        count = sum(1 for _ in recording)
    url = f"{moto_url}/moto-api/recorder/replay-recording"
    request = urllib.request.Request(url, method="POST")  # noqa: S310 - the loopback moto server
    with urllib.request.urlopen(request, timeout=300) as response:  # noqa: S310 - the loopback moto server
        response.read()
    log.info("restored the AWS state of the last run: %d requests in %.2f s", count, time.monotonic() - started)
    return count
