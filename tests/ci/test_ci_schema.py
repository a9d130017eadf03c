"""Every CI file passes GitLab's own JSON schema (check-jsonschema, offline), as `make ci-lint` runs it."""

from __future__ import annotations

import subprocess
import sys

from .conftest import CI_FILES, REPO_ROOT


def check_jsonschema(*paths) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.gitlab-ci"]
    return subprocess.run([*command, "--data-transform", "gitlab-ci", *map(str, paths)], capture_output=True, text=True)


def test_every_ci_file_passes_gitlabs_schema():
    checked = check_jsonschema(*(REPO_ROOT / name for name in CI_FILES))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_schema_check_rejects_a_broken_trigger(tmp_path):
    # An unknown strategy would make GitLab refuse the whole pipeline: the check must catch it first.
    broken = tmp_path / ".gitlab-ci.yml"
    broken.write_text((REPO_ROOT / ".gitlab-ci.yml").read_text().replace("strategy: depend", "strategy: wait-for-it"))
    checked = check_jsonschema(broken)
    assert checked.returncode != 0 and "strategy" in checked.stdout + checked.stderr
