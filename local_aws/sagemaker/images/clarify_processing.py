"""The Clarify processing container's contract for MODEL_EXPLAINABILITY, run in the sandbox with the Clarify image's
environment (`sagemaker-clarify-processing:1.0`).

It reads /opt/ml/processing/input/config/analysis_config.json and the data set under
/opt/ml/processing/input/data, computes Kernel SHAP with the `shap` library (the config's baseline, or
`num_clusters` K-means centres of the data set as Clarify does without one; `num_samples`; `seed`), and writes
/opt/ml/processing/output/analysis.json (`explanations.kernel_shap.label0.global_shap_values`, `expected_value`),
explanations_shap/out.csv (local SHAP values) and report.html. With a baseline analysis.json (`baseline_constraints`)
it writes constraint_violations.json: feature attribution drift is an nDCG of the global SHAP ranking below 0.9.

Clarify calls a shadow endpoint of the model; here the model is served in-process the way the endpoint's image
(sagemaker-xgboost:1.7-1) serves it: rows sent as CSV text, `xgboost-model` loaded pickle first, then XGBoost's own
format, predictions parsed back from CSV. The executor mounts the model at LOCAL_AWS_MODEL_DIR.
"""

from __future__ import annotations

import html
import io
import json
import math
import os
import pickle
import sys
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd

CONFIG = Path("/opt/ml/processing/input/config/analysis_config.json")
DATA = Path("/opt/ml/processing/input/data")
OUTPUT = Path("/opt/ml/processing/output")
NDCG_THRESHOLD = 0.9  # "Feature attribution drift violations": nDCG below 0.9 is a violation
MODEL_FILE = "xgboost-model"


def load_model(model_dir: Path):
    import xgboost

    with tarfile.open(model_dir / "model.tar.gz") as archive:
        raw = archive.extractfile(MODEL_FILE).read()
    try:
        return pickle.loads(raw)  # noqa: S301 - the pipeline's own training output, as the container reads it
    except Exception:  # noqa: BLE001 - not a pickle: XGBoost's own format
        booster = xgboost.Booster()
        booster.load_model(bytearray(raw))
        return booster


def endpoint(booster):
    """predict(rows) through the wire format: CSV text in, one prediction a line out.

    Kernel SHAP sends one batch per explained row (num_samples x baseline rows), as Clarify batches its
    requests to the shadow endpoint. Each batch is predicted in one call on one thread, without a DMatrix:
    building a DMatrix and waking xgboost's thread pool cost about 60 ms a call on a busy 2-core machine,
    more than the prediction itself. The trees and the float32 outputs are the same as through a DMatrix.
    """
    booster.set_param({"nthread": 1})

    def predict(rows: np.ndarray) -> np.ndarray:
        body = "\n".join(",".join(repr(float(v)) for v in row) for row in np.atleast_2d(rows))
        features = np.loadtxt(io.StringIO(body), delimiter=",", ndmin=2)
        answer = "\n".join(str(p) for p in booster.inplace_predict(features))
        return np.loadtxt(io.StringIO(answer), ndmin=1)

    return predict


def read_dataset(config: dict) -> pd.DataFrame:
    if config.get("dataset_type", "text/csv") != "text/csv":
        raise ValueError(f"dataset_type {config.get('dataset_type')}: the local Clarify reads text/csv only")
    files = sorted(p for p in DATA.rglob("*") if p.is_file())
    frame = pd.concat([pd.read_csv(f, header=None) for f in files], ignore_index=True)
    headers = config.get("headers") or [f"column_{i}" for i in range(frame.shape[1])]
    if len(headers) != frame.shape[1]:
        raise ValueError(f"analysis_config headers name {len(headers)} columns, the data set has {frame.shape[1]}")
    frame.columns = headers
    return frame


def baseline_rows(shap_config: dict, features: pd.DataFrame):
    import shap

    baseline = shap_config.get("baseline")
    if isinstance(baseline, list):
        return np.asarray(baseline, dtype=float)
    if isinstance(baseline, str):
        return pd.read_csv(baseline, header=None).to_numpy(dtype=float)
    return shap.kmeans(features.to_numpy(dtype=float), int(shap_config.get("num_clusters") or 1))


