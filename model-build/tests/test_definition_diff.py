"""`python -m pipelines.definition_diff` shows a reviewer what SageMaker will run differently."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def git(folder: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=folder, check=True, capture_output=True)


def test_a_changed_default_shows_as_a_definition_diff(tmp_path):
    repo = tmp_path / "model-build"
    shutil.copytree(REPO, repo, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache", "build"))
    git(repo, "init", "-q", "-b", "main")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@example.com", "add", "-A")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "base")
    pipeline = repo / "pipelines" / "abalone" / "pipeline.py"
    pipeline.write_text(
        pipeline.read_text().replace(
            'ParameterFloat("MseThreshold", default_value=6.0)', 'ParameterFloat("MseThreshold", default_value=5.0)'
        )
    )

    result = subprocess.run(
        [sys.executable, "-m", "pipelines.definition_diff", "--base", "main"],
        cwd=repo,
        env={**os.environ, "PYTHONPATH": str(repo)},
        capture_output=True,
        text=True,
        check=True,
    )
    changed = [line for line in result.stdout.splitlines() if line[:1] in "+-" and not line.startswith(("+++", "---"))]
    assert changed == ['-      "DefaultValue": 6.0', '+      "DefaultValue": 5.0'], result.stdout
    subprocess.run(["git", "worktree", "prune"], cwd=repo, check=True)
    assert "base" not in subprocess.run(["git", "worktree", "list"], cwd=repo, capture_output=True, text=True).stdout


def test_a_base_whose_pipeline_does_not_build_is_reported_without_blocking(tmp_path):
    repo = tmp_path / "model-build"
    shutil.copytree(REPO, repo, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache", "build"))
    pipeline = repo / "pipelines" / "abalone" / "pipeline.py"
    original = pipeline.read_text()
    pipeline.write_text(original + '\nraise RuntimeError("the base is broken")\n')
    git(repo, "init", "-q", "-b", "main")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@example.com", "add", "-A")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "broken base")
    pipeline.write_text(original)  # this branch fixes it

    result = subprocess.run(
        [sys.executable, "-m", "pipelines.definition_diff", "--base", "main"],
        cwd=repo,
        env={**os.environ, "PYTHONPATH": str(repo)},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "No definition diff: main's pipeline does not build there" in result.stdout
    assert "the base is broken" in result.stdout
