"""Print how this branch changes the pipeline definition compared with another git revision.

    python -m pipelines.definition_diff [--base origin/main]

Merge request reviewers see what SageMaker will run differently, not just which Python changed.
The base revision is checked out in a temporary git worktree and asked for its own definition.
"""

from __future__ import annotations

import argparse
import difflib
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO_DIR = Path(__file__).resolve().parents[1]  # the model-build folder (a repo root when seeded)


def definition_at(folder: Path) -> str:
    """The definition JSON as `run_pipeline definition` prints it in `folder`."""
    result = subprocess.run(
        [sys.executable, "-m", "pipelines.run_pipeline", "definition"],
        cwd=folder,
        env={**os.environ, "PYTHONPATH": str(folder)},
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"definition failed in {folder}:\n{result.stderr.strip()[-2000:]}")
    return result.stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_base = f"origin/{os.environ.get('CI_DEFAULT_BRANCH', 'main')}"
    parser.add_argument("--base", default=default_base, help=f"git revision to compare with (default {default_base})")
    args = parser.parse_args(argv)

    top = Path(subprocess.check_output(["git", "rev-parse", "--show-toplevel"], cwd=REPO_DIR, text=True).strip())
    subfolder = REPO_DIR.relative_to(top)
    try:
        current = definition_at(REPO_DIR)
    except RuntimeError as error:
        print(f"error: this branch's pipeline does not build: {error}", file=sys.stderr)
        return 1
    _fetch_if_missing(args.base, top)
    with tempfile.TemporaryDirectory() as scratch:
        worktree = Path(scratch) / "base"
        added = subprocess.run(
            ["git", "worktree", "add", "--detach", str(worktree), args.base], cwd=top, capture_output=True, text=True
        )
        if added.returncode != 0:
            print(f"No definition diff: cannot check out {args.base}: {added.stderr.strip()}")
            return 0
        try:
            base_folder = worktree / subfolder
            if not (base_folder / "pipelines" / "run_pipeline.py").exists():
                print(f"No definition diff: {args.base} has no model-build pipeline yet.")
                return 0
            try:
                base = definition_at(base_folder)
            except RuntimeError as error:  # the base's problem, not this branch's: report it, don't block
                print(f"No definition diff: {args.base}'s pipeline does not build there. {error}")
                return 0
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(worktree)], cwd=top, check=False)
    diff = list(difflib.unified_diff(base.splitlines(), current.splitlines(), args.base, "this branch", lineterm=""))
    print("\n".join(diff) if diff else f"The pipeline definition is unchanged from {args.base}.")
    return 0


def _fetch_if_missing(revision: str, top: Path) -> None:
    """A merge request's clone has no origin/<default branch>: fetch it, as a reviewer would."""
    known = subprocess.run(["git", "rev-parse", "--verify", "--quiet", revision], cwd=top, capture_output=True)
    remote, _, branch = revision.partition("/")
    if known.returncode != 0 and branch:
        subprocess.run(["git", "fetch", "--quiet", remote, f"{branch}:refs/remotes/{remote}/{branch}"], cwd=top)


if __name__ == "__main__":
    sys.exit(main())
