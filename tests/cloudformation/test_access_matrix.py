"""Who can reach production: the rendered trust and permission policies, decided by a policy evaluator.

Tokens are GitLab ID tokens as GitLab 18.2.2 and later mint them, with the sub the seed configures
(project_path, ref_type, ref). Each row says which job (or attacker) holds the token and what it may
assume; then the build and staging roles are tried on every production resource.
"""

from __future__ import annotations

import pytest

from .policy_evaluator import ALLOW, EXPLICIT_DENY, Request, decide
from .rendered_template import ACCOUNT, BUCKET, HOST, REGION, Rendered

GROUP = "ml-team/abalone"
DEPLOY, BUILD = f"{GROUP}/abalone-model-deploy", f"{GROUP}/abalone-model-build"
STS, PROD_AUD = "sts.amazonaws.com", "sts.amazonaws.com/production"
PROVIDER = f"arn:aws:iam::{ACCOUNT}:oidc-provider/{HOST}"
ROLES = ("GitLabBuildRole", "GitLabDeployStagingRole", "GitLabDeployProdRole")


@pytest.fixture(scope="module")
def rendered() -> Rendered:
    return Rendered()


def sub(project: str, ref: str, ref_type: str = "branch") -> str:
    return f"project_path:{project}:ref_type:{ref_type}:ref:{ref}"


def assumable(rendered: Rendered, token: dict) -> set[str]:
    """The roles an AssumeRoleWithWebIdentity with this token's claims may assume."""
    request = Request(
        "sts:AssumeRoleWithWebIdentity",
        context={f"{HOST}:{claim}": value for claim, value in token.items()},
        principal={"Federated": PROVIDER},
    )
    return {role for role in ROLES if decide(request, [rendered.trust_policy(role)]) == ALLOW}


TOKENS = {
    # The production jobs' CI config asks for the production audience; on the default branch only.
    "production-deploy on main": ({"aud": PROD_AUD, "sub": sub(DEPLOY, "main")}, {"GitLabDeployProdRole"}),
    # A rejection's trigger pipeline runs production-rollback: a production job too.
    "production-rollback in a trigger pipeline": (
        {"aud": PROD_AUD, "sub": sub(DEPLOY, "main")},
        {"GitLabDeployProdRole"},
    ),
    # Every other job of the same default-branch pipeline (build, staging-*), however it started
    # (push, trigger token, web, API, schedule): the default audience. Even with the prod ARN in a
    # pipeline variable, STS refuses it the production role.
    "staging-deploy on main": ({"aud": STS, "sub": sub(DEPLOY, "main")}, {"GitLabDeployStagingRole"}),
    "build job of a trigger pipeline": ({"aud": STS, "sub": sub(DEPLOY, "main")}, {"GitLabDeployStagingRole"}),
    "a deploy-project branch asking for the prod audience": ({"aud": PROD_AUD, "sub": sub(DEPLOY, "feature")}, set()),
    "a tag named like the default branch": ({"aud": PROD_AUD, "sub": sub(DEPLOY, "main", "tag")}, set()),
    # Since 18.2.2 a fork's merge request pipeline gets the fork's project_path, whatever its CI file asks.
    "a fork's merge request pipeline": ({"aud": PROD_AUD, "sub": sub("mallory/abalone-model-deploy", "main")}, set()),
    "a fork's merge request asking for the default audience": (
        {"aud": STS, "sub": sub("mallory/abalone-model-deploy", "main")},
        set(),
    ),
    "a same-project merge request branch": ({"aud": PROD_AUD, "sub": sub(DEPLOY, "fix/x")}, set()),
    "model-build's default branch asking for the prod audience": ({"aud": PROD_AUD, "sub": sub(BUILD, "main")}, set()),
    "model-build on a branch": ({"aud": STS, "sub": sub(BUILD, "feature/x")}, {"GitLabBuildRole"}),
    "another GitLab audience": ({"aud": f"https://{HOST}", "sub": sub(DEPLOY, "main")}, set()),
    "a project whose path only starts like the deploy project's": (
        {"aud": PROD_AUD, "sub": sub(f"{DEPLOY}-copy", "main")},
        set(),
    ),
}


@pytest.mark.parametrize(("token", "expected"), TOKENS.values(), ids=TOKENS.keys())
def test_which_role_each_token_may_assume(rendered, token, expected):
    assert assumable(rendered, token) == expected


