"""Latency and throughput of a SageMaker endpoint, measured as a client sees them (boto3 InvokeEndpoint).

    from local_aws.sagemaker_runtime.bench import measure, format_figures
    figures = measure("abalone-staging", rows)        # rows: feature rows (lists of floats)
    print(format_figures(figures))

    python -m local_aws.sagemaker_runtime.bench ENDPOINT TEST_CSV [--label-first] [--requests N]

Endpoint, credentials and region come from the environment (`eval "$(scripts/local-stack env)"`),
so the same measurement runs against a real endpoint. Requests are sequential from one client:
throughput is what one caller gets, latency includes boto3's own request signing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from typing import Any

BATCH_ROWS = 100


def measure(
    endpoint_name: str,
    rows: list[list[float]],
    requests: int = 300,
    batch_requests: int = 100,
    warmup: int = 10,
    client=None,
) -> dict[str, Any]:
    """p50/p99 latency (ms) and throughput for single-row and 100-row requests to `endpoint_name`."""
    if not rows:
        raise ValueError("measure() needs at least one feature row")
    if client is None:
        import boto3
        from botocore.config import Config

        client = boto3.client("sagemaker-runtime", config=Config(retries={"max_attempts": 1}))
    single = [_csv([rows[i % len(rows)]]) for i in range(requests)]
    batch = [_csv([rows[(i * BATCH_ROWS + j) % len(rows)] for j in range(BATCH_ROWS)]) for i in range(batch_requests)]
    for body in single[:warmup]:  # first call loads the model; connections get pooled
        _invoke(client, endpoint_name, body)
    return {
        "endpoint": endpoint_name,
        "single_row": _run(client, endpoint_name, single, rows_per_request=1),
        f"batch_{BATCH_ROWS}_rows": _run(client, endpoint_name, batch, rows_per_request=BATCH_ROWS),
    }


def format_figures(figures: dict[str, Any]) -> str:
    lines = [f"runtime latency and throughput, endpoint {figures['endpoint']} (one sequential boto3 client):"]
    for name, label in (("single_row", "1 row    "), (f"batch_{BATCH_ROWS}_rows", f"{BATCH_ROWS} rows  ")):
        result = figures[name]
        lines.append(
            f"  {label} p50 {result['p50_ms']:6.2f} ms  p99 {result['p99_ms']:6.2f} ms  "
            f"{result['requests_per_second']:7.0f} req/s  {result['rows_per_second']:8.0f} rows/s  "
            f"({result['requests']} requests)"
        )
    return "\n".join(lines)


def _run(client, endpoint_name: str, bodies: list[bytes], rows_per_request: int) -> dict[str, Any]:
    latencies = []
    started = time.perf_counter()
    for body in bodies:
        begin = time.perf_counter()
        _invoke(client, endpoint_name, body)
        latencies.append((time.perf_counter() - begin) * 1000)
    elapsed = time.perf_counter() - started
    percentiles = statistics.quantiles(latencies, n=100, method="inclusive")
    return {
        "requests": len(bodies),
        "p50_ms": round(statistics.median(latencies), 3),
        "p99_ms": round(percentiles[98], 3),
        "requests_per_second": round(len(bodies) / elapsed, 1),
        "rows_per_second": round(len(bodies) * rows_per_request / elapsed, 1),
    }


def _invoke(client, endpoint_name: str, body: bytes) -> bytes:
    answer = client.invoke_endpoint(EndpointName=endpoint_name, ContentType="text/csv", Accept="text/csv", Body=body)
    return answer["Body"].read()


def _csv(rows: list[list[float]]) -> bytes:
    return "\n".join(",".join(repr(float(value)) for value in row) for row in rows).encode()


def read_rows(path: str, label_first: bool) -> list[list[float]]:
    """Feature rows of a headerless CSV (the pipeline's test.csv has the label first)."""
    with open(path, encoding="utf-8") as stream:
        rows = [[float(field) for field in line.split(",")] for line in stream if line.strip()]
    return [row[1:] for row in rows] if label_first else rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m local_aws.sagemaker_runtime.bench", description=__doc__.splitlines()[0]
    )
    parser.add_argument("endpoint")
    parser.add_argument("rows_csv", help="headerless CSV of feature rows")
    parser.add_argument("--label-first", action="store_true", help="drop the first column (test.csv's label)")
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args(argv)
    print(format_figures(measure(args.endpoint, read_rows(args.rows_csv, args.label_first), requests=args.requests)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
