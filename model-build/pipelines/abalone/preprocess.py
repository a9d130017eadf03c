"""Preprocess step: validate the raw abalone CSV, one-hot encode sex, split train/validation/test.

Runs unchanged in the SageMaker scikit-learn container and on a laptop: every path is an argument
whose default is the container path. The output CSVs have no header and the label first, as the
built-in XGBoost algorithm expects. Self-contained on purpose: SageMaker uploads this one file.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np
import pandas as pd

FEATURES = [
    "length",
    "diameter",
    "height",
    "whole_weight",
    "shucked_weight",
    "viscera_weight",
    "shell_weight",
]
LABEL = "rings"
COLUMNS = ["sex"] + FEATURES + [LABEL]
SEXES = ["F", "I", "M"]  # fixed order: the encoded columns never depend on the data
SPLITS = (("train", 0.70), ("validation", 0.15), ("test", 0.15))
# Rows of the training split that Clarify explains: Kernel SHAP costs num_samples predictions a row.
EXPLAIN_ROWS = 50
MAX_REPORTED_ROWS = 5


class DataError(ValueError):
    """The input data breaks the schema; the message names the problem and the fix."""


def _rows(index) -> str:
    # File line numbers (1-based, counting a header if any) read better than DataFrame positions.
    lines = [str(i) for i in list(index)[:MAX_REPORTED_ROWS]]
    more = len(index) - len(lines)
    return ", ".join(lines) + (f" and {more} more" if more > 0 else "")


def read_raw(path: str) -> pd.DataFrame:
    """Read one abalone CSV, with or without a header row, as strings."""
    try:
        frame = pd.read_csv(path, header=None, dtype=str, skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path} is empty: expected the abalone columns {', '.join(COLUMNS)}") from None
    header = [str(v).strip().lower() for v in frame.iloc[0]]
    first_line = 1
    if header == COLUMNS:
        frame = frame.iloc[1:]
        first_line = 2
    elif any(h in COLUMNS for h in header):
        missing = [c for c in COLUMNS if c not in header]
        raise DataError(
            f"{path}: header {header} does not match the abalone schema; "
            f"missing columns: {', '.join(missing) or 'none'}, expected order: {', '.join(COLUMNS)}"
        )
    if frame.shape[1] != len(COLUMNS):
        raise DataError(f"{path}: found {frame.shape[1]} columns, expected {len(COLUMNS)} ({', '.join(COLUMNS)})")
    if frame.empty:
        raise DataError(f"{path} has a header but no data rows")
    frame.columns = COLUMNS
    frame.index = range(first_line, first_line + len(frame))
    return frame


def validate(frame: pd.DataFrame, source: str = "input") -> pd.DataFrame:
    """Check types and values; return numeric features and label. Raises DataError naming the rows."""
    problems = []
    sex = frame["sex"].str.strip().str.upper()
    bad_sex = frame.index[~sex.isin(SEXES)]
    if len(bad_sex):
        problems.append(f"column sex must be one of {', '.join(SEXES)} (lines {_rows(bad_sex)})")
    numeric = {}
    for column in FEATURES + [LABEL]:
        values = pd.to_numeric(frame[column], errors="coerce")
        missing = frame.index[frame[column].isna()]
        not_numbers = frame.index[values.isna() & frame[column].notna()]
        if len(missing):
            what = "the target is missing" if column == LABEL else "empty values"
            problems.append(f"column {column}: {what} (lines {_rows(missing)})")
        if len(not_numbers):
            problems.append(f"column {column} must be numeric (lines {_rows(not_numbers)})")
        numeric[column] = values
    if problems:
        raise DataError(f"{source}: " + "; ".join(problems) + ". Fix or drop these rows and run again.")
    clean = pd.DataFrame(numeric)
    clean["sex"] = sex
    return clean


def encode(clean: pd.DataFrame) -> pd.DataFrame:
    """Label first, then the numeric features, then one column per sex (0/1)."""
    encoded = clean[[LABEL] + FEATURES].astype(float)
    for value in SEXES:
        encoded[f"sex_{value}"] = (clean["sex"] == value).astype(float)
    return encoded


def split(encoded: pd.DataFrame, seed: int) -> dict[str, pd.DataFrame]:
    """Deterministic shuffled split: the same data and seed give the same rows in each split."""
    order = np.random.RandomState(seed).permutation(len(encoded))
    shuffled = encoded.iloc[order]
    parts, start = {}, 0
    for i, (name, share) in enumerate(SPLITS):
        end = len(shuffled) if i == len(SPLITS) - 1 else start + int(round(share * len(shuffled)))
        parts[name] = shuffled.iloc[start:end]
        start = end
    return parts


def input_files(input_dir: str) -> list[str]:
    if os.path.isfile(input_dir):
        return [input_dir]
    files = sorted(
        os.path.join(root, name) for root, _, names in os.walk(input_dir) for name in names if not name.startswith(".")
    )
    if not files:
        raise DataError(f"no input file under {input_dir}: point InputDataUrl at the abalone CSV")
    return files


def write_csv(frame: pd.DataFrame, output_dir: str, name: str, header: bool) -> None:
    folder = os.path.join(output_dir, name)
    os.makedirs(folder, exist_ok=True)
    frame.to_csv(os.path.join(folder, f"{name}.csv"), header=header, index=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input-dir", default="/opt/ml/processing/input/data")
    parser.add_argument("--output-dir", default="/opt/ml/processing")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    try:
        frames = [validate(read_raw(path), source=os.path.basename(path)) for path in input_files(args.input_dir)]
    except DataError as error:
        print(f"Preprocess failed: {error}", file=sys.stderr)
        return 1
    clean = pd.concat(frames, ignore_index=True)
    parts = split(encode(clean), args.seed)
    for name, part in parts.items():
        folder = os.path.join(args.output_dir, name)
        os.makedirs(folder, exist_ok=True)
        part.to_csv(os.path.join(folder, f"{name}.csv"), header=False, index=False)
    # The data-quality baseline: the training rows in the raw schema, with a header (sex stays a category).
    write_csv(clean.loc[parts["train"].index, COLUMNS], args.output_dir, "baseline", header=True)
    write_csv(parts["train"].iloc[:EXPLAIN_ROWS], args.output_dir, "explain", header=False)
    print("Preprocess: " + ", ".join(f"{name} {len(part)} rows" for name, part in parts.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
