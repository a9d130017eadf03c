"""project_tools/package_lambdas.py: reproducible archives, nothing dropped, Lambda zips that import on their own."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import zipfile

import pytest

from project_tools import package_lambdas
from project_tools.package_lambdas import PackagingError, lambda_archive, seed_archive

GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@example.test"]


def make_repo(path, files: dict[str, bytes]) -> None:
    for name, content in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_bytes(content)
    subprocess.run([*GIT, "-C", str(path), "init", "-q"], check=True)
    subprocess.run([*GIT, "-C", str(path), "add", "."], check=True)
    subprocess.run([*GIT, "-C", str(path), "commit", "-qm", "x"], check=True)


def test_seed_archive_holds_exactly_what_git_tracks_and_is_reproducible(tmp_path):
    make_repo(tmp_path, {"model-build/a.py": b"a", "model-build/sub/b.bin": b"\x00\xff", "model-deploy/c": b"c"})
    (tmp_path / "model-build" / "untracked.txt").write_text("not committed, not seeded")

    first = seed_archive("model-build", tmp_path)
    os.utime(tmp_path / "model-build" / "a.py", (1_900_000_000, 1_900_000_000))  # a newer mtime changes nothing
    second = seed_archive("model-build", tmp_path)

    assert first == second
    archive = zipfile.ZipFile(io.BytesIO(first))
    assert archive.namelist() == ["a.py", "sub/b.bin"]
    assert archive.read("sub/b.bin") == b"\x00\xff"
    assert {info.date_time for info in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}


def test_the_real_seed_folders_are_packaged_whole():
    for folder in ("model-build", "model-deploy"):
        tracked = subprocess.run(
            ["git", "-C", str(package_lambdas.ROOT), "ls-files", "--", folder], capture_output=True, text=True
        ).stdout.split()
        if not tracked:
            continue  # not committed yet in this checkout
        names = zipfile.ZipFile(io.BytesIO(seed_archive(folder))).namelist()
        assert names == sorted(path.removeprefix(folder + "/") for path in tracked)


def test_a_symlink_is_refused_rather_than_dropped(tmp_path):
    make_repo(tmp_path, {"model-build/a.py": b"a"})
    (tmp_path / "model-build" / "link").symlink_to("a.py")
    subprocess.run([*GIT, "-C", str(tmp_path), "add", "."], check=True)

    with pytest.raises(PackagingError, match="model-build/link is a symlink"):
        seed_archive("model-build", tmp_path)


def test_a_tracked_file_missing_from_the_work_tree_is_named(tmp_path):
    make_repo(tmp_path, {"model-build/a.py": b"a", "model-build/b.py": b"b"})
    (tmp_path / "model-build" / "b.py").unlink()

    with pytest.raises(PackagingError, match="model-build/b.py is tracked by git but missing"):
        seed_archive("model-build", tmp_path)


def test_lambda_zip_is_reproducible_and_imports_from_its_own_dependencies(tmp_path):
    first = lambda_archive("model_trigger")
    assert lambda_archive("model_trigger") == first

    zipfile.ZipFile(io.BytesIO(first)).extractall(tmp_path)
    # Run from the unzipped folder: `python -c` puts its working folder first on the import path, as the
    # Lambda runtime puts the task root first.
    probe = (
        "import sys; from lambdas.model_trigger import handler; import gitlab, pydantic_core;"
        "assert gitlab.__file__.startswith(sys.argv[1]) and pydantic_core.__file__.startswith(sys.argv[1]);"
        "print(handler.lambda_handler.__name__)"
    )
    result = subprocess.run([sys.executable, "-c", probe, str(tmp_path)], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "lambda_handler"
    assert not (tmp_path / "lambdas" / "model_trigger" / "requirements.txt").exists()


def test_only_installer_leftovers_are_left_out_of_a_lambda_zip(tmp_path):
    for name in ("bin/gitlab", ".lock", "pkg/__init__.py", "pkg/__pycache__/x.cpython-311.pyc", "pkg/bin/tool.json"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")

    names = [name for name, _, _ in package_lambdas.tree_entries(tmp_path)]

    assert names == ["pkg/__init__.py", "pkg/bin/tool.json"]  # a package's own bin/ folder is kept
