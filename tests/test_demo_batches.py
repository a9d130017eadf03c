"""The demo's batches (local_demo/batches.py), which tests/test_batch_inference.py also scores: 300 rows of the
training schema, and a drifted copy that changes the features the model leans on."""

from __future__ import annotations

from pathlib import Path

from local_demo import batches

ABALONE_CSV = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "abalone.csv"


def test_the_demo_batch_is_300_training_rows_and_its_drifted_copy_differs():
    frame = batches.clean(batches.read(ABALONE_CSV.read_bytes()))
    assert len(frame) == batches.ROWS and list(frame.columns) == batches.COLUMNS
    assert not batches.drifted(frame).equals(frame)
