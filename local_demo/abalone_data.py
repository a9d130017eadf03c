"""The demo's input data: where `make demo DATA=...` gets the abalone CSV it uploads.

    DATA=path/to/abalone.csv   a local file (with or without the header row)
    DATA=s3://bucket/key.csv   an object already in S3 (used as is)
    DATA=uci                   download the UCI archive's abalone.data, checked against its SHA-256
    (unset)                    ../shared/datasets/abalone.csv when it is there; else the UCI archive
                               when online; else (offline) a generated sample

The generated sample keeps the demo working offline. It has the abalone schema and a learnable signal,
and every message says it is synthetic, so nobody mistakes its metrics for the real data's.
"""

from __future__ import annotations

import hashlib
import os
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipelines import s3_input  # model-build's own check, the one its run_pipeline makes

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_COPY = REPO_ROOT.parent / "shared" / "datasets" / "abalone.csv"
UCI_URL = "https://archive.ics.uci.edu/ml/machine-learning-databases/abalone/abalone.data"
# SHA-256 of abalone.data as the UCI archive serves it (the shared CSV minus its added header row).
UCI_SHA256 = "de37cdcdcaaa50c309d514f248f7c2302a5f1f88c168905eba23fe2fbc78449f"
OFFLINE_PROBE_SECONDS = 10.0  # the default's download attempt: offline, fall back to the sample soon
HEADER = "sex,length,diameter,height,whole_weight,shucked_weight,viscera_weight,shell_weight,rings"


class DataError(RuntimeError):
    pass


@dataclass(frozen=True)
class DemoData:
    description: str  # what a person is told about the data
    body: bytes | None  # the CSV to upload, or None when `s3_uri` is used as is
    s3_uri: str | None = None
    synthetic: bool = False

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.body if self.body is not None else self.s3_uri.encode()).hexdigest()


def resolve(choice: str | None) -> DemoData:
    choice = (choice or "").strip()
    if choice.startswith("s3://"):
        try:
            s3_input.split_uri(choice)  # the form now; whether it exists once the stack is up (upload)
        except s3_input.InputError as error:
            raise DataError(f"DATA={choice}: {error}") from None
        return DemoData(f"{choice} (already in S3)", None, s3_uri=choice)
    if choice == "uci":
        return _uci(download_uci())
    if choice:
        path = Path(choice).expanduser()
        if not path.is_file():
            raise DataError(f"DATA={choice}: no such file. Give a CSV path, an s3:// URI, or DATA=uci")
        if not path.read_bytes().strip():
            raise DataError(
                f"DATA={choice} is empty: give the abalone CSV ({HEADER}, header optional), an s3:// URI, or DATA=uci"
            )
        return DemoData(f"{path} ({path.stat().st_size} bytes)", path.read_bytes())
    if SHARED_COPY.is_file():
        return DemoData(f"UCI Abalone data from {SHARED_COPY}", SHARED_COPY.read_bytes())
    try:
        return _uci(download_uci(timeout=OFFLINE_PROBE_SECONDS))
    except DataError as error:
        offline = str(error)
    return DemoData(
        "SYNTHETIC sample with the abalone schema: metrics are not comparable with the real data. "
        f"No DATA given, no ../shared copy, and {offline}",
        synthetic_sample(),
        synthetic=True,
    )


def _uci(body: bytes) -> DemoData:
    return DemoData(f"UCI Abalone archive ({UCI_URL}), SHA-256 verified", body)


def download_uci(timeout: float = 20.0) -> bytes:
    try:
        with urllib.request.urlopen(UCI_URL, timeout=timeout) as response:  # noqa: S310 - a fixed https URL
            body = response.read()
    except OSError as error:
        raise DataError(f"cannot download {UCI_URL} ({error}): give DATA=path/to/abalone.csv instead") from None
    digest = hashlib.sha256(body).hexdigest()
    if digest != UCI_SHA256:
        raise DataError(f"{UCI_URL} has SHA-256 {digest}, expected {UCI_SHA256}: the download is not the data set")
    return body


def synthetic_sample(rows: int = 4177, seed: int = int(os.environ.get("SAMPLE_SEED", "7"))) -> bytes:
    """Rows shaped like the UCI data: sizes and weights grow with age, with noise, as in real abalone."""
    rng = np.random.default_rng(seed)
    rings = np.clip(np.round(rng.gamma(shape=9.0, scale=1.1, size=rows)), 1, 29)
    growth = 1 - np.exp(-rings / 8.0)
    length = np.clip(0.15 + 0.55 * growth + rng.normal(0, 0.04, rows), 0.07, 0.82)
    diameter = length * 0.79 + rng.normal(0, 0.01, rows)
    height = length * 0.25 + rng.normal(0, 0.01, rows)
    whole = 1.8 * length**3 * 4.2 + rng.normal(0, 0.05, rows).clip(-0.02)
    shucked = whole * 0.43
    viscera = whole * 0.22
    shell = whole * 0.29 + 0.01 * rings / 10
    sex = np.where(rings < 7, "I", rng.choice(["M", "F"], size=rows))
    lines = [HEADER] + [
        f"{s},{a:.3f},{b:.3f},{c:.3f},{d:.4f},{e:.4f},{f:.4f},{g:.4f},{int(r)}"
        for s, a, b, c, d, e, f, g, r in zip(
            sex, length, diameter, height, whole, shucked, viscera, shell, rings, strict=True
        )
    ]
    return ("\n".join(lines) + "\n").encode()


def upload(data: DemoData, s3, bucket: str) -> str:
    """The data's S3 URI, uploading it first. Keys are content-addressed: new data never reuses a
    cached preprocessing step (SageMaker's cache compares the input's URI, not its content)."""
    if data.s3_uri:
        try:
            s3_input.check(s3, data.s3_uri)  # HeadBucket/HeadObject/ListObjectsV2: a second, not a failed job
        except s3_input.InputError as error:
            raise DataError(f"DATA={error}") from None
        return data.s3_uri
    key = f"data/abalone/{data.sha256[:16]}/abalone.csv"
    s3.put_object(Bucket=bucket, Key=key, Body=data.body)
    return f"s3://{bucket}/{key}"


# model-build's InputDataUrl default (pipelines/abalone/pipeline.py), where a build reads when nobody names its
# input: a retraining build, triggered with no InputDataUrl, trains on what lies here.
CONFIGURED_INPUT_KEY = "data/abalone/abalone.csv"


def land_latest(body: bytes, s3, bucket: str) -> str:
    """Put the newest data at the build's configured input, as a data pipeline would; its S3 URI."""
    s3.put_object(Bucket=bucket, Key=CONFIGURED_INPUT_KEY, Body=body)
    return f"s3://{bucket}/{CONFIGURED_INPUT_KEY}"
