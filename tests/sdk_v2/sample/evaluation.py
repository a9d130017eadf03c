"""Model evaluation, as AWS's public samples write it: pickle.load of the XGBoost 1.0-1 model."""

import json
import pathlib
import pickle
import tarfile

import numpy as np
import pandas as pd
import xgboost

if __name__ == "__main__":
    with tarfile.open("/opt/ml/processing/model/model.tar.gz") as tar:
        tar.extractall(path=".")  # noqa: S202 - as the samples do
    model = pickle.load(open("xgboost-model", "rb"))  # noqa: S301, SIM115 - as the samples do

    df = pd.read_csv("/opt/ml/processing/test/test.csv", header=None)
    y_test = df.iloc[:, 0].to_numpy()
    predictions = model.predict(xgboost.DMatrix(df.iloc[:, 1:].values))
    errors = (y_test - predictions) ** 2
    report = {
        "regression_metrics": {"mse": {"value": float(np.mean(errors)), "standard_deviation": float(np.std(errors))}}
    }

    pathlib.Path("/opt/ml/processing/evaluation").mkdir(parents=True, exist_ok=True)
    with open("/opt/ml/processing/evaluation/evaluation.json", "w") as f:
        f.write(json.dumps(report))
