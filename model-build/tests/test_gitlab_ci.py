"""The model-build repo's .gitlab-ci.yml: schema-valid, trains only on the default branch, keyless."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

CI_FILE = Path(__file__).resolve().parents[1] / ".gitlab-ci.yml"


def test_ci_file_validates_against_the_gitlab_schema():
    result = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.gitlab-ci"]
        + ["--data-transform", "gitlab-ci", str(CI_FILE)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_train_runs_on_the_default_branch_only_and_validate_on_merge_requests():
    ci = yaml.safe_load(CI_FILE.read_text())
    train_rules = [rule["if"] for rule in ci["train"]["rules"]]
    # trigger: the batch inference's retraining decision triggers the build on the default branch (RetrainingTarget).
    assert train_rules == [
        "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH"
        " && $CI_PIPELINE_SOURCE =~ /^(push|web|schedule|parent_pipeline|trigger)$/"
    ]
    assert [rule["if"] for rule in ci["validate"]["rules"]] == ['$CI_PIPELINE_SOURCE == "merge_request_event"']
    assert ci["train"]["script"] == ["make train"] and ci["validate"]["script"] == ["make validate"]


def test_no_static_aws_keys_and_oidc_for_aws_jobs():
    text = CI_FILE.read_text()
    assert "AWS_ACCESS_KEY_ID" not in text and "AWS_SECRET_ACCESS_KEY" not in text
    ci = yaml.safe_load(text)
    assert "train" in ci and ".aws-oidc" in ci["train"]["extends"]
    oidc = ci[".aws-oidc"]
    assert oidc["id_tokens"]["GITLAB_OIDC_TOKEN"]["aud"] == "sts.amazonaws.com"
    assert ci["train"]["variables"]["JOB_ROLE_ARN"] == "$BUILD_ROLE_ARN"
    login = ci[".aws-oidc-login"]
    assert login in ci["default"]["before_script"] and 'AWS_WEB_IDENTITY_TOKEN_FILE="$(mktemp)"' in login
    assert ":" in ci["default"]["image"], "the CI image is pinned to a tag"