def ndcg(baseline: dict[str, float], current: dict[str, float]) -> float:
    """nDCG of the current global SHAP ranking against the baseline's, with the baseline's attributions as gains."""
    ideal = sorted(baseline, key=lambda f: -abs(baseline[f]))
    ranked = sorted(current, key=lambda f: -abs(current[f]))
    gain = lambda order: sum(abs(baseline.get(f, 0.0)) / math.log2(i + 2) for i, f in enumerate(order))  # noqa: E731
    return gain(ranked) / gain(ideal) if gain(ideal) else 1.0


def report(global_values: dict[str, float], expected: float) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(f)}</td><td>{v:.4f}</td></tr>"
        for f, v in sorted(global_values.items(), key=lambda i: -i[1])
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>Analysis Report</title></head><body>"
        f"<h1>Analysis Report: Kernel SHAP</h1><p>Expected value: {expected:.4f}</p>"
        f"<table><tr><th>feature</th><th>mean |SHAP|</th></tr>{rows}</table></body></html>"
    )


def main() -> int:
    import shap

    config = json.loads(CONFIG.read_text())
    shap_config = config.get("methods", {}).get("shap")
    if shap_config is None:
        raise SystemExit("analysis_config has no methods.shap: the local Clarify runs MODEL_EXPLAINABILITY only")
    frame = read_dataset(config)
    label = config.get("label")
    features = frame.drop(columns=[label]) if label in frame.columns else frame
    predict = endpoint(load_model(Path(os.environ["LOCAL_AWS_MODEL_DIR"])))
    np.random.seed(int(shap_config.get("seed") or 0))  # KernelExplainer samples coalitions with numpy's global state
    explainer = shap.KernelExplainer(predict, baseline_rows(shap_config, features))
    values = explainer.shap_values(
        features.to_numpy(dtype=float), nsamples=int(shap_config.get("num_samples") or 100), silent=True
    )
    values = np.asarray(values)
    method = shap_config.get("agg_method", "mean_abs")
    aggregate = {
        "mean_abs": lambda v: np.abs(v).mean(axis=0),
        "median": lambda v: np.median(v, axis=0),
        "mean_sq": lambda v: (v**2).mean(axis=0),
    }[method]
    global_values = {name: float(v) for name, v in zip(features.columns, aggregate(values), strict=True)}
    expected = float(np.ravel(explainer.expected_value)[0])
    analysis = {
        "version": "1.0",
        "explanations": {"kernel_shap": {"label0": {"global_shap_values": global_values, "expected_value": expected}}},
    }
    OUTPUT.mkdir(parents=True, exist_ok=True)
    (OUTPUT / "analysis.json").write_text(json.dumps(analysis, indent=2))
    if shap_config.get("save_local_shap_values", True):
        (OUTPUT / "explanations_shap").mkdir(exist_ok=True)
        pd.DataFrame(values, columns=features.columns).to_csv(OUTPUT / "explanations_shap" / "out.csv", index=False)
    (OUTPUT / "report.html").write_text(report(global_values, expected))
    baseline_file = os.environ.get("baseline_constraints")  # noqa: SIM112 - the name SageMaker gives the container
    if baseline_file:
        baseline = json.loads(Path(baseline_file).read_text())
        base_values = baseline["explanations"]["kernel_shap"]["label0"]["global_shap_values"]
        score = ndcg(base_values, global_values)
        violations = []
        if score < NDCG_THRESHOLD:
            violations.append(
                {
                    "label": "label0",
                    "metric_name": "shap",
                    "constraint_check_type": "feature_attribution_drift_check",
                    "description": f"Feature attribution drift 0.0 < {score:.4f} < {NDCG_THRESHOLD} (nDCG)",
                }
            )
        (OUTPUT / "constraint_violations.json").write_text(
            json.dumps({"version": "1.0", "violations": violations}, indent=2)
        )
    top = sorted(global_values, key=lambda f: -global_values[f])[:3]
    print(f"clarify: Kernel SHAP on {len(features)} rows, top features {', '.join(top)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
