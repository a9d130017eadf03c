"""The built-in XGBoost algorithm's training entry point, as the sagemaker-xgboost container runs it.

Runs inside the job's sandbox with the image's own Python environment (the image's xgboost version),
and reads and writes only the container contract:
- /opt/ml/input/config/hyperparameters.json (every value a string), inputdataconfig.json;
- /opt/ml/input/data/<channel>/ (CSV with the label first and no header, or libsvm);
- /opt/ml/model/xgboost-model: a pickled Booster before xgboost 1.3 (the 0.90 and 1.0-1 images), XGBoost's
  own save_model format from 1.3-1 on, exactly what that image's xgboost writes;
- /opt/ml/output/failure: the reason, when the job fails (SageMaker reports it as FailureReason).
Progress lines "[round]<TAB>train-rmse:...<TAB>validation-rmse:..." go to the log; the step reads the
last one as the job's final metrics, as SageMaker does with the algorithm's metric definitions.

Self-contained: it runs with only the image's libraries (no local_aws import).
"""

from __future__ import annotations

import json
import pickle
import sys
from pathlib import Path

import numpy as np
import xgboost

CONFIG = Path("/opt/ml/input/config")
DATA = Path("/opt/ml/input/data")
MODEL = Path("/opt/ml/model/xgboost-model")
FAILURE = Path("/opt/ml/output/failure")

# Hyperparameters the container accepts (SageMaker's "XGBoost hyperparameters" page, by image version).
# Anything else fails the job naming it, as the container's validation does: xgboost itself would only warn.
CONTAINER_ONLY = {
    "num_round",
    "early_stopping_rounds",
    "csv_weights",
    "_kfold",
    "_num_cv_round",
    "_tuning_objective_metric",
}
BOOSTER_1_0 = {
    "alpha", "base_score", "booster", "colsample_bylevel", "colsample_bynode", "colsample_bytree", "eta", "eval_metric",
    "gamma", "grow_policy", "interaction_constraints", "lambda", "lambda_bias", "max_bin", "max_delta_step",
    "max_depth", "max_leaves", "min_child_weight", "monotone_constraints", "normalize_type", "nthread", "num_class",
    "num_parallel_tree", "objective", "one_drop", "process_type", "rate_drop", "refresh_leaf", "sample_type",
    "scale_pos_weight", "seed", "sketch_eps", "skip_drop", "subsample", "tree_method", "tweedie_variance_power",
    "updater", "verbosity", "silent",
}  # fmt: skip
# Added by later images (AFT survival in 1.2-1, histogram options, saving on termination).
# "silent" went with xgboost 1.0's deprecation (verbosity replaces it).
BOOSTER_1_3 = (BOOSTER_1_0 - {"silent"}) | {
    "aft_loss_distribution", "aft_loss_distribution_scale", "deterministic_histogram", "sampling_method",
    "single_precision_histogram", "save_model_on_termination",
}  # fmt: skip
CSV, LIBSVM = "text/csv", "text/libsvm"
CONTENT_TYPES = {"text/csv": CSV, "csv": CSV, "text/libsvm": LIBSVM, "libsvm": LIBSVM, "text/x-libsvm": LIBSVM}


class AlgorithmError(Exception):
    pass


def version() -> tuple[int, int]:
    major, minor = xgboost.__version__.split(".")[:2]
    return int(major), int(minor)


def pickles_model() -> bool:
    """The containers before 1.3-1 pickled the Booster; from 1.3-1 on they call save_model."""
    return version() < (1, 3)


def check_hyperparameters(hyperparameters: dict[str, str]) -> None:
    accepted = CONTAINER_ONLY | (BOOSTER_1_0 if pickles_model() else BOOSTER_1_3)
    unknown = sorted(set(hyperparameters) - accepted)
    if unknown:
        raise AlgorithmError(
            f"Hyperparameter(s) {', '.join(unknown)} not accepted by the XGBoost {xgboost.__version__} image"
        )
    if "num_round" not in hyperparameters:
        raise AlgorithmError("Missing required hyperparameter: num_round")


def read_channel(name: str, content_type: str, csv_weights: bool) -> xgboost.DMatrix:
    files = sorted(p for p in (DATA / name).rglob("*") if p.is_file() and not p.name.startswith("."))
    if not files:
        raise AlgorithmError(f"channel {name} has no files")
    if content_type == LIBSVM:
        from sklearn.datasets import load_svmlight_files

        # zero_based=True: column i is index i, as XGBoost's own libsvm parser reads it.
        # One call for every file: they then share one feature count.
        loaded = load_svmlight_files([str(p) for p in files], zero_based=True)
        import scipy.sparse

        features = scipy.sparse.vstack(loaded[0::2]).tocsr()
        return xgboost.DMatrix(features, label=np.concatenate(loaded[1::2]))
    # numpy rather than pandas (half a second of import per job); an empty field is a missing value (NaN).
    data = np.concatenate([np.genfromtxt(p, delimiter=",", ndmin=2, dtype=np.float64) for p in files])
    if csv_weights:  # label, weight, features
        return xgboost.DMatrix(data[:, 2:], label=data[:, 0], weight=data[:, 1])
    return xgboost.DMatrix(data[:, 1:], label=data[:, 0])


def booster_params(hyperparameters: dict[str, str]) -> dict[str, object]:
    params: dict[str, object] = {}
    for key, value in hyperparameters.items():
        if key in CONTAINER_ONLY:
            continue
        params[key] = value
    return params


def train() -> None:
    hyperparameters = json.loads((CONFIG / "hyperparameters.json").read_text())
    check_hyperparameters(hyperparameters)
    channels_config = json.loads((CONFIG / "inputdataconfig.json").read_text())
    csv_weights = hyperparameters.get("csv_weights", "0") == "1"
    channels = {}
    for name, config in channels_config.items():
        # The built-in algorithm's default content type is libsvm.
        raw_type = config.get("ContentType", "libsvm").split(";")[0].strip().lower()
        if raw_type not in CONTENT_TYPES:
            raise AlgorithmError(f"channel {name}: content type {raw_type} (the local stack reads text/csv and libsvm)")
        channels[name] = read_channel(name, CONTENT_TYPES[raw_type], csv_weights)
    if "train" not in channels:
        raise AlgorithmError("the built-in XGBoost algorithm needs a 'train' channel")
    evals = [(channels["train"], "train")] + [(m, n) for n, m in channels.items() if n != "train"]
    early = hyperparameters.get("early_stopping_rounds")
    try:
        booster = xgboost.train(
            booster_params(hyperparameters),
            channels["train"],
            num_boost_round=int(hyperparameters["num_round"]),
            evals=evals,
            early_stopping_rounds=int(early) if early else None,
            verbose_eval=True,  # "[i]\ttrain-rmse:...\tvalidation-rmse:..." on stdout
        )
    except xgboost.core.XGBoostError as error:
        raise AlgorithmError(str(error).strip().splitlines()[0]) from None
    MODEL.parent.mkdir(parents=True, exist_ok=True)
    if pickles_model():
        with MODEL.open("wb") as handle:
            pickle.dump(booster, handle)
    else:
        booster.save_model(str(MODEL))
    print(f"saved {MODEL} ({'pickle' if pickles_model() else 'save_model'}, xgboost {xgboost.__version__})")


def main() -> int:
    try:
        train()
    except (AlgorithmError, ValueError) as error:
        FAILURE.parent.mkdir(parents=True, exist_ok=True)
        FAILURE.write_text(f"AlgorithmError: {error}")
        print(f"AlgorithmError: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