def test_why_gitlab_18_2_2_is_the_minimum(rendered):
    # Before 18.2.2 a fork merge request pipeline's token named the target project and the fork's
    # branch, and the fork's own CI file chose the audience: IAM cannot tell it from production-deploy.
    forged = {"aud": PROD_AUD, "sub": sub(DEPLOY, "main")}
    assert assumable(rendered, forged) == {"GitLabDeployProdRole"}
    assert "18.2.2" in rendered.template["Metadata"]["GitLab"]["MinimumVersion"]
    assert "18.2.2" in rendered.template["Parameters"]["GitLabServerUrl"]["Description"]


def test_the_provider_accepts_both_audiences_the_roles_require(rendered):
    provider = rendered.resolve(rendered.template["Resources"]["GitLabOidcProvider"]["Properties"])
    assert provider["ClientIdList"] == [STS, PROD_AUD]


# -- the build and staging roles on production resources ----------------------------------------
def arn(kind: str, name: str) -> str:
    return f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:{kind}/{name}"


PROD_STACK = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/sagemaker-abalone-deploy-prod/1a2b"
STAGING_STACK = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/sagemaker-abalone-deploy-staging/3c4d"
PROJECT = {"sagemaker:project-name": "abalone"}


def tags(prefix: str, **values: str) -> dict[str, str]:
    return {f"aws:{prefix}/{key}": value for key, value in {**PROJECT, **values}.items()}


def obj(key: str) -> str:
    return f"arn:aws:s3:::{BUCKET}/{key}"


# (action, resource, request context): each a change to something production serves or keeps.
PROD_RESOURCES = {
    "update the prod stack": ("cloudformation:UpdateStack", PROD_STACK, {}),
    "delete the prod stack": ("cloudformation:DeleteStack", PROD_STACK, {}),
    "change set on the prod stack": ("cloudformation:ExecuteChangeSet", PROD_STACK, {}),
    "update the prod endpoint": ("sagemaker:UpdateEndpoint", arn("endpoint", "abalone-prod"), {}),
    "delete the prod endpoint": ("sagemaker:DeleteEndpoint", arn("endpoint", "abalone-prod"), {}),
    "delete a prod endpoint config": (
        "sagemaker:DeleteEndpointConfig",
        arn("endpoint-config", "EndpointConfig-x1"),
        tags("ResourceTag", stage="prod"),
    ),
    "delete a prod model": ("sagemaker:DeleteModel", arn("model", "Model-x1"), tags("ResourceTag", stage="prod")),
    "retag a prod model as staging": (
        "sagemaker:AddTags",
        arn("model", "Model-x1"),
        {**tags("ResourceTag", stage="prod"), **tags("RequestTag", stage="staging"), "aws:TagKeys": ["stage"]},
    ),
    "retag an unstaged (pre-upgrade) model as staging": (
        "sagemaker:AddTags",
        arn("model", "Model-old"),
        {**tags("ResourceTag"), **tags("RequestTag", stage="staging"), "aws:TagKeys": ["stage"]},
    ),
    "delete an unstaged (pre-upgrade) endpoint config": (
        "sagemaker:DeleteEndpointConfig",
        arn("endpoint-config", "EndpointConfig-old"),
        tags("ResourceTag"),
    ),
    "create a model tagged prod": ("sagemaker:CreateModel", arn("model", "Model-y"), tags("RequestTag", stage="prod")),
    "overwrite a registered model": ("s3:PutObject", obj("abalone-build/models/abc/model.tar.gz"), {}),
    "overwrite an evaluation": ("s3:PutObject", obj("abalone-build/exec-1/evaluation/evaluation.json"), {}),
    "delete a registered model": ("s3:DeleteObject", obj("abalone-build/models/abc/model.tar.gz"), {}),
    "write prod's captured data": ("s3:PutObject", obj("datacapture/abalone-prod/AllTraffic/x.jsonl"), {}),
}


def role_decision(rendered: Rendered, role: str, action: str, resource: str, context: dict) -> str:
    principal_arn = rendered.arn(role)
    context = {"aws:PrincipalArn": principal_arn, "aws:SecureTransport": "true", "s3:TlsVersion": "1.3", **context}
    request = Request(action, resource, context, principal={"AWS": principal_arn})
    policies = rendered.identity_policies(role)
    if action.startswith("s3:"):
        policies.append(rendered.bucket_policy())
    return decide(request, policies)


