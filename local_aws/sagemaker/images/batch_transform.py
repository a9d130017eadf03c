"""A batch transform job's model container, run in the sandbox with the model image's environment.

The XGBoost serving container as batch transform drives it: each input object is split into records
(SplitType Line), the InputFilter selects the features of each record, the model (`xgboost-model` from
model.tar.gz, loaded pickle first, then XGBoost's own format, as the runtime does) predicts, JoinSource Input
puts the input record beside its prediction, the OutputFilter selects the columns kept, and the records are
assembled one a line (AssembleWith Line) into `<object>.out`. Settings come in LOCAL_AWS_TRANSFORM (JSON).
BatchStrategy MultiRecord sends mini-batches of as many records as fit in MaxPayloadInMB, SingleRecord one
record a request; a record larger than MaxPayloadInMB fails the job, as batch transform refuses it.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import sys
import tarfile
from pathlib import Path

import numpy as np

INPUT, OUTPUT, MODEL = Path("/opt/ml/transform/input"), Path("/opt/ml/transform/output"), Path("/opt/ml/model")
_INDEX = re.compile(r"^\$\[(.*)\]$")


def select(path: str | None, values: list[str]) -> list[str]:
    """The JSONPath subset SageMaker accepts for CSV: `$`, `$[i]`, `$[a:b]`, `$[i,j,...]` (negative from the end)."""
    if not path or path == "$":
        return values
    match = _INDEX.match(path.strip())
    if not match:
        raise ValueError(f"filter {path!r} is not a CSV JSONPath ($, $[i], $[a:b], $[i,j])")
    picked: list[str] = []
    for part in match.group(1).split(","):
        if ":" in part:
            start, _, stop = part.partition(":")
            picked += values[slice(int(start) if start.strip() else None, int(stop) if stop.strip() else None)]
        else:
            picked.append(values[int(part)])
    return picked


def load_model():
    import xgboost

    with tarfile.open(MODEL / "model.tar.gz") as archive:
        raw = archive.extractfile("xgboost-model").read()
    try:
        return pickle.loads(raw)  # noqa: S301 - the pipeline's own training output, as the container reads it
    except Exception:  # noqa: BLE001 - not a pickle: XGBoost's own format
        booster = xgboost.Booster()
        booster.load_model(bytearray(raw))
        return booster


def mini_batches(lines: list[str], strategy: str, max_payload_mb: int) -> list[list[str]]:
    """The requests batch transform makes from one object's records (MaxPayloadInMB 0 means no limit)."""
    limit = max_payload_mb * 1024 * 1024 or None
    batches: list[list[str]] = []
    size = 0
    for line in lines:
        record = len(line.encode()) + 1
        if limit and record > limit:
            raise SystemExit(f"transform: a record of {record} bytes exceeds MaxPayloadInMB {max_payload_mb}")
        if strategy == "SingleRecord" or not batches or (limit and size + record > limit):
            batches.append([])
            size = 0
        batches[-1].append(line)
        size += record
    return batches


def main() -> int:
    import xgboost

    settings = json.loads(os.environ["LOCAL_AWS_TRANSFORM"])
    processing = settings.get("DataProcessing", {})
    strategy, max_payload = settings.get("BatchStrategy", "MultiRecord"), int(settings.get("MaxPayloadInMB", 6))
    booster = load_model()
    objects = sorted(p for p in INPUT.rglob("*") if p.is_file())
    for source in objects:
        lines = [line for line in source.read_text().splitlines() if line.strip()]
        records = [line.split(",") for line in lines]
        predictions = []
        for batch in mini_batches(lines, strategy, max_payload):
            rows = [[float(v) for v in select(processing.get("InputFilter"), line.split(","))] for line in batch]
            predictions += [float(p) for p in booster.predict(xgboost.DMatrix(np.array(rows)))]
        predictions = np.array(predictions, dtype=np.float32)
        lines = []
        for record, prediction in zip(records, predictions, strict=True):
            joined = record + [str(prediction)] if processing.get("JoinSource") == "Input" else [str(prediction)]
            lines.append(",".join(select(processing.get("OutputFilter"), joined)))
        target = OUTPUT / f"{source.relative_to(INPUT)}.out"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("\n".join(lines) + ("\n" if lines else ""))
        print(f"transform: {source.relative_to(INPUT)}: {len(lines)} records")
    return 0


if __name__ == "__main__":
    sys.exit(main())
