"""`python -m pipelines.definition_diff` shows a reviewer what SageMaker will run differently."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PIPELINE = Path("pipelines") / "abalone" / "pipeline.py"


def git(folder: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args], cwd=folder, check=True)


def repo_with_base(tmp_path: Path, base_pipeline: str) -> Path:
    """A copy of this repo whose `main` commit holds `base_pipeline`; the work tree holds today's pipeline."""
    repo = tmp_path / "model-build"
    shutil.copytree(REPO, repo, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache", "build"))
    (repo / PIPELINE).write_text(base_pipeline)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "base")
    (repo / PIPELINE).write_text((REPO / PIPELINE).read_text())
    return repo


def definition_diff(repo: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pipelines.definition_diff", "--base", "main"],
        cwd=repo,
        env={**os.environ, "PYTHONPATH": str(repo)},
        capture_output=True,
        text=True,
    )


def test_a_changed_default_shows_as_a_definition_diff(tmp_path):
    today = (REPO / PIPELINE).read_text()
    threshold = 'ParameterFloat("MseThreshold", default_value=6.0)'
    assert threshold in today
    repo = repo_with_base(tmp_path, today.replace(threshold, threshold.replace("6.0", "5.0")))

    result = definition_diff(repo)
    assert result.returncode == 0, result.stderr
    changed = [line for line in result.stdout.splitlines() if line[:1] in "+-" and not line.startswith(("+++", "---"))]
    assert changed == ['-      "DefaultValue": 5.0', '+      "DefaultValue": 6.0'], result.stdout
    worktrees = subprocess.run(["git", "worktree", "list"], cwd=repo, capture_output=True, text=True, check=True)
    assert len(worktrees.stdout.splitlines()) == 1, "the base's temporary worktree is removed"


def test_a_base_whose_pipeline_does_not_build_is_reported_without_blocking(tmp_path):
    # Broken before the SDK import (the first `from pipelines import sdk_env`): what fails is the same, minus 4 s.
    today = (REPO / PIPELINE).read_text()
    first_import = "\nfrom pipelines import sdk_env\n"
    assert first_import in today
    broken = today.replace(first_import, '\nraise RuntimeError("the base is broken")' + first_import, 1)
    result = definition_diff(repo_with_base(tmp_path, broken))
    assert result.returncode == 0, result.stderr
    assert "No definition diff: main's pipeline does not build there" in result.stdout
    assert "the base is broken" in result.stdout
