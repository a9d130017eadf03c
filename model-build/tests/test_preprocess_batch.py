"""The feature encoding at inference (`preprocess.py --mode batch`): the same encoding as training, in shards."""

from __future__ import annotations

import pandas as pd

from pipelines.abalone import preprocess


def test_batch_features_equal_the_training_encoding_in_order_across_shards(abalone_csv, tmp_path):
    raw = pd.read_csv(abalone_csv).head(103)
    (tmp_path / "in").mkdir()
    raw.drop(columns=["rings"]).to_csv(tmp_path / "in" / "batch.csv", index=False, header=False)
    args = ["--mode", "batch", "--shards", "4", "--input-dir", str(tmp_path / "in"), "--output-dir", f"{tmp_path}/o"]
    assert preprocess.main(args) == 0

    shards = sorted((tmp_path / "o" / "features").iterdir())
    assert [p.name for p in shards] == [f"shard-{i:05d}.csv" for i in range(4)]
    features = pd.concat([pd.read_csv(p, header=None) for p in shards], ignore_index=True)
    trained = preprocess.encode(preprocess.validate(preprocess.read_raw(str(abalone_csv)))).head(103)
    assert features.to_numpy().tolist() == trained.drop(columns=["rings"]).to_numpy().tolist()
    # The drift data set is the model's input with its header: the schema of the data-quality baseline.
    drift = pd.read_csv(tmp_path / "o" / "drift" / "drift.csv")
    assert list(drift.columns) == preprocess.ENCODED_FEATURES
    assert drift.to_numpy().tolist() == features.to_numpy().tolist()


def test_batch_with_labels_drops_them_from_the_drift_check_and_never_more_shards_than_rows(abalone_csv, tmp_path):
    (tmp_path / "in").mkdir()
    pd.read_csv(abalone_csv).head(3).to_csv(tmp_path / "in" / "b.csv", index=False)
    args = ["--mode", "batch", "--shards", "8", "--input-dir", str(tmp_path / "in"), "--output-dir", f"{tmp_path}/o"]
    assert preprocess.main(args) == 0
    assert len(list((tmp_path / "o" / "features").iterdir())) == 3
    # Labels or not, the drift data set is what the model receives: the label is no feature of it.
    assert list(pd.read_csv(tmp_path / "o" / "drift" / "drift.csv").columns) == preprocess.ENCODED_FEATURES


def test_batch_refuses_rows_training_would_refuse(tmp_path, capsys):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "b.csv").write_text("X,0.4,0.3,0.1,0.5,0.2,0.1,0.15\n")
    assert preprocess.main(["--mode", "batch", "--input-dir", str(tmp_path / "in"), "--output-dir", str(tmp_path)]) == 1
    assert "column sex must be one of F, I, M" in capsys.readouterr().err
