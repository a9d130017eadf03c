"""The demo's batches for the production batch inference pipeline: a clean one and a drifted one.

Both are raw rows in the training schema (the pipeline's Preprocess encodes them with the package's feature
code). The drifted one shifts what the model leans on (tests/test_batch_inference.py scores the same batches):
heavier animals, and the shell and shucked weights fixed at one value, so their attributions vanish and the
features' ranking changes whichever rows the explainer samples.
"""

from __future__ import annotations

import io

import pandas as pd

COLUMNS = [
    "sex",
    "length",
    "diameter",
    "height",
    "whole_weight",
    "shucked_weight",
    "viscera_weight",
    "shell_weight",
    "rings",
]
ROWS = 300
SEED = 7


def read(body: bytes) -> pd.DataFrame:
    """The demo data as a frame, with or without its header row."""
    frame = pd.read_csv(io.BytesIO(body))
    if "rings" not in frame.columns:
        frame = pd.read_csv(io.BytesIO(body), header=None, names=COLUMNS)
    return frame


def clean(data: pd.DataFrame, rows: int = ROWS) -> pd.DataFrame:
    return data.sample(min(rows, len(data)), random_state=SEED).reset_index(drop=True)


def drifted(frame: pd.DataFrame) -> pd.DataFrame:
    shifted = frame.copy()
    for column in ("whole_weight", "viscera_weight"):
        shifted[column] = shifted[column] * 1.8
    for column in ("shell_weight", "shucked_weight"):
        shifted[column] = shifted[column].median()
    return shifted


def csv_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    return buffer.getvalue().encode()