@pytest.mark.parametrize("role", ["GitLabBuildRole", "GitLabDeployStagingRole"])
@pytest.mark.parametrize(("action", "resource", "context"), PROD_RESOURCES.values(), ids=PROD_RESOURCES.keys())
def test_build_and_staging_roles_cannot_touch_production(rendered, role, action, resource, context):
    assert role_decision(rendered, role, action, resource, context) != ALLOW


@pytest.mark.parametrize(
    "name",
    ["retag a prod model as staging", "delete a prod model", "delete the prod endpoint", "delete the prod stack"],
)
def test_the_staging_roles_refusals_are_explicit_denies(rendered, name):
    # An explicit deny holds whatever allows the role's policies grow into later.
    action, resource, context = PROD_RESOURCES[name]
    assert role_decision(rendered, "GitLabDeployStagingRole", action, resource, context) == EXPLICIT_DENY


@pytest.mark.parametrize(
    "name",
    [
        "update the prod stack",
        "delete the prod stack",
        "update the prod endpoint",
        "delete a prod endpoint config",
        "delete a prod model",
        "create a model tagged prod",
        "delete an unstaged (pre-upgrade) endpoint config",
    ],
)
def test_the_production_role_can_do_what_the_others_cannot(rendered, name):
    action, resource, context = PROD_RESOURCES[name]
    assert role_decision(rendered, "GitLabDeployProdRole", action, resource, context) == ALLOW


STAGING_WORK = {
    "update the staging stack": ("cloudformation:UpdateStack", STAGING_STACK, {}),
    "update the staging endpoint": ("sagemaker:UpdateEndpoint", arn("endpoint", "abalone-staging"), {}),
    "create a staging model": (
        "sagemaker:CreateModel",
        arn("model", "Model-z"),
        {**tags("RequestTag", stage="staging"), "aws:TagKeys": ["sagemaker:project-name", "stage"]},
    ),
    "tag a staging config at creation": (
        "sagemaker:AddTags",
        arn("endpoint-config", "EndpointConfig-z"),
        tags("RequestTag", stage="staging"),
    ),
    "delete a staging config": (
        "sagemaker:DeleteEndpointConfig",
        arn("endpoint-config", "EndpointConfig-z"),
        tags("ResourceTag", stage="staging"),
    ),
    "write staging test results": ("s3:PutObject", obj("staging-tests/abalone/3/staging-test-results.json"), {}),
    "record an approval event once": (
        "s3:PutObject",
        obj("deploy-events/abalone/0a5d8167-d5bd-4807-85c2-a778d8fcd7c0.json"),
        {"s3:if-none-match": "*"},
    ),
    "read a model to test it": ("s3:GetObject", obj("abalone-build/models/abc/model.tar.gz"), {}),
}


@pytest.mark.parametrize(("action", "resource", "context"), STAGING_WORK.values(), ids=STAGING_WORK.keys())
def test_the_staging_role_still_does_its_own_work(rendered, action, resource, context):
    assert role_decision(rendered, "GitLabDeployStagingRole", action, resource, context) == ALLOW


def test_the_staging_role_cannot_overwrite_a_recorded_approval_event(rendered):
    action, resource, _ = STAGING_WORK["record an approval event once"]
    assert role_decision(rendered, "GitLabDeployStagingRole", action, resource, {}) != ALLOW


def test_the_production_role_cannot_delete_stagings_models(rendered):
    action, resource, context = STAGING_WORK["delete a staging config"]
    assert role_decision(rendered, "GitLabDeployProdRole", action, resource, context) == EXPLICIT_DENY


def test_the_ci_files_production_audience_is_the_templates(rendered):
    import yaml

    ci = yaml.safe_load((rendered.template_path.parents[1] / "model-deploy" / ".gitlab-ci.yml").read_text())
    for job in ("production-deploy", "production-rollback"):
        assert ci[job]["id_tokens"]["GITLAB_OIDC_TOKEN"]["aud"] == rendered.parameters["ProductionOidcAudience"]
    assert ci[".aws-oidc"]["id_tokens"]["GITLAB_OIDC_TOKEN"]["aud"] == rendered.parameters["OidcAudience"]


