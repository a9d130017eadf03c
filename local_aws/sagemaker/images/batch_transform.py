"""A batch transform job's model container, run in the sandbox with the model image's environment.

The XGBoost serving container as batch transform drives it: each input object is split into records
(SplitType Line), the InputFilter selects the features of each record, the model (`xgboost-model` from
model.tar.gz, loaded pickle first, then XGBoost's own format, as the runtime does) predicts, JoinSource Input
puts the input record beside its prediction, the OutputFilter selects the columns kept, and the records are
assembled one a line (AssembleWith Line) into `<object>.out`. Settings come in LOCAL_AWS_TRANSFORM (JSON).
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


def main() -> int:
    import xgboost

    settings = json.loads(os.environ["LOCAL_AWS_TRANSFORM"])
    processing = settings.get("DataProcessing", {})
    booster = load_model()
    objects = sorted(p for p in INPUT.rglob("*") if p.is_file())
    for source in objects:
        records = [line.split(",") for line in source.read_text().splitlines() if line.strip()]
        features = np.array([[float(v) for v in select(processing.get("InputFilter"), r)] for r in records])
        predictions = booster.predict(xgboost.DMatrix(features)) if len(records) else []
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
