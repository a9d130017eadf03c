"""Fixtures for the CI tests: throwaway git repos holding the real CI files, and gitlab-ci-local's verdicts.

gitlab-ci-local reads git for the branch, the default branch (origin/HEAD) and `rules:changes` (a diff
against origin/<default>), so each repo here has a bare `origin` it was pushed to, and the scenario's
change is committed on top without being pushed, as a push event sees it.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from local_gitlab import ci_runner as ci_local

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]

CHILD_FILES = ("model-build/.gitlab-ci.yml", "model-deploy/.gitlab-ci.yml")
CI_FILES = (".gitlab-ci.yml", *CHILD_FILES)

needs_gitlab_ci_local = pytest.mark.skipif(
    not ci_local.GITLAB_CI_LOCAL.exists() or shutil.which("rsync") is None,
    reason="gitlab-ci-local or rsync is not installed: `make gitlab-ci-local` installs both",
)


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout


def make_repo(path: Path, files: dict[str, str]) -> Path:
    """A git repo at `path` with `files` committed on main and pushed to a bare origin (origin/HEAD set)."""
    origin = path.with_name(path.name + "-origin.git")
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(origin)], check=True)
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "user.name", "CI Test")
    git(path, "config", "user.email", "ci-test@example.com")
    git(path, "config", "commit.gpgsign", "false")
    commit(path, files, "seed")
    git(path, "remote", "add", "origin", str(origin))
    git(path, "push", "-q", "-u", "origin", "main")
    git(path, "remote", "set-head", "origin", "main")
    return path


def commit(repo: Path, files: dict[str, str], message: str) -> None:
    for name, text in files.items():
        target = repo / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)


def monorepo_files() -> dict[str, str]:
    """The real CI files in the monorepo layout, with a file in each part for changes to touch."""
    files = {name: (REPO_ROOT / name).read_text(encoding="utf-8") for name in CI_FILES}
    files |= {"README.md": "monorepo\n", "model-build/pipelines/pipeline.py": "# pipeline\n"}
    files |= {"model-deploy/deploy/__init__.py": "# deploy\n"}
    return files


def standalone_files(child: str) -> dict[str, str]:
    """A seeded standalone repo: the child folder's CI file is the root CI file."""
    return {".gitlab-ci.yml": (REPO_ROOT / child / ".gitlab-ci.yml").read_text(encoding="utf-8"), "README.md": "x\n"}


@pytest.fixture(scope="session")
def repos(tmp_path_factory) -> dict[str, Path]:
    """The scenario repos, made once: each is at one commit ahead of its origin."""
    root = tmp_path_factory.mktemp("ci-repos")
    made = {
        "build-change": make_repo(root / "build-change", monorepo_files()),
        "readme-change": make_repo(root / "readme-change", monorepo_files()),
        "model-build": make_repo(root / "model-build", standalone_files("model-build")),
        "model-deploy": make_repo(root / "model-deploy", standalone_files("model-deploy")),
    }
    commit(made["build-change"], {"model-build/pipelines/pipeline.py": "# a new step\n"}, "change the pipeline")
    commit(made["readme-change"], {"README.md": "docs only\n"}, "change the docs")
    return made


@pytest.fixture(scope="session")
def list_jobs(tmp_path_factory):
    """list_jobs(repo, ci_file=..., **variables) -> {job: PlannedJob} that would run, or None (no pipeline)."""
    state = tmp_path_factory.mktemp("gitlab-ci-local-state")

    def listed(repo: Path, ci_file: str = ".gitlab-ci.yml", **variables: str) -> dict | None:
        plan = ci_local.list_jobs(
            repo, ci_local.pipeline_variables(variables, repo), ci_file=ci_file, state=state / repo.name
        )
        return None if plan is None else {job.name: job for job in plan}

    return listed