# -- the pipeline role reads its own registry group, for the champion gate ---------------------------
GATE_READS = {
    "list its group's versions": ("sagemaker:ListModelPackages", arn("model-package-group", "abalone")),
    "describe its champion": ("sagemaker:DescribeModelPackage", arn("model-package", "abalone/3")),
}
OTHER_GROUP = {
    "list another group's versions": ("sagemaker:ListModelPackages", arn("model-package-group", "other")),
    "describe another group's version": ("sagemaker:DescribeModelPackage", arn("model-package", "other/3")),
    "approve its own version": ("sagemaker:UpdateModelPackage", arn("model-package", "abalone/3")),
}


@pytest.mark.parametrize(("action", "resource"), GATE_READS.values(), ids=GATE_READS.keys())
def test_the_pipeline_role_reads_its_own_group_for_the_champion_gate(rendered, action, resource):
    assert role_decision(rendered, "SageMakerPipelineRole", action, resource, {}) == ALLOW


@pytest.mark.parametrize(("action", "resource"), OTHER_GROUP.values(), ids=OTHER_GROUP.keys())
def test_the_pipeline_role_reads_no_other_group_and_approves_nothing(rendered, action, resource):
    assert role_decision(rendered, "SageMakerPipelineRole", action, resource, {}) != ALLOW


# -- the endpoints' monitors: the model execution role runs the DataQualityJobDefinition's jobs ------------
KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/ProjectKey"
CAPTURED = "datacapture/abalone-staging/abalone-staging/AllTraffic/2026/12/01/10/05-07-123-x.jsonl"
MONITOR_WORK = {
    # The hour's captured requests: listed under the endpoint's capture prefix, then read.
    "list the staging capture": (
        "s3:ListBucket",
        f"arn:aws:s3:::{BUCKET}",
        {"s3:prefix": "datacapture/abalone-staging/abalone-staging/AllTraffic/2026/12/01/10/"},
    ),
    "list the prod capture": (
        "s3:ListBucket",
        f"arn:aws:s3:::{BUCKET}",
        {"s3:prefix": "datacapture/abalone-prod/abalone-prod/AllTraffic/"},
    ),
    "read a captured file": ("s3:GetObject", obj(CAPTURED), {}),
    "read the registered baseline": ("s3:GetObject", obj("abalone-build/exec-1/DataQualityCheck/constraints.json"), {}),
    "write a staging report": (
        "s3:PutObject",
        obj("monitoring-reports/abalone-staging/abalone-staging-data-quality/2026/12/01/10/constraint_violations.json"),
        {},
    ),
    "write a prod report": ("s3:PutObject", obj("monitoring-reports/abalone-prod/x/statistics.json"), {}),
    "write captured data": ("s3:PutObject", obj(CAPTURED), {}),
    "encrypt with the project key": ("kms:GenerateDataKey", KEY, {}),
    "decrypt with the project key": ("kms:Decrypt", KEY, {}),
    "pull the analyzer image": (
        "ecr:BatchGetImage",
        f"arn:aws:ecr:{REGION}:156813124566:repository/sagemaker-model-monitor-analyzer",
        {},
    ),
    "publish the drift metrics": (
        "cloudwatch:PutMetricData",
        "*",
        {"cloudwatch:namespace": "aws/sagemaker/Endpoints/data-metrics"},
    ),
}
MONITOR_LIMITS = {
    "list the whole bucket": ("s3:ListBucket", f"arn:aws:s3:::{BUCKET}", {}),
    "list the training data": ("s3:ListBucket", f"arn:aws:s3:::{BUCKET}", {"s3:prefix": "data/"}),
    "list another project's capture": (
        "s3:ListBucket",
        f"arn:aws:s3:::{BUCKET}",
        {"s3:prefix": "datacapture/other-prod/"},
    ),
    "write another project's report": ("s3:PutObject", obj("monitoring-reports/other-prod/x.json"), {}),
    "write outside the report and capture prefixes": ("s3:PutObject", obj("staging-tests/abalone/3/x.json"), {}),
    "write another project's capture": (
        "s3:PutObject",
        obj("datacapture/other-prod/other-prod/AllTraffic/x.jsonl"),
        {},
    ),
    "overwrite a registered baseline": (
        "s3:PutObject",
        obj("abalone-build/exec-1/DataQualityCheck/constraints.json"),
        {},
    ),
    "overwrite a registered model": ("s3:PutObject", obj("abalone-build/models/abc/model.tar.gz"), {}),
    "delete a captured file": ("s3:DeleteObject", obj(CAPTURED), {}),
    "use another key": ("kms:Decrypt", f"arn:aws:kms:{REGION}:{ACCOUNT}:key/other", {}),
    "publish to another namespace": ("cloudwatch:PutMetricData", "*", {"cloudwatch:namespace": "AWS/SageMaker"}),
    "change an alarm": (
        "cloudwatch:PutMetricAlarm",
        f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:abalone-prod-data-drift",
        {},
    ),
    "create a monitoring schedule": (
        "sagemaker:CreateMonitoringSchedule",
        arn("monitoring-schedule", "abalone-prod-data-quality"),
        {},
    ),
}


