"""The local project: the two GitLab repos' CI/CD variables, computed by the code that sets them on GitLab.

    variables = build_variables(region="us-east-1")     # what model-build's jobs get
    variables = deploy_variables(region="us-east-1")    # what model-deploy's jobs get

On AWS the project template's seed Lambda sets the repos' variables from a `SeedRequest`
(cloudformation/lambdas/seed_code/seeding.py). Here the same `SeedRequest` is built with the local stack's
values (its bucket, group and dummy role ARNs), and its `build_variables()` / `deploy_variables()` are the
variables, so the local runs cannot drift from what GitLab gets. `LOCAL_TUNING` adds only what a local run
needs on top: short poll intervals, because the local stack finishes steps and stack updates in well under
a second. tests/ci/test_local_project_variables.py pins both.

Production in its own account (`LocalStack(prod_account_id=...)`, `PROD_ACCOUNT_ID=... make demo`): the seed
sets `PROD_DEPLOY_ROLE_ARN` to that account's role (`prod_deploy_role_arn`), as project.yml does with
ProdAccountId, and the deploy repo is the one a team with two accounts has (`write_deploy_repo`): model-deploy's
tracked files with `prod-config.json` naming the prod account and the prod stack's outputs (README step 3).

GitLab-side scoping is not emulated: gitlab-ci-local hands every variable to every job, so the local
production jobs also see `PROD_DEPLOY_ROLE_ARN`, which GitLab gives only to jobs of the `production`
environment on protected refs (`Variable.environment_scope`, `Variable.protected`). Locally no job holds
an ID token, so no role is assumed and the difference changes nothing a local run does. With a prod account,
a pressed production job gets an ID token stand-in (local_gitlab.id_tokens) and assumes that role.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

from lambdas.seed_code.seeding import SeedRequest, Variable
from local_aws.core.lifecycle import ARTIFACT_BUCKET, MODEL_PACKAGE_GROUP

PROJECT_NAME = MODEL_PACKAGE_GROUP  # the template names the group after the project
PROJECT_ID = "local"
DEFAULT_BRANCH = "main"
BUILD_REPO, DEPLOY_REPO = "model-build", "model-deploy"
NAMESPACE_PATH = "local"
LOCAL_ACCOUNT = "123456789012"  # moto's default account


ALERT_TOPIC = "sagemaker-abalone-alerts"  # local_aws.core.lifecycle.ALERT_TOPIC (not imported: no stack import here)


def _role(name: str) -> str:
    return f"arn:aws:iam::{LOCAL_ACCOUNT}:role/local-{name}"  # moto checks no role: any well-formed ARN works


LOCAL_TUNING = {
    "PIPELINE_POLL_SECONDS": "0.25",
    "DEPLOY_POLL_SECONDS": "0.25",
}


def prod_deploy_role_arn(prod_account_id: str) -> str:
    """The role prod-account.yml makes in the prod account, as project.yml names it (`<project>-prod-deploy`)."""
    return f"arn:aws:iam::{prod_account_id}:role/{PROJECT_NAME}-prod-deploy"


def seed_request(region: str, gitlab_url: str = "http://127.0.0.1", prod_account_id: str = "") -> SeedRequest:
    """The SeedRequest the project stack would send, with the local stack's values (and its ProdAccountId)."""
    return SeedRequest(
        gitlab_url=gitlab_url,
        namespace_id="1",
        namespace_path=NAMESPACE_PATH,
        build_repo=BUILD_REPO,
        deploy_repo=DEPLOY_REPO,
        default_branch=DEFAULT_BRANCH,
        project_name=PROJECT_NAME,
        project_id=PROJECT_ID,
        region=region,
        artifact_bucket=ARTIFACT_BUCKET,
        kms_key_arn="",  # the local bucket uses SSE-S3: no customer key
        model_package_group=MODEL_PACKAGE_GROUP,
        pipeline_role_arn=_role("sagemaker-pipeline"),
        model_execution_role_arn=_role("sagemaker-model-execution"),
        build_role_arn=_role("gitlab-build"),
        deploy_staging_role_arn=_role("gitlab-deploy-staging"),
        deploy_prod_role_arn=prod_deploy_role_arn(prod_account_id) if prod_account_id else _role("gitlab-deploy-prod"),
        # The topic `up` makes (lifecycle.ALERT_TOPIC): the endpoint stacks' alarms notify its outbox.
        alert_topic_arn=f"arn:aws:sns:{region}:{LOCAL_ACCOUNT}:{ALERT_TOPIC}",
    )


def build_variables(region: str) -> dict[str, str]:
    return _as_dict(seed_request(region).build_variables()) | LOCAL_TUNING


def deploy_variables(region: str, prod_account_id: str = "") -> dict[str, str]:
    return _as_dict(seed_request(region, prod_account_id=prod_account_id).deploy_variables()) | LOCAL_TUNING


def deploy_repo(state_dir: Path) -> Path:
    """Where the local GitLab keeps the two-account deploy repo (`write_deploy_repo`)."""
    return Path(state_dir) / "gitlab" / "repos" / DEPLOY_REPO


def prod_config(base: Mapping, prod_account_id: str, outputs: Mapping[str, str]) -> dict:
    """`prod-config.json` as README step 3 has a team write it: the prod account, and prod-account.yml's
    outputs as the Parameters the stage needs in its own account."""
    config = json.loads(json.dumps(base))
    config["AccountId"] = prod_account_id
    config["Region"] = ""  # the registry's region: a model package serves in its own region only
    config["Parameters"] |= {
        "ModelExecutionRoleArn": outputs["ModelExecutionRoleArn"],
        "ArtifactBucket": outputs["DataCaptureBucketName"],
        "KmsKeyArn": outputs["KmsKeyArn"],
        "AlertTopicArn": outputs["AlertTopicArn"],  # prod's own topic (README "Alerts")
    }
    return config


def write_deploy_repo(state_dir: Path, source: Path, prod_account_id: str, outputs: Mapping[str, str]) -> Path:
    """A git repo of `source`'s tracked files (model-deploy) with prod-config.json for the prod account, committed
    on the default branch: what gitlab-ci-local runs (it copies a repo's tracked files into each job)."""
    repo = deploy_repo(state_dir)
    shutil.rmtree(repo, ignore_errors=True)
    tracked = subprocess.run(
        ["git", "ls-files", "-z"], cwd=source, capture_output=True, check=True, text=True
    ).stdout.split("\0")
    for name in filter(None, tracked):
        target = repo / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source / name, target)
    config = prod_config(json.loads((source / "prod-config.json").read_text()), prod_account_id, outputs)
    (repo / "prod-config.json").write_text(json.dumps(config, indent=2) + "\n")
    git = ["git", "-c", "user.name=local GitLab", "-c", "user.email=gitlab@127.0.0.1", "-c", "commit.gpgsign=false"]
    subprocess.run([*git, "init", "-q", "-b", DEFAULT_BRANCH], cwd=repo, check=True)
    subprocess.run([*git, "add", "-A"], cwd=repo, check=True)
    message = f"prod-config.json: production in account {prod_account_id}"
    subprocess.run([*git, "commit", "-q", "-m", message], cwd=repo, check=True)
    return repo


def _as_dict(variables: list[Variable]) -> dict[str, str]:
    return {variable.key: variable.value for variable in variables}
