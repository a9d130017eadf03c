"""Talking to an endpoint the way clients do (text/csv in, text/csv out) and scoring the answers."""

from __future__ import annotations

import csv
import io
import math
import re
import time
from dataclasses import dataclass

CONTENT_TYPE = "text/csv"


@dataclass(frozen=True)
class LabelledRow:
    label: float
    features: str  # the CSV line as stored, sent as is


def parse_test_split(text: str) -> list[LabelledRow]:
    """The model-build test split: no header, the label first, then the features."""
    rows = []
    for number, fields in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not fields:
            continue
        try:
            label = float(fields[0])
        except ValueError:
            raise ValueError(f"test split line {number}: the label {fields[0]!r} is not a number") from None
        rows.append(LabelledRow(label=label, features=",".join(fields[1:])))
    if not rows:
        raise ValueError("the test split is empty")
    return rows


def parse_predictions(body: bytes | str) -> list[float]:
    """One number per row; containers separate them by newlines or by commas, so accept both."""
    text = body.decode("utf-8") if isinstance(body, bytes) else body
    tokens = [token for token in re.split(r"[\s,]+", text.strip()) if token]
    try:
        return [float(token) for token in tokens]
    except ValueError:
        raise ValueError(f"the endpoint answered something other than CSV numbers: {text[:200]!r}") from None


def invoke_csv(runtime, endpoint_name: str, lines: list[str]) -> list[float]:
    body = ("\n".join(lines) + "\n").encode("utf-8")
    response = runtime.invoke_endpoint(
        EndpointName=endpoint_name, ContentType=CONTENT_TYPE, Accept=CONTENT_TYPE, Body=body
    )
    predictions = parse_predictions(response["Body"].read())
    if len(predictions) != len(lines):
        raise ValueError(f"sent {len(lines)} rows to {endpoint_name}, got {len(predictions)} predictions back")
    return predictions


def predict_all(runtime, endpoint_name: str, rows: list[LabelledRow], batch_rows: int) -> list[float]:
    predictions = []
    for start in range(0, len(rows), batch_rows):
        batch = rows[start : start + batch_rows]
        predictions.extend(invoke_csv(runtime, endpoint_name, [row.features for row in batch]))
    return predictions


def rmse(labels: list[float], predictions: list[float]) -> float:
    if len(labels) != len(predictions) or not labels:
        raise ValueError(f"cannot score {len(predictions)} predictions against {len(labels)} labels")
    return math.sqrt(sum((y - p) ** 2 for y, p in zip(labels, predictions, strict=True)) / len(labels))


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile: the smallest value with at least `share` of the values at or below it."""
    ordered = sorted(values)
    rank = max(1, math.ceil(share * len(ordered)))
    return ordered[rank - 1]


def single_row_latencies_ms(runtime, endpoint_name: str, rows: list[LabelledRow], requests: int) -> list[float]:
    """Round-trip time of `requests` one-row invocations, as a client sees it."""
    latencies = []
    for i in range(requests):
        row = rows[i % len(rows)]
        started = time.perf_counter()
        invoke_csv(runtime, endpoint_name, [row.features])
        latencies.append((time.perf_counter() - started) * 1000)
    return latencies