@pytest.mark.parametrize(("action", "resource", "context"), MONITOR_WORK.values(), ids=MONITOR_WORK.keys())
def test_the_monitors_role_does_a_monitoring_execution(rendered, action, resource, context):
    assert role_decision(rendered, "ModelExecutionRole", action, resource, context) == ALLOW


@pytest.mark.parametrize(("action", "resource", "context"), MONITOR_LIMITS.values(), ids=MONITOR_LIMITS.keys())
def test_the_monitors_role_reaches_only_the_capture_and_report_prefixes_and_the_project_key(
    rendered, action, resource, context
):
    assert role_decision(rendered, "ModelExecutionRole", action, resource, context) != ALLOW


STAGING_MONITOR = {
    "create the staging job definition": (
        "sagemaker:CreateDataQualityJobDefinition",
        arn("data-quality-job-definition", "abalone-staging-dq-0a1b2c3d4e5f6a7b"),
    ),
    "create the staging schedule": (
        "sagemaker:CreateMonitoringSchedule",
        arn("monitoring-schedule", "abalone-staging-data-quality"),
    ),
    "delete the staging schedule": (
        "sagemaker:DeleteMonitoringSchedule",
        arn("monitoring-schedule", "abalone-staging-data-quality"),
    ),
    "create the staging drift alarm": (
        "cloudwatch:PutMetricAlarm",
        f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:abalone-staging-data-drift",
    ),
}
PROD_MONITOR = {
    "update the prod schedule": (
        "sagemaker:UpdateMonitoringSchedule",
        arn("monitoring-schedule", "abalone-prod-data-quality"),
    ),
    "delete the prod schedule": (
        "sagemaker:DeleteMonitoringSchedule",
        arn("monitoring-schedule", "abalone-prod-data-quality"),
    ),
    "stop the prod schedule": (
        "sagemaker:StopMonitoringSchedule",
        arn("monitoring-schedule", "abalone-prod-data-quality"),
    ),
    "replace the prod job definition": (
        "sagemaker:DeleteDataQualityJobDefinition",
        arn("data-quality-job-definition", "abalone-prod-dq-0a1b2c3d4e5f6a7b"),
    ),
    "silence the prod drift alarm": (
        "cloudwatch:DisableAlarmActions",
        f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:abalone-prod-data-drift",
    ),
    "delete a prod alarm": (
        "cloudwatch:DeleteAlarms",
        f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:abalone-prod-invocation-5xx",
    ),
}


@pytest.mark.parametrize(("action", "resource"), STAGING_MONITOR.values(), ids=STAGING_MONITOR.keys())
def test_the_staging_role_deploys_the_optional_staging_monitor(rendered, action, resource):
    # MonitorStaging=true: the staging stack's DataQualityJobDefinition, MonitoringSchedule and drift alarm.
    assert role_decision(rendered, "GitLabDeployStagingRole", action, resource, {}) == ALLOW


@pytest.mark.parametrize(("action", "resource"), PROD_MONITOR.values(), ids=PROD_MONITOR.keys())
def test_the_staging_role_is_denied_the_production_monitor_and_alarms(rendered, action, resource):
    assert role_decision(rendered, "GitLabDeployStagingRole", action, resource, {}) == EXPLICIT_DENY
    if action not in ("sagemaker:StopMonitoringSchedule", "cloudwatch:DisableAlarmActions"):  # prod needs neither
        assert role_decision(rendered, "GitLabDeployProdRole", action, resource, {}) == ALLOW
