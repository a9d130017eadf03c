"""The preprocess step script on the real abalone data and on broken inputs."""

from __future__ import annotations

import pandas as pd
import pytest

from pipelines.abalone import preprocess


def run_preprocess(input_path, output_dir, seed=42) -> dict[str, pd.DataFrame]:
    assert preprocess.main(["--input-dir", str(input_path), "--output-dir", str(output_dir), "--seed", str(seed)]) == 0
    names = ("train", "validation", "test")
    return {name: pd.read_csv(output_dir / name / f"{name}.csv", header=None) for name in names}


def test_splits_have_the_planned_sizes_label_first_and_no_shared_rows(abalone_csv, tmp_path):
    raw = pd.read_csv(abalone_csv)
    splits = run_preprocess(abalone_csv, tmp_path)

    sizes = {name: len(frame) for name, frame in splits.items()}
    assert sizes == {"train": 2924, "validation": 627, "test": 626}
    assert sum(sizes.values()) == len(raw)
    for frame in splits.values():
        assert frame.shape[1] == 1 + 7 + 3  # label, numeric features, one-hot sex
        assert frame[0].between(1, 29).all() and (frame[0] % 1 == 0).all()  # rings, first
        assert (frame[[8, 9, 10]].sum(axis=1) == 1).all()  # exactly one sex column set

    # Rows are identified by position in the shuffle, so duplicates in the data cannot hide an overlap.
    encoded = preprocess.encode(preprocess.validate(preprocess.read_raw(str(abalone_csv))))
    parts = preprocess.split(encoded, seed=42)
    indexes = [set(part.index) for part in parts.values()]
    assert sum(len(i) for i in indexes) == len(set().union(*indexes)) == len(raw)
    # And the files hold exactly those rows, label first.
    for name, part in parts.items():
        assert splits[name].to_numpy() == pytest.approx(part.to_numpy())


def test_header_row_is_optional_and_the_split_is_deterministic(abalone_csv, tmp_path):
    headerless = tmp_path / "abalone.data"
    headerless.write_text("".join(abalone_csv.read_text().splitlines(keepends=True)[1:]))
    with_header = run_preprocess(abalone_csv, tmp_path / "a")
    without_header = run_preprocess(headerless, tmp_path / "b")
    again = run_preprocess(abalone_csv, tmp_path / "c")
    other_seed = run_preprocess(abalone_csv, tmp_path / "d", seed=7)
    for name in with_header:
        pd.testing.assert_frame_equal(with_header[name], without_header[name])
        pd.testing.assert_frame_equal(with_header[name], again[name])
    assert not with_header["test"].equals(other_seed["test"])


GOOD_ROW = "M,0.455,0.365,0.095,0.514,0.2245,0.101,0.15,15"
HEADER = ",".join(preprocess.COLUMNS)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("", "is empty"),
        (
            "sex,length,diameter,height,whole_weight,shucked_weight,viscera_weight,rings\n"
            "M,0.455,0.365,0.095,0.514,0.2245,0.101,15\n",
            "missing columns: shell_weight",
        ),
        (f"{HEADER}\n{GOOD_ROW}\nF,long,0.4,0.1,0.5,0.2,0.1,0.1,9\n", "column length must be numeric (lines 3)"),
        (f"{GOOD_ROW}\nX,0.4,0.3,0.1,0.5,0.2,0.1,0.1,9\n", "column sex must be one of F, I, M (lines 2)"),
        (f"{GOOD_ROW}\nF,0.4,0.3,0.1,0.5,0.2,0.1,0.1,\n", "column rings: the target is missing (lines 2)"),
        (f"{GOOD_ROW}\nF,0.4,0.3\n", "column"),
        (f"{HEADER}\n", "no data rows"),
    ],
    ids=["empty", "missing-column", "text-in-numeric", "unknown-sex", "missing-target", "short-row", "header-only"],
)
def test_broken_csv_fails_with_a_message_naming_the_problem(tmp_path, capsys, content, expected):
    data = tmp_path / "input" / "abalone.csv"
    data.parent.mkdir()
    data.write_text(content)
    assert preprocess.main(["--input-dir", str(data.parent), "--output-dir", str(tmp_path / "out")]) == 1
    error = capsys.readouterr().err
    assert "Preprocess failed" in error and expected in error
    assert not (tmp_path / "out").exists(), "nothing is written when the input is bad"


def test_missing_input_folder_content_is_reported(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert preprocess.main(["--input-dir", str(tmp_path / "empty"), "--output-dir", str(tmp_path / "out")]) == 1
    assert "no input file" in capsys.readouterr().err
