"""The local project: the two GitLab repos' CI/CD variables, computed by the code that sets them on GitLab.

    variables = build_variables(region="us-east-1")     # what model-build's jobs get
    variables = deploy_variables(region="us-east-1")    # what model-deploy's jobs get

On AWS the project template's seed Lambda sets the repos' variables from a `SeedRequest`
(cloudformation/lambdas/seed_code/seeding.py). Here the same `SeedRequest` is built with the local stack's
values (its bucket, group and dummy role ARNs), and its `build_variables()` / `deploy_variables()` are the
variables, so the local runs cannot drift from what GitLab gets. `LOCAL_TUNING` adds only what a local run
needs on top: short poll intervals, because the local stack finishes steps and stack updates in well under
a second. tests/ci/test_local_project_variables.py pins both.

GitLab-side scoping is not emulated: gitlab-ci-local hands every variable to every job, so the local
production jobs also see `PROD_DEPLOY_ROLE_ARN`, which GitLab gives only to jobs of the `production`
environment on protected refs (`Variable.environment_scope`, `Variable.protected`). Locally no job holds
an ID token, so no role is assumed and the difference changes nothing a local run does.
"""

from __future__ import annotations

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
    "PIPELINE_POLL_SECONDS": "0.5",
    "DEPLOY_POLL_SECONDS": "0.5",
}


def seed_request(region: str, gitlab_url: str = "http://127.0.0.1") -> SeedRequest:
    """The SeedRequest the project stack would send, with the local stack's values."""
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
        deploy_prod_role_arn=_role("gitlab-deploy-prod"),
        # The topic `up` makes (lifecycle.ALERT_TOPIC): the endpoint stacks' alarms notify its outbox.
        alert_topic_arn=f"arn:aws:sns:{region}:{LOCAL_ACCOUNT}:{ALERT_TOPIC}",
    )


def build_variables(region: str) -> dict[str, str]:
    return _as_dict(seed_request(region).build_variables()) | LOCAL_TUNING


def deploy_variables(region: str) -> dict[str, str]:
    return _as_dict(seed_request(region).deploy_variables()) | LOCAL_TUNING


def _as_dict(variables: list[Variable]) -> dict[str, str]:
    return {variable.key: variable.value for variable in variables}
