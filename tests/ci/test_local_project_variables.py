"""The CI/CD variables the local runs give the CI jobs: every poll interval the jobs read is set for the local stack.

A missing one makes each local deploy job wait out the real-AWS default (15 s per CloudFormation poll).
"""

from __future__ import annotations

import re

import ci_local

from .conftest import REPO_ROOT

POLL_VARIABLE = re.compile(r"""["']([A-Z_]+_POLL_SECONDS)["']""")


def test_every_poll_interval_the_ci_jobs_read_is_short_on_the_local_stack():
    sources = [*REPO_ROOT.joinpath("model-build", "pipelines").rglob("*.py")]
    sources += REPO_ROOT.joinpath("model-deploy", "deploy").rglob("*.py")
    read = {name for path in sources for name in POLL_VARIABLE.findall(path.read_text(encoding="utf-8"))}
    assert {"PIPELINE_POLL_SECONDS", "DEPLOY_POLL_SECONDS"} <= read, "the jobs' poll variables were renamed"
    missing = read - ci_local.LOCAL_PROJECT_VARIABLES.keys()
    assert not missing, f"set {sorted(missing)} in ci_local.LOCAL_PROJECT_VARIABLES"
    assert all(float(ci_local.LOCAL_PROJECT_VARIABLES[name]) <= 1 for name in read)
