"""ci_local.run_pipeline and scripts/ci-local: real gitlab-ci-local runs of a tiny pipeline, and the CLI.

The smoke pipeline's jobs take milliseconds but exercise what the model pipelines rely on: artifacts and
a dotenv report along `needs`, a blocking manual job, variables from the command line over the file's,
the caller's environment and the repo's venv reaching the jobs.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys

import pytest

from local_gitlab import ci_runner as ci_local

from .conftest import REPO_ROOT, make_repo, needs_gitlab_ci_local

pytestmark = needs_gitlab_ci_local

SMOKE_CI = """\
workflow:
  rules:
    - if: $CI_PIPELINE_SOURCE == "push"
stages: [build, test, deploy]
variables:
  GREETING: from-the-file
default:
  image: python:3.11.7-slim-bookworm  # like the real jobs: ci_local forces the shell executor
producer:
  stage: build
  script:
    - mkdir -p out && echo "$GREETING" > out/greeting.txt
    - echo "FROM_DOTENV=dotenv-value" > out/build.env
  artifacts:
    paths: [out/]
    reports:
      dotenv: out/build.env
consumer:
  stage: test
  needs: [producer]
  script:
    - test "$(cat out/greeting.txt)" = "$GREETING"
    - test "$FROM_DOTENV" = dotenv-value
    - test "$BREAK" != consumer
    - python -c 'import sys; print("python at", sys.prefix)'
    - echo "ambient $AMBIENT_SETTING"
promote:
  stage: deploy
  needs: [consumer]
  rules:
    - when: manual
      allow_failure: false
  script:
    - echo promoted
"""


@pytest.fixture(scope="module")
def smoke_repo(tmp_path_factory):
    return make_repo(tmp_path_factory.mktemp("smoke") / "repo", {".gitlab-ci.yml": SMOKE_CI})


def run(repo, tmp_path, variables=None, manual=(), env=None):
    output = io.StringIO()
    environment = {**os.environ, **(env or {})}
    state = tmp_path / "state"
    try:
        results = ci_local.run_pipeline(repo, variables, manual, environment, state=state, output=output)
    finally:
        print(output.getvalue())  # shown by pytest when a test fails
    return results, output.getvalue(), state


def test_a_pipeline_runs_with_artifacts_dotenv_variables_and_the_manual_button(smoke_repo, tmp_path):
    # GCL_QUIET would silence the job output if it reached gitlab-ci-local as an option.
    env = {"AMBIENT_SETTING": "from-the-environment", "GCL_QUIET": "true"}
    results, output, state = run(smoke_repo, tmp_path, {"GREETING": "from-the-command-line"}, ["promote"], env)
    assert [(job, status) for job, status, _ in results] == [
        ("producer", "success"),
        ("consumer", "success"),
        ("promote", "success"),
    ]
    assert all(seconds > 0 for _, _, seconds in results)
    assert f"python at {REPO_ROOT / '.venv'}" in output  # the venv's python, first on PATH
    assert "ambient from-the-environment" in output
    assert "promoted" in output
    greeting = state / "artifacts" / "producer" / "out" / "greeting.txt"
    assert greeting.read_text().strip() == "from-the-command-line"
    assert not (smoke_repo / "out").exists(), "artifacts must not land in the work tree"


def test_a_failed_job_raises_with_its_name_and_later_jobs_do_not_run(smoke_repo, tmp_path):
    with pytest.raises(ci_local.PipelineFailed) as failure:
        run(smoke_repo, tmp_path, {"BREAK": "consumer"})
    assert failure.value.job == "consumer"
    assert "'consumer' failed" in str(failure.value)
    assert [(job, status) for job, status, _ in failure.value.results] == [
        ("producer", "success"),
        ("consumer", "failed"),
        ("promote", "manual"),
    ]
    assert 'test "$BREAK" != consumer' in failure.value.log.read_text()


def test_an_unknown_manual_job_is_refused_naming_the_real_ones(smoke_repo, tmp_path):
    with pytest.raises(ci_local.CiLocalError, match=r"--manual deploy-prod: .* manual jobs are: promote"):
        run(smoke_repo, tmp_path, manual=["deploy-prod"])


def test_an_event_the_workflow_rejects_runs_nothing(smoke_repo, tmp_path):
    with pytest.raises(ci_local.CiLocalError, match="GitLab would start no pipeline.*CI_PIPELINE_SOURCE=web"):
        run(smoke_repo, tmp_path, {"CI_PIPELINE_SOURCE": "web"})
    assert not (tmp_path / "state" / "output").exists()


def ci_local_cli(*args) -> subprocess.CompletedProcess:
    command = [sys.executable, str(REPO_ROOT / "scripts" / "ci-local"), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


def test_the_cli_lists_the_deploy_jobs_of_a_web_run_and_of_the_monorepo_child():
    standalone = ci_local_cli("deploy", "--list")
    assert standalone.returncode == 0, standalone.stderr
    assert "CI_PIPELINE_SOURCE=web: 6 job(s)" in standalone.stdout
    rows = {line.split()[1]: line for line in standalone.stdout.splitlines()[1:]}
    assert list(rows) == [
        "build",
        "staging-deploy",
        "staging-test",
        "batch-staging",
        "production-deploy",
        "production-rollback",
    ]
    assert "manual, blocking" in rows["production-deploy"]
    assert "needs: build, staging-test, batch-staging" in rows["production-deploy"]
    assert "blocking" not in rows["production-rollback"]
    child = ci_local_cli("build", "--list", "--monorepo")
    assert child.returncode == 0, child.stderr
    assert "model-build/.gitlab-ci.yml, CI_PIPELINE_SOURCE=parent_pipeline: 1 job(s)" in child.stdout


def test_the_cli_refuses_a_malformed_variable():
    refused = ci_local_cli("build", "--variable", "MODEL_PACKAGE_ARN")
    assert refused.returncode == 1
    assert "is not KEY=VALUE" in refused.stderr
