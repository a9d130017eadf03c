"""model-build and model-deploy CI files: standalone (the seeded repos) and as the monorepo's children.

Which jobs run for each event is gitlab-ci-local's verdict on the real files; the deploy chain is
checked with its --validate-dependency-chain, and shown to catch a broken chain.
"""

from __future__ import annotations

import os
import subprocess

from local_gitlab import ci_runner as ci_local

from .conftest import make_repo, needs_gitlab_ci_local, standalone_files

pytestmark = needs_gitlab_ci_local

ARN = "arn:aws:sagemaker:us-east-1:123456789012:model-package/abalone/3"
DEPLOY_CHAIN = ["build", "staging-deploy", "staging-test", "batch-staging", "production-deploy"]


def validate_dependency_chain(repo, ci_file=".gitlab-ci.yml", **variables) -> subprocess.CompletedProcess:
    command = ci_local.gitlab_ci_local_command(
        repo,
        ci_local.pipeline_variables(variables, repo),
        ["--validate-dependency-chain", "--no-json-schema-validation"],
        ci_file=ci_file,
    )
    return subprocess.run(command, cwd=repo, capture_output=True, text=True, env=ci_local.job_environment(os.environ))


class TestModelBuildStandalone:
    def test_a_push_to_the_default_branch_trains(self, repos, list_jobs):
        jobs = list_jobs(repos["model-build"], CI_PIPELINE_SOURCE="push")
        assert set(jobs) == {"train"} and jobs["train"].when == "on_success"

    def test_a_merge_request_validates_and_does_not_train(self, repos, list_jobs):
        jobs = list_jobs(repos["model-build"], CI_PIPELINE_SOURCE="merge_request_event", CI_COMMIT_BRANCH="")
        assert set(jobs) == {"validate"}

    def test_schedules_web_runs_and_the_retraining_trigger_retrain(self, repos, list_jobs):
        for source in ("schedule", "web", "trigger"):
            assert set(list_jobs(repos["model-build"], CI_PIPELINE_SOURCE=source)) == {"train"}, source

    def test_other_branches_start_no_pipeline(self, repos, list_jobs):
        assert list_jobs(repos["model-build"], CI_PIPELINE_SOURCE="push", CI_COMMIT_BRANCH="feature/x") is None


class TestModelDeployStandalone:
    def test_the_approval_trigger_runs_build_staging_tests_then_the_prod_button(self, repos, list_jobs):
        jobs = list_jobs(
            repos["model-deploy"], CI_PIPELINE_SOURCE="trigger", MODEL_PACKAGE_ARN=ARN, MODEL_APPROVAL_STATUS="Approved"
        )
        assert [name for name in jobs if name != "production-rollback"] == DEPLOY_CHAIN
        assert [jobs[name].when for name in DEPLOY_CHAIN[:4]] == ["on_success"] * 4
        assert jobs["staging-deploy"].needs == ("build",)
        assert jobs["staging-test"].needs == ("build", "staging-deploy")
        assert jobs["batch-staging"].needs == ("build", "staging-test")
        assert jobs["production-deploy"].needs == ("build", "staging-test", "batch-staging")

    def test_production_deploy_is_manual_and_blocks_the_pipeline(self, repos, list_jobs):
        jobs = list_jobs(repos["model-deploy"], CI_PIPELINE_SOURCE="trigger", MODEL_PACKAGE_ARN=ARN)
        assert (jobs["production-deploy"].when, jobs["production-deploy"].allow_failure) == ("manual", False)
        # The rollback button is there too, but never holds the pipeline up.
        assert (jobs["production-rollback"].when, jobs["production-rollback"].allow_failure) == ("manual", True)

    def test_a_rejection_runs_only_the_rollback_at_once(self, repos, list_jobs):
        jobs = list_jobs(
            repos["model-deploy"], CI_PIPELINE_SOURCE="trigger", MODEL_PACKAGE_ARN=ARN, MODEL_APPROVAL_STATUS="Rejected"
        )
        assert set(jobs) == {"staging-rollback", "production-rollback"}
        assert {job.when for job in jobs.values()} == {"on_success"}

    def test_a_web_run_redeploys_the_latest_approved_version(self, repos, list_jobs):
        jobs = list_jobs(repos["model-deploy"], CI_PIPELINE_SOURCE="web")
        assert [name for name in jobs if name != "production-rollback"] == DEPLOY_CHAIN

    def test_pushes_and_merge_requests_start_no_deploy(self, repos, list_jobs):
        assert list_jobs(repos["model-deploy"], CI_PIPELINE_SOURCE="push") is None
        assert list_jobs(repos["model-deploy"], CI_PIPELINE_SOURCE="merge_request_event") is None

    def test_the_dependency_chain_is_valid(self, repos):
        checked = validate_dependency_chain(repos["model-deploy"], CI_PIPELINE_SOURCE="trigger", MODEL_PACKAGE_ARN=ARN)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert "All job dependencies are valid" in checked.stdout

    def test_the_dependency_check_catches_a_needed_job_that_does_not_run(self, tmp_path):
        # staging-test turned off while production-deploy still needs it: the chain is broken.
        files = standalone_files("model-deploy")
        broken = files[".gitlab-ci.yml"].replace(
            "staging-test:\n  stage: staging-test\n  extends: [.aws-oidc, .not-on-rejection]\n",
            "staging-test:\n  stage: staging-test\n  extends: [.aws-oidc]\n  rules:\n    - when: never\n",
        )
        assert broken != files[".gitlab-ci.yml"], "the mutation no longer applies: update this test"
        repo = make_repo(tmp_path / "broken-deploy", {**files, ".gitlab-ci.yml": broken})
        checked = validate_dependency_chain(repo, CI_PIPELINE_SOURCE="trigger", MODEL_PACKAGE_ARN=ARN)
        assert checked.returncode != 0
        assert "staging-test" in checked.stdout + checked.stderr


class TestAsMonorepoChildren:
    """As the root pipeline starts them: CI_PIPELINE_SOURCE=parent_pipeline plus the trigger job's variables."""

    def test_the_build_child_trains(self, repos, list_jobs):
        wiring = ci_local.parent_wiring("model-build/.gitlab-ci.yml", repos["build-change"])
        assert wiring == {"MODEL_BUILD_DIR": "model-build", "CI_PIPELINE_SOURCE": "parent_pipeline"}
        jobs = list_jobs(repos["build-change"], "model-build/.gitlab-ci.yml", **wiring)
        assert set(jobs) == {"train"}

    def test_the_deploy_child_runs_the_whole_chain(self, repos, list_jobs):
        wiring = ci_local.parent_wiring("model-deploy/.gitlab-ci.yml", repos["build-change"])
        assert wiring == {"MODEL_DEPLOY_DIR": "model-deploy", "CI_PIPELINE_SOURCE": "parent_pipeline"}
        jobs = list_jobs(repos["build-change"], "model-deploy/.gitlab-ci.yml", MODEL_PACKAGE_ARN=ARN, **wiring)
        assert [name for name in jobs if name != "production-rollback"] == DEPLOY_CHAIN
        assert (jobs["production-deploy"].when, jobs["production-deploy"].allow_failure) == ("manual", False)
        checked = validate_dependency_chain(
            repos["build-change"], "model-deploy/.gitlab-ci.yml", MODEL_PACKAGE_ARN=ARN, **wiring
        )
        assert checked.returncode == 0, checked.stdout + checked.stderr
