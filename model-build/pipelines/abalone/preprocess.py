"""Preprocess step: validate the raw abalone CSV, one-hot encode sex, split train/validation/test.

Runs unchanged in the SageMaker scikit-learn container and on a laptop: every path is an argument
whose default is the container path. The output CSVs have no header and the label first, as the
built-in XGBoost algorithm expects. Self-contained on purpose: SageMaker uploads this one file.

The same file is the model's feature encoding at inference: the registered package names it (S3 URI and
SHA-256), and the deploy repo's batch inference pipeline runs it with `--mode batch`, which validates and
encodes the rows the same way (the label is optional there) and writes N feature shards instead of splits.
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
# The model's input, in order: what an endpoint and a batch transform receive, and what the data-quality
# baseline describes (Model Monitor maps headerless captured columns to the baseline's names by position).
ENCODED_FEATURES = FEATURES + [f"sex_{value}" for value in SEXES]
SPLITS = (("train", 0.70), ("validation", 0.15), ("test", 0.15))
# Rows of the training split that Clarify explains: Kernel SHAP costs num_samples predictions a row.
EXPLAIN_ROWS = 30  # global importance settles by then; the step stays about 2 s
MAX_REPORTED_ROWS = 5
# Physically possible values. The UCI data gives lengths in mm and weights in grams divided by 200
# (largest: 0.815 and 2.8255); 100 would be a 20 m, 20 kg abalone, so anything above is a unit or
# typing error. Rings are a count (1 to 29 in the UCI data; abalone live about 50 years). Zero is
# allowed: two UCI rows have height 0. XGBoost reads float32, so 1e308 would become inf there.
MAX_MEASUREMENT = 100.0
MAX_RINGS = 200.0


class DataError(ValueError):
    """The input data breaks the schema; the message names the problem and the fix."""


def _rows(index) -> str:
    # File line numbers (1-based, counting a header if any) read better than DataFrame positions.
    lines = [str(i) for i in list(index)[:MAX_REPORTED_ROWS]]
    more = len(index) - len(lines)
    return ", ".join(lines) + (f" and {more} more" if more > 0 else "")


def read_raw(path: str, label_optional: bool = False) -> pd.DataFrame:
    """Read one abalone CSV, with or without a header row, as strings (batch rows may lack the label)."""
    try:
        frame = pd.read_csv(path, header=None, dtype=str, skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path} is empty: expected the abalone columns {', '.join(COLUMNS)}") from None
    header = [str(v).strip().lower() for v in frame.iloc[0]]
    first_line = 1
    if label_optional and frame.shape[1] == len(COLUMNS) - 1:
        frame[len(COLUMNS) - 1] = None  # no label: an empty label column
        if header == COLUMNS[:-1]:
            frame.iloc[0, -1] = LABEL
            header = COLUMNS
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


def validate(frame: pd.DataFrame, source: str = "input", label_optional: bool = False) -> pd.DataFrame:
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
        if len(missing) and not (column == LABEL and label_optional):
            what = "the target is missing" if column == LABEL else "empty values"
            problems.append(f"column {column}: {what} (lines {_rows(missing)})")
        if len(not_numbers):
            problems.append(f"column {column} must be numeric (lines {_rows(not_numbers)})")
        problems += _impossible(column, values, frame.index)
        numeric[column] = values
    if problems:
        raise DataError(f"{source}: " + "; ".join(problems) + ". Fix or drop these rows and run again.")
    clean = pd.DataFrame(numeric)
    clean["sex"] = sex
    return clean


def _impossible(column: str, values: pd.Series, index) -> list[str]:
    """Numbers no abalone can have: not finite, negative, or beyond any real size."""
    finite = np.isfinite(values.to_numpy(dtype=float, na_value=np.nan))
    present = values.notna().to_numpy()
    highest = MAX_RINGS if column == LABEL else MAX_MEASUREMENT
    unit = "a count of rings" if column == LABEL else "mm or grams divided by 200, as in the UCI data"
    checks = (
        (present & ~finite, "is not a finite number (inf)"),
        (finite & (values.to_numpy(dtype=float, na_value=0.0) < 0), f"is negative ({unit})"),
        (finite & (values.to_numpy(dtype=float, na_value=0.0) > highest), f"is above {highest:g} ({unit})"),
    )
    return [f"column {column} {what} (lines {_rows(index[mask])})" for mask, what in checks if mask.any()]


def split_sizes(rows: int) -> list[int]:
    """Rows in each split, in SPLITS order (the last split takes what rounding leaves)."""
    sizes, start = [], 0
    for i, (_, share) in enumerate(SPLITS):
        end = rows if i == len(SPLITS) - 1 else min(rows, start + int(round(share * rows)))
        sizes.append(end - start)
        start = end
    return sizes


def min_rows() -> int:
    """The fewest rows that give every split at least one row."""
    return next(n for n in range(1, 1000) if min(split_sizes(n)) >= 1)


def check_enough_rows(rows: int) -> None:
    if rows < min_rows():
        shares = "/".join(f"{share:.0%}" for _, share in SPLITS)
        names = "/".join(name for name, _ in SPLITS)
        raise DataError(
            f"{rows} data rows are too few for the {names} split ({shares}): at least {min_rows()} are needed"
            " so that each part gets a row, and far more for a useful model (the UCI data set has 4177)"
        )


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
    for (name, _), size in zip(SPLITS, split_sizes(len(shuffled)), strict=True):
        parts[name] = shuffled.iloc[start : start + size]
        start += size
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


def shard_bounds(rows: int, shards: int) -> list[tuple[int, int]]:
    """Contiguous row ranges, one per shard, in input order (never an empty shard)."""
    count = max(1, min(shards, rows))
    edges = [round(i * rows / count) for i in range(count + 1)]
    return list(zip(edges[:-1], edges[1:], strict=True))


def batch(input_dir: str, output_dir: str, shards: int) -> int:
    """Inference: the same validation and encoding, features only, in N shards for a sharded batch transform.

    features/shard-NNNNN.csv: the encoded features (no label, no header), row order kept across shards;
    drift/drift.csv: the same encoded features with their header, the schema of the data-quality baseline;
    explain/explain.csv: the first EXPLAIN_ROWS encoded rows, for the attribution drift check.
    """
    frames = [
        validate(read_raw(path, label_optional=True), source=os.path.basename(path), label_optional=True)
        for path in input_files(input_dir)
    ]
    clean = pd.concat(frames, ignore_index=True)
    features = encode(clean).drop(columns=[LABEL])
    folder = os.path.join(output_dir, "features")
    os.makedirs(folder, exist_ok=True)
    bounds = shard_bounds(len(features), shards)
    for number, (start, end) in enumerate(bounds):
        features.iloc[start:end].to_csv(os.path.join(folder, f"shard-{number:05d}.csv"), header=False, index=False)
    write_csv(features, output_dir, "drift", header=True)
    os.makedirs(os.path.join(output_dir, "explain"), exist_ok=True)
    features.iloc[:EXPLAIN_ROWS].to_csv(os.path.join(output_dir, "explain", "explain.csv"), header=False, index=False)
    print(f"Preprocess (batch): {len(features)} rows in {len(bounds)} shards")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input-dir", default="/opt/ml/processing/input/data")
    parser.add_argument("--output-dir", default="/opt/ml/processing")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--mode", choices=("train", "batch"), default="train")
    parser.add_argument("--shards", type=int, default=1, help="batch mode: number of feature shards")
    args = parser.parse_args(argv)
    if args.mode == "batch":
        try:
            return batch(args.input_dir, args.output_dir, args.shards)
        except DataError as error:
            print(f"Preprocess failed: {error}", file=sys.stderr)
            return 1
    try:
        frames = [validate(read_raw(path), source=os.path.basename(path)) for path in input_files(args.input_dir)]
        check_enough_rows(sum(len(frame) for frame in frames))
    except DataError as error:
        print(f"Preprocess failed: {error}", file=sys.stderr)
        return 1
    clean = pd.concat(frames, ignore_index=True)
    parts = split(encode(clean), args.seed)
    for name, part in parts.items():
        folder = os.path.join(args.output_dir, name)
        os.makedirs(folder, exist_ok=True)
        part.to_csv(os.path.join(folder, f"{name}.csv"), header=False, index=False)
    # The data-quality baseline: the training rows as the model receives them at the endpoint and in a batch
    # transform (the encoded features in test.csv's order, no label), with a header that names the columns.
    write_csv(parts["train"].drop(columns=[LABEL]), args.output_dir, "baseline", header=True)
    write_csv(parts["train"].iloc[:EXPLAIN_ROWS], args.output_dir, "explain", header=False)
    print("Preprocess: " + ", ".join(f"{name} {len(part)} rows" for name, part in parts.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
