"""The local project's CI/CD variables are the seed Lambda's, plus short poll intervals, and nothing else.

On GitLab the seed Lambda sets each repo's variables from a `SeedRequest`; the local runs take theirs from the
same `SeedRequest` (local_gitlab.project). These tests fail when the two drift apart, or when a poll interval
the jobs read is left at its real-AWS default (15 s per CloudFormation poll on every local deploy job).
"""

from __future__ import annotations

import re

import pytest

from lambdas.seed_code.seeding import SeedRequest
from local_gitlab import project

from .conftest import REPO_ROOT

POLL_VARIABLE = re.compile(r"""["']([A-Z_]+_POLL_SECONDS)["']""")
REGION = "eu-west-1"


@pytest.mark.parametrize(
    ("local", "seeded"),
    [(project.build_variables, SeedRequest.build_variables), (project.deploy_variables, SeedRequest.deploy_variables)],
    ids=["model-build", "model-deploy"],
)
def test_the_local_variables_are_the_seed_requests_plus_the_local_tuning(local, seeded):
    request = project.seed_request(REGION)
    expected = {variable.key: variable.value for variable in seeded(request)}
    assert local(REGION) == expected | project.LOCAL_TUNING
    assert not set(project.LOCAL_TUNING) & set(expected), "the tuning must not override what GitLab gets"
    assert local(REGION)["AWS_REGION"] == REGION


def test_every_poll_interval_the_ci_jobs_read_is_short_on_the_local_stack():
    sources = [*REPO_ROOT.joinpath("model-build", "pipelines").rglob("*.py")]
    sources += REPO_ROOT.joinpath("model-deploy", "deploy").rglob("*.py")
    read = {name for path in sources for name in POLL_VARIABLE.findall(path.read_text(encoding="utf-8"))}
    assert {"PIPELINE_POLL_SECONDS", "DEPLOY_POLL_SECONDS"} <= read, "the jobs' poll variables were renamed"
    missing = read - project.LOCAL_TUNING.keys()
    assert not missing, f"set {sorted(missing)} in local_gitlab.project.LOCAL_TUNING"
    assert all(float(project.LOCAL_TUNING[name]) <= 1 for name in read)


def test_only_the_production_role_is_environment_scoped_on_gitlab():
    # local_gitlab.project does not emulate scopes (its docstring says why that is harmless): notice a new one.
    request = project.seed_request(REGION)
    scoped = {v.key: (v.environment_scope, v.protected) for v in request.deploy_variables() + request.build_variables()}
    assert {key: scope for key, scope in scoped.items() if scope != ("*", False)} == {
        "PROD_DEPLOY_ROLE_ARN": ("production", True)
    }
