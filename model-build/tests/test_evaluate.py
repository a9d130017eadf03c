"""The evaluate step script: metrics, model loading, and the quality of the pipeline's model."""

from __future__ import annotations

import json
import math
import pickle
import tarfile

import numpy as np
import pandas as pd
import pytest
import xgboost

from pipelines.abalone import evaluate, preprocess
from pipelines.abalone.pipeline import FIXED_HYPERPARAMETERS, HYPERPARAMETERS


def test_metrics_match_a_hand_computed_case():
    metrics = evaluate.regression_metrics([1, 2, 3, 4], [1, 3, 2, 4])
    # errors 0, -1, 1, 0: squared 0, 1, 1, 0; total sum of squares around the mean 2.5 is 5.
    assert metrics["mse"] == {"value": 0.5, "standard_deviation": 0.5}
    assert metrics["rmse"]["value"] == pytest.approx(math.sqrt(0.5))
    assert metrics["mae"] == {"value": 0.5, "standard_deviation": 0.5}
    assert metrics["r2"]["value"] == pytest.approx(1 - 2 / 5)


def train_like_the_pipeline(train: pd.DataFrame, validation: pd.DataFrame) -> xgboost.Booster:
    """The built-in algorithm's contract: label in column 0, hyperparameters as the pipeline sets them."""
    params = {**FIXED_HYPERPARAMETERS, **{algo: default for algo, default in HYPERPARAMETERS.values()}}
    rounds = int(params.pop("num_round"))
    dtrain = xgboost.DMatrix(train.iloc[:, 1:].to_numpy(), label=train.iloc[:, 0].to_numpy())
    dvalid = xgboost.DMatrix(validation.iloc[:, 1:].to_numpy(), label=validation.iloc[:, 0].to_numpy())
    return xgboost.train(params, dtrain, num_boost_round=rounds, evals=[(dvalid, "validation")], verbose_eval=False)


def write_model_tar(booster: xgboost.Booster, folder, pickled: bool) -> None:
    """model.tar.gz as the built-in container writes it: one file named xgboost-model."""
    folder.mkdir(parents=True, exist_ok=True)
    model_file = folder / "xgboost-model"
    if pickled:
        model_file.write_bytes(pickle.dumps(booster))
    else:
        booster.save_model(str(model_file))
    with tarfile.open(folder / "model.tar.gz", "w:gz") as archive:
        archive.add(model_file, arcname="xgboost-model")
    model_file.unlink()


@pytest.fixture(scope="module")
def splits(abalone_csv, tmp_path_factory):
    out = tmp_path_factory.mktemp("splits")
    assert preprocess.main(["--input-dir", str(abalone_csv), "--output-dir", str(out)]) == 0
    return out


@pytest.mark.parametrize("pickled", [False, True], ids=["native-format", "pickled"])
def test_model_trained_with_pipeline_hyperparameters_scores_under_2_5_rings(splits, tmp_path, pickled):
    train = pd.read_csv(splits / "train" / "train.csv", header=None)
    validation = pd.read_csv(splits / "validation" / "validation.csv", header=None)
    booster = train_like_the_pipeline(train, validation)
    write_model_tar(booster, tmp_path / "model", pickled=pickled)

    assert (
        evaluate.main(
            [
                "--model-dir",
                str(tmp_path / "model"),
                "--test-dir",
                str(splits / "test"),
                "--output-dir",
                str(tmp_path / "evaluation"),
            ]
        )
        == 0
    )
    report = json.loads((tmp_path / "evaluation" / "evaluation.json").read_text())
    metrics = report["regression_metrics"]
    assert report["test_rows"] == 626
    assert metrics["rmse"]["value"] < 2.5, metrics
    assert metrics["mse"]["value"] == pytest.approx(metrics["rmse"]["value"] ** 2)
    # What people read (registry metadata, the approval message): four significant digits of the exact values.
    assert report["summary"] == {name: f"{metrics[name]['value']:.4g}" for name in ("mse", "rmse")}
    assert len(report["summary"]["rmse"].replace(".", "")) <= 4
    # The report is the model's own score on the test split, not a copy of anything else.
    test = pd.read_csv(splits / "test" / "test.csv", header=None)
    own = booster.predict(xgboost.DMatrix(test.iloc[:, 1:].to_numpy()))
    assert metrics["mae"]["value"] == pytest.approx(float(np.abs(test[0] - own).mean()))
