"""The demo's drifted batch is the one the batch inference tests flag (tests/test_batch_inference.py's drifted())."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from local_demo import batches

from .test_batch_inference import drifted

ABALONE_CSV = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "abalone.csv"


def test_the_demo_drifts_its_batch_as_the_batch_tests_do():
    frame = batches.clean(batches.read(ABALONE_CSV.read_bytes()))
    assert len(frame) == batches.ROWS and list(frame.columns) == batches.COLUMNS
    pd.testing.assert_frame_equal(batches.drifted(frame), drifted(frame))
    assert not batches.drifted(frame).equals(frame)
