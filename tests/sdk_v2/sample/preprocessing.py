"""Feature engineering, written as AWS's public samples write it: container paths hard-coded."""

import os

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.preprocessing import OneHotEncoder, StandardScaler

base_dir = "/opt/ml/processing"

if __name__ == "__main__":
    df = pd.read_csv(f"{base_dir}/input/abalone.csv")
    y = df.pop("rings").to_numpy(dtype=float)
    numeric = [c for c in df.columns if c != "sex"]
    # sparse_output is new in scikit-learn 1.2: this script needs the 1.2-1 image.
    transformer = ColumnTransformer(
        [("num", StandardScaler(), numeric), ("cat", OneHotEncoder(sparse_output=False), ["sex"])]
    )
    X = transformer.fit_transform(df)
    data = np.concatenate([y.reshape(-1, 1), X], axis=1)
    np.random.default_rng(7).shuffle(data)
    train, validation, test = np.split(data, [int(0.7 * len(data)), int(0.85 * len(data))])
    for name, part in (("train", train), ("validation", validation), ("test", test)):
        os.makedirs(f"{base_dir}/{name}", exist_ok=True)
        pd.DataFrame(part).to_csv(f"{base_dir}/{name}/{name}.csv", header=False, index=False)
