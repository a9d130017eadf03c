"""Evaluate step: score the trained model on the test split and write evaluation.json.

Runs unchanged in the SageMaker XGBoost 1.7-1 container and on a laptop. It reads model.tar.gz as
the built-in algorithm writes it (one file, `xgboost-model`, pickled or in XGBoost's own format).
Self-contained on purpose: SageMaker uploads this one file.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import sys
import tarfile
import tempfile

import numpy as np
import pandas as pd

MODEL_FILE = "xgboost-model"


def load_booster(model_tar: str):
    """Load the Booster from the built-in algorithm's model.tar.gz."""
    import xgboost

    with tempfile.TemporaryDirectory() as folder:
        with tarfile.open(model_tar) as archive:
            archive.extract(MODEL_FILE, path=folder)
        path = os.path.join(folder, MODEL_FILE)
        try:
            with open(path, "rb") as handle:
                return pickle.load(handle)  # noqa: S301 - our own training output, as the container writes it
        except Exception:  # noqa: BLE001 - not a pickle: the container's native format
            booster = xgboost.Booster()
            booster.load_model(path)
            return booster


def regression_metrics(y_true, y_pred) -> dict:
    """The model registry's regression metrics, with standard deviations where they are defined."""
    y_true = np.asarray(y_true, dtype=float)
    y_pred = np.asarray(y_pred, dtype=float)
    errors = y_true - y_pred
    squared = errors**2
    absolute = np.abs(errors)
    total = float(np.sum((y_true - y_true.mean()) ** 2))
    mse = float(squared.mean())
    return {
        "mse": {"value": mse, "standard_deviation": float(squared.std())},
        "rmse": {"value": float(np.sqrt(mse))},
        "mae": {"value": float(absolute.mean()), "standard_deviation": float(absolute.std())},
        "r2": {"value": float(1.0 - squared.sum() / total) if total else 0.0},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", default="/opt/ml/processing/model")
    parser.add_argument("--test-dir", default="/opt/ml/processing/test")
    parser.add_argument("--output-dir", default="/opt/ml/processing/evaluation")
    args = parser.parse_args(argv)

    import xgboost

    booster = load_booster(os.path.join(args.model_dir, "model.tar.gz"))
    test = pd.read_csv(os.path.join(args.test_dir, "test.csv"), header=None)
    y_true = test.iloc[:, 0].to_numpy()
    predictions = booster.predict(xgboost.DMatrix(test.iloc[:, 1:].to_numpy()))
    metrics = regression_metrics(y_true, predictions)
    report = {
        "regression_metrics": metrics,
        "test_rows": int(len(test)),
        # For people (the registry's metadata, the approval message): four significant digits. The exact values
        # stay in regression_metrics, which the condition step and the champion gate read.
        "summary": {name: f"{metrics[name]['value']:.4g}" for name in ("mse", "rmse")},
    }
    os.makedirs(args.output_dir, exist_ok=True)
    with open(os.path.join(args.output_dir, "evaluation.json"), "w") as handle:
        json.dump(report, handle, indent=2)
    print(f"Evaluate: rmse {metrics['rmse']['value']:.3f}, mse {metrics['mse']['value']:.3f} on {len(test)} rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
