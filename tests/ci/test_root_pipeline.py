"""The monorepo's root .gitlab-ci.yml routes each GitLab event to the right jobs (rules run by gitlab-ci-local)."""

from __future__ import annotations

import subprocess

import pytest
import yaml

from .conftest import REPO_ROOT, needs_gitlab_ci_local

VALIDATION_JOBS = {"lint", "unit-tests", "cfn-lint", "ci-lint", "checkov", "definition-diff"}
ARN = "arn:aws:sagemaker:us-east-1:123456789012:model-package/abalone/3"


@pytest.fixture(scope="module")
def root_ci() -> dict:
    return yaml.safe_load((REPO_ROOT / ".gitlab-ci.yml").read_text())


@needs_gitlab_ci_local
class TestRouting:
    def test_a_push_changing_model_build_runs_the_build_child_only(self, repos, list_jobs):
        assert set(list_jobs(repos["build-change"], CI_PIPELINE_SOURCE="push")) == {"model-build"}

    def test_a_push_without_model_build_changes_runs_nothing(self, repos, list_jobs):
        assert list_jobs(repos["readme-change"], CI_PIPELINE_SOURCE="push") == {}

    def test_a_push_to_another_branch_starts_no_pipeline(self, repos, list_jobs):
        assert list_jobs(repos["build-change"], CI_PIPELINE_SOURCE="push", CI_COMMIT_BRANCH="feature/x") is None

    def test_the_approval_trigger_runs_the_deploy_child_only(self, repos, list_jobs):
        for source in ("trigger", "api", "pipeline"):
            jobs = list_jobs(repos["build-change"], CI_PIPELINE_SOURCE=source, MODEL_PACKAGE_ARN=ARN)
            assert set(jobs) == {"model-deploy"}, source

    def test_a_trigger_without_a_model_package_runs_nothing(self, repos, list_jobs):
        assert list_jobs(repos["readme-change"], CI_PIPELINE_SOURCE="trigger") == {}

    def test_a_merge_request_runs_the_validation_jobs_only(self, repos, list_jobs):
        jobs = list_jobs(repos["build-change"], CI_PIPELINE_SOURCE="merge_request_event", CI_COMMIT_BRANCH="")
        assert set(jobs) == VALIDATION_JOBS
        assert all(job.when == "on_success" and job.stage == "validate" for job in jobs.values())

    def test_a_schedule_retrains_even_without_changes(self, repos, list_jobs):
        assert set(list_jobs(repos["readme-change"], CI_PIPELINE_SOURCE="schedule")) == {"model-build"}

    def test_a_web_run_redeploys_by_default_and_retrains_on_request(self, repos, list_jobs):
        assert set(list_jobs(repos["readme-change"], CI_PIPELINE_SOURCE="web")) == {"model-deploy"}
        jobs = list_jobs(repos["readme-change"], CI_PIPELINE_SOURCE="web", RUN_PIPELINE="build")
        assert set(jobs) == {"model-build"}


def test_children_are_triggered_with_strategy_depend_and_told_their_folder(root_ci):
    for job_name, child, folder_variable in (
        ("model-build", "model-build", "MODEL_BUILD_DIR"),
        ("model-deploy", "model-deploy", "MODEL_DEPLOY_DIR"),
    ):
        job = root_ci[job_name]
        assert job["trigger"]["include"] == f"{child}/.gitlab-ci.yml"
        assert job["trigger"]["strategy"] == "depend"  # the child's failure or blocked prod fails the parent
        assert job["trigger"]["forward"]["pipeline_variables"] is True  # the trigger's MODEL_PACKAGE_ARN
        assert job["variables"] == {folder_variable: child}
        child_ci = yaml.safe_load((REPO_ROOT / child / ".gitlab-ci.yml").read_text())
        # Standalone, the child runs in its own root; every job changes into the folder it is told.
        assert child_ci["variables"][folder_variable] == "."
        assert f'cd "${folder_variable}"' in yaml.safe_dump(child_ci)


def test_every_validation_job_runs_one_make_target_that_exists(root_ci):
    for name in VALIDATION_JOBS:
        script = root_ci[name]["script"]
        assert len(script) == 1 and script[0].startswith("make "), name
        target = script[0].removeprefix("make ")
        dry_run = subprocess.run(["make", "-n", target], cwd=REPO_ROOT, capture_output=True, text=True)
        assert "No rule to make target" not in dry_run.stderr, f"{name}: {dry_run.stderr}"


def test_jobs_use_a_pinned_image_and_validation_is_cached(root_ci):
    image = root_ci["default"]["image"]
    assert ":" in image and not image.endswith(":latest")
    assert root_ci[".validate"]["cache"]["key"]["files"] == ["requirements-dev.lock"]
    assert root_ci["checkov"]["cache"]["key"]["files"] == ["requirements-checkov.lock"]
