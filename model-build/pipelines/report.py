"""The build's report: charts people can look at, made from the files the pipeline wrote.

    evaluation.json      (Evaluate)           -> the metrics table
    test.csv.out         (TransformTest)      -> predicted vs actual, residuals by ring count
    analysis.json        (ModelExplainability)-> SHAP global importance
    comparison.json      (ChampionGate)       -> each metric new vs champion, both label distributions

Each chart is a PNG, and report.html holds them all inlined (base64), so the one file opens anywhere: a GitLab
job artifact, an e-mail attachment. A part whose file is missing (a failed step) is left out and the page says so.
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display in CI

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

REPORT = "report.html"


def _save(figure, folder: Path, name: str) -> Path:
    path = folder / name
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def evaluation_charts(predictions: np.ndarray, folder: Path) -> list[Path]:
    """predictions: rows of (actual rings, predicted rings), as the batch transform wrote them."""
    actual, predicted = predictions[:, 0], predictions[:, 1]
    figure, axis = plt.subplots(figsize=(5, 5))
    axis.scatter(actual, predicted, s=8, alpha=0.5)
    low, high = float(min(actual.min(), predicted.min())), float(max(actual.max(), predicted.max()))
    axis.plot([low, high], [low, high], color="grey", linewidth=1)
    axis.set(xlabel="actual rings", ylabel="predicted rings", title="Predicted vs actual (test split)")
    scatter = _save(figure, folder, "predicted_vs_actual.png")

    residuals = predicted - actual
    rings = np.unique(actual)
    figure, axis = plt.subplots(figsize=(8, 4))
    axis.boxplot([residuals[actual == r] for r in rings], positions=rings, widths=0.6)
    axis.axhline(0, color="grey", linewidth=1)
    axis.set(xlabel="actual rings", ylabel="predicted - actual", title="Residuals by ring count")
    return [scatter, _save(figure, folder, "residuals_by_rings.png")]


def shap_chart(analysis: dict, folder: Path) -> Path:
    values = analysis["explanations"]["kernel_shap"]["label0"]["global_shap_values"]
    ordered = sorted(values, key=values.get)
    figure, axis = plt.subplots(figsize=(6, 4))
    axis.barh(ordered, [values[f] for f in ordered])
    axis.set(xlabel="mean |SHAP| (rings)", title="Global feature importance (Kernel SHAP)")
    return _save(figure, folder, "shap_importance.png")


def comparison_charts(comparison: dict, folder: Path) -> list[Path]:
    metrics = comparison["metrics"]
    names = list(metrics)
    figure, axis = plt.subplots(figsize=(6, 4))
    positions = np.arange(len(names))
    axis.bar(positions - 0.2, [metrics[n]["champion"] for n in names], 0.4, label="champion")
    axis.bar(positions + 0.2, [metrics[n]["new"] for n in names], 0.4, label="new model")
    axis.set_xticks(positions, names)
    axis.set(title="Test-split metrics: new vs champion")
    axis.legend()
    bars = _save(figure, folder, "champion_metrics.png")

    label = comparison["label_distribution"]
    figure, axis = plt.subplots(figsize=(7, 4))
    for key, name in (("champion_buckets", "champion's test split"), ("new_buckets", "new test split")):
        buckets = label[key]
        total = sum(b["count"] for b in buckets) or 1.0
        centres = [(b["lower_bound"] + b["upper_bound"]) / 2 for b in buckets]
        widths = [b["upper_bound"] - b["lower_bound"] for b in buckets]
        axis.bar(centres, [b["count"] / total for b in buckets], width=widths, alpha=0.5, label=name)
    axis.set(xlabel="rings", ylabel="share of rows", title=f"Label distribution (shift {label['distance']:.3f})")
    axis.legend()
    return [bars, _save(figure, folder, "label_distributions.png")]


def _image(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img alt="{html.escape(path.stem)}" src="data:image/png;base64,{data}">'


def _table(rows: list[list[str]]) -> str:
    head, *body = rows
    cells = lambda tag, row: "".join(f"<{tag}>{html.escape(str(c))}</{tag}>" for c in row)  # noqa: E731
    return f"<table><tr>{cells('th', head)}</tr>" + "".join(f"<tr>{cells('td', r)}</tr>" for r in body) + "</table>"


def comparison_rows(comparison: dict) -> list[list[str]]:
    """The champion comparison as table rows (also what approve-model prints)."""
    rows = [["check", "new", "champion", "bound", "result"]]
    for name, m in comparison.get("metrics", {}).items():
        rows.append([name, f"{m['new']:.4f}", f"{m['champion']:.4f}", f"{m['rule']} {m['bound']:.4f}", _ok(m)])
    if "label_distribution" in comparison:
        label = comparison["label_distribution"]
        rows.append(["label shift (L-inf)", f"{label['distance']:.4f}", "", f"at most {label['bound']:g}", _ok(label)])
    if "training_size" in comparison:
        size = comparison["training_size"]
        ratio = f"ratio {size['ratio']:.3f} within x{size['bound']:g}"
        rows.append(["training rows", str(size["new"]), str(size["champion"]), ratio, _ok(size)])
    return rows


def _ok(check: dict) -> str:
    return "ok" if check["passed"] else "FAILED"


def build(folder: Path, evaluation=None, predictions=None, analysis=None, comparison=None, title="") -> Path:
    """Write the PNGs and report.html into `folder`; returns report.html's path."""
    folder.mkdir(parents=True, exist_ok=True)
    parts = [f"<h1>{html.escape(title or 'Model build report')}</h1>"]

    parts.append("<h2>Evaluation (test split)</h2>")
    if evaluation:
        metrics = evaluation["regression_metrics"]
        rows = [["metric", "value"]] + [[n, f"{m['value']:.4f}"] for n, m in metrics.items()]
        parts.append(_table(rows + [["test rows", str(evaluation.get("test_rows", ""))]]))
    if predictions is not None:
        parts += [_image(p) for p in evaluation_charts(predictions, folder)]
    if not evaluation and predictions is None:
        parts.append("<p>No evaluation: the Evaluate or TransformTest step did not run.</p>")

    parts.append("<h2>Explainability (SHAP)</h2>")
    parts.append(_image(shap_chart(analysis, folder)) if analysis else "<p>No Clarify analysis.json.</p>")

    parts.append("<h2>Champion comparison</h2>")
    if comparison is None:
        parts.append("<p>The champion gate did not run.</p>")
    else:
        parts.append(f"<p>{html.escape(comparison['message'])}</p>")
        if comparison.get("metrics"):
            parts.append(_table(comparison_rows(comparison)))
            parts += [_image(p) for p in comparison_charts(comparison, folder)]
    style = "body{font-family:sans-serif;max-width:60em;margin:auto}td,th{padding:2px 8px}img{max-width:100%}"
    page = f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>{style}</style>"
    page += f"</head><body>{''.join(parts)}</body></html>"
    path = folder / REPORT
    path.write_text(page)
    return path


def load_predictions(text: str) -> np.ndarray:
    """The batch transform's output lines, `rings,prediction`."""
    return np.loadtxt(io.StringIO(text), delimiter=",", ndmin=2)


def load_json(text: str | None):
    return json.loads(text) if text else None
