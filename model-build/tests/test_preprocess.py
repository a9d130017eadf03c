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


def test_the_data_quality_baseline_is_the_model_input_of_the_training_rows(abalone_csv, tmp_path):
    # What an endpoint captures and a batch transform receives: test.csv's feature columns, no label. Model
    # Monitor names headerless captured columns by the baseline's order, so the header must be that order.
    splits = run_preprocess(abalone_csv, tmp_path)
    baseline = pd.read_csv(tmp_path / "baseline" / "baseline.csv")

    assert list(baseline.columns) == preprocess.ENCODED_FEATURES
    assert "rings" not in baseline.columns and "sex" not in baseline.columns
    assert baseline.to_numpy() == pytest.approx(splits["train"].iloc[:, 1:].to_numpy())


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


@pytest.mark.parametrize(
    ("bad_row", "expected"),
    [
        ("M,inf,0.3,0.1,0.5,0.2,0.1,0.1,9", "column length is not a finite number (inf) (lines 3)"),
        ("M,0.4,-inf,0.1,0.5,0.2,0.1,0.1,9", "column diameter is not a finite number (inf) (lines 3)"),
        ("M,0.4,0.3,0.1,1e308,0.2,0.1,0.1,9", "column whole_weight is above 100"),
        ("M,0.4,0.3,0.1,0.5,0.2,0.1,0.1,-3", "column rings is negative (a count of rings) (lines 3)"),
        ("M,0.4,0.3,0.1,0.5,-0.2,0.1,0.1,9", "column shucked_weight is negative"),
        ("M,0.4,0.3,0.1,0.5,0.2,0.1,0.1,1e6", "column rings is above 200"),
    ],
    ids=["inf", "minus-inf", "1e308", "negative-rings", "negative-weight", "absurd-rings"],
)
def test_non_finite_and_impossible_values_are_refused_naming_their_lines(tmp_path, capsys, bad_row, expected):
    data = tmp_path / "abalone.csv"
    data.write_text(f"{HEADER}\n{GOOD_ROW}\n{bad_row}\n" + f"{GOOD_ROW}\n" * 10)

    assert preprocess.main(["--input-dir", str(data), "--output-dir", str(tmp_path / "out")]) == 1

    error = capsys.readouterr().err
    assert expected in error and "Fix or drop these rows" in error
    assert not (tmp_path / "out").exists()


def test_many_bad_rows_name_the_first_few_and_count_the_rest(tmp_path, capsys):
    data = tmp_path / "abalone.csv"
    data.write_text(f"{HEADER}\n" + "M,0.4,0.3,0.1,-0.5,0.2,0.1,0.1,9\n" * 12)
    assert preprocess.main(["--input-dir", str(data), "--output-dir", str(tmp_path / "out")]) == 1
    error = capsys.readouterr().err
    assert "column whole_weight is negative" in error and "(lines 2, 3, 4, 5, 6 and 7 more)" in error


def test_the_real_data_has_zero_heights_and_passes(abalone_csv, tmp_path):
    # Two UCI rows have height 0: zero is possible, only negative values are refused.
    assert (pd.read_csv(abalone_csv)["height"] == 0).sum() == 2
    assert {len(part) for part in run_preprocess(abalone_csv, tmp_path / "out").values()} == {2924, 627, 626}


@pytest.mark.parametrize("rows", [1, 3, 5])
def test_too_few_rows_for_the_split_say_how_many_are_needed(tmp_path, capsys, rows):
    data = tmp_path / "abalone.csv"
    data.write_text(f"{HEADER}\n" + f"{GOOD_ROW}\n" * rows)
    assert preprocess.main(["--input-dir", str(data), "--output-dir", str(tmp_path / "out")]) == 1
    error = capsys.readouterr().err
    assert f"{rows} data rows are too few for the train/validation/test split" in error
    assert "at least 6 are needed" in error


def test_six_rows_give_every_split_a_row(tmp_path):
    data = tmp_path / "input" / "abalone.csv"
    data.parent.mkdir()
    data.write_text(f"{HEADER}\n" + f"{GOOD_ROW}\n" * 6)
    assert [len(part) for part in run_preprocess(data.parent, tmp_path / "out").values()] == [4, 1, 1]
