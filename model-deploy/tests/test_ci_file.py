"""The deploy repo's .gitlab-ci.yml: valid against GitLab's schema, and shaped as the deploy flow needs.

The schema misses undefined stages and `needs` typos, and cannot tell a blocking manual job from a
skippable one: those properties are asserted here (gitlab-ci-local later checks the evaluated rules).
"""

from __future__ import annotations

import subprocess

import pytest
import yaml

from .conftest import REPO_DIR, tool

CI_FILE = REPO_DIR / ".gitlab-ci.yml"
DEPLOY_JOBS = ("build", "staging-deploy", "staging-test", "batch-staging", "production-deploy")
SDK_INSTALL = 'uv pip install --quiet --python "$(command -v python)" -r requirements-batch.txt'


def check_jsonschema(path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.gitlab-ci", "--data-transform", "gitlab-ci", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def ci() -> dict:
    return yaml.safe_load(CI_FILE.read_text())


def test_ci_file_passes_gitlabs_schema():
    run = check_jsonschema(CI_FILE)
    assert run.returncode == 0, run.stdout + run.stderr


def test_schema_check_rejects_a_broken_ci_file(tmp_path):
    broken = tmp_path / ".gitlab-ci.yml"
    broken.write_text(CI_FILE.read_text().replace("when: manual", "when: by-hand"))
    assert check_jsonschema(broken).returncode != 0


def test_stages_run_in_order_and_every_job_uses_a_declared_stage(ci):
    assert ci["stages"] == ["build", "staging-deploy", "staging-test", "batch-staging", "production-deploy"]
    jobs = {name: job for name, job in ci.items() if isinstance(job, dict) and "script" in job}
    assert {job["stage"] for job in jobs.values()} <= set(ci["stages"])
    for job in jobs.values():
        for need in job.get("needs", []):
            assert need in jobs, f"needs names an unknown job: {need}"


def test_production_deploy_is_a_blocking_manual_step_after_the_staging_tests(ci):
    job = ci["production-deploy"]
    assert job["needs"] == ["build", "staging-test", "batch-staging"]
    final_rule = job["rules"][-1]
    assert final_rule == {"when": "manual", "allow_failure": False}
    assert ci["staging-test"]["needs"] == ["build", "staging-deploy"]
    assert ci["staging-deploy"]["needs"] == ["build"]


def test_each_environment_has_its_tier_url_lock_and_role(ci):
    for name, environment, role in (
        ("staging-deploy", "staging", "$STAGING_DEPLOY_ROLE_ARN"),
        ("production-deploy", "production", "$PROD_DEPLOY_ROLE_ARN"),
        ("production-rollback", "production", "$PROD_DEPLOY_ROLE_ARN"),
        ("staging-rollback", "staging", "$STAGING_DEPLOY_ROLE_ARN"),
    ):
        job = ci[name]
        assert job["environment"]["name"] == environment
        assert job["environment"]["deployment_tier"] == environment
        assert job["environment"]["url"].startswith("https://")
        assert job["resource_group"] == environment
        assert job["variables"]["JOB_ROLE_ARN"] == role
    assert ci["staging-test"]["resource_group"] == "staging"
    # Only the production jobs ask for the audience the production role requires.
    audiences = {
        name: (job.get("id_tokens") or ci[".aws-oidc"]["id_tokens"])["GITLAB_OIDC_TOKEN"]["aud"]
        for name, job in ci.items()
        if isinstance(job, dict) and "script" in job
    }
    assert {name for name, aud in audiences.items() if aud != "sts.amazonaws.com"} == {
        "production-deploy",
        "production-rollback",
    }
    assert audiences["production-deploy"] == audiences["production-rollback"] == "sts.amazonaws.com/production"
    assert ci[".aws-oidc"]["id_tokens"]["GITLAB_OIDC_TOKEN"]["aud"] == "sts.amazonaws.com"
    jobs = [name for name, job in ci.items() if isinstance(job, dict) and "script" in job]
    for name in jobs:
        assert ".aws-oidc" in ci[name]["extends"], f"{name} gets no ID token"
    assert ci[".aws-oidc-login"] in ci["default"]["before_script"]
    assert ":" in ci["default"]["image"] and not ci["default"]["image"].endswith(":latest")


def test_a_rejection_runs_only_the_rollback(ci):
    rejected = '$MODEL_APPROVAL_STATUS == "Rejected"'
    for name in DEPLOY_JOBS:
        templates = [ci[template] for template in ci[name].get("extends", [])]
        rules = ci[name].get("rules") or next(t["rules"] for t in templates if "rules" in t)
        assert rules[0] == {"if": rejected, "when": "never"}, name
    rollback = ci["production-rollback"]
    assert rollback["rules"][0] == {"if": rejected, "when": "on_success"}
    assert rollback["rules"][-1] == {"when": "manual", "allow_failure": True}
    assert rollback["needs"] == []
    assert rollback["script"] == ["python -m deploy rollback prod"]
    staging = ci["staging-rollback"]
    assert staging["rules"] == [{"if": rejected, "when": "on_success"}, {"when": "never"}]
    assert staging["needs"] == []
    assert staging["script"] == ["python -m deploy rollback staging"]
    assert ci["staging-deploy"]["script"] == ["python -m deploy deploy-stage staging"]
    assert ci["production-deploy"]["script"] == ["python -m deploy deploy-stage prod"]


def test_staging_test_reports_reach_gitlab_even_on_failure(ci):
    artifacts = ci["staging-test"]["artifacts"]
    assert artifacts["when"] == "always"
    # Artifact paths are relative to the project dir: $MODEL_DEPLOY_DIR is "." here, model-deploy in the monorepo.
    assert artifacts["reports"]["junit"] == "$MODEL_DEPLOY_DIR/build/staging-test-report.xml"
    assert "$MODEL_DEPLOY_DIR/build/staging-test-results.json" in artifacts["paths"]
    # One release artifact carries the build's decision to the later jobs; no dotenv report (nothing reads one).
    assert ci["build"]["artifacts"]["paths"] == ["$MODEL_DEPLOY_DIR/build/release.json"]
    assert "reports" not in ci["build"]["artifacts"]


def test_uv_cache_key_follows_the_lock_file_standalone_and_in_the_monorepo(ci):
    # cache:key:files takes no variables: it names requirements.txt from the deploy repo's root and from the monorepo's.
    files = ci["default"]["cache"]["key"]["files"]
    assert files == ["requirements.txt", "model-deploy/requirements.txt"]
    assert (REPO_DIR / files[0]).is_file()
    # The cached folder is uv's cache, which exists after every install (pip's never did under gitlab-ci-local).
    # Set before the job leaves the folder it starts in: that is where `cache:paths` are looked for.
    assert ci["default"]["before_script"][0] == 'export UV_CACHE_DIR="$PWD/.cache/uv"'
    assert ci["default"]["cache"]["paths"] == [".cache/uv"]


def test_batch_staging_runs_after_the_staging_tests_and_only_batch_jobs_install_the_sdk(ci):
    job = ci["batch-staging"]
    assert job["needs"] == ["build", "staging-test"] and job["stage"] == "batch-staging"
    assert job["script"] == ["python -m deploy batch-staging-test"]
    assert job["variables"]["JOB_ROLE_ARN"] == "$STAGING_DEPLOY_ROLE_ARN" and job["resource_group"] == "staging"
    assert job["artifacts"]["when"] == "always"
    assert job["artifacts"]["reports"]["junit"] == "$MODEL_DEPLOY_DIR/build/batch-staging-report.xml"
    assert "$MODEL_DEPLOY_DIR/build/batch-staging-results.json" in job["artifacts"]["paths"]
    # The SDK's install comes after the shared snippet's, and before the login, as in the default before_script.
    sdk = ci[".batch-sdk"]["before_script"]
    assert sdk[:3] == ci["default"]["before_script"][:3] and sdk[-1] == ci["default"]["before_script"][-1]
    assert sdk[3] == SDK_INSTALL
    with_sdk = {name for name, job in ci.items() if isinstance(job, dict) and ".batch-sdk" in job.get("extends", [])}
    # Batch pipelines follow the endpoint in production and on rollbacks; the other jobs stay boto3 only.
    assert with_sdk == {"batch-staging", "production-deploy", "production-rollback", "staging-rollback"}
