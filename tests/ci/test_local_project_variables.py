"""The local project's CI/CD variables are the seed Lambda's, plus short poll intervals, and nothing else.

On GitLab the seed Lambda sets each repo's variables from a `SeedRequest`; the local runs take theirs from the
same `SeedRequest` (local_gitlab.project). These tests fail when the two drift apart, or when a poll interval
the jobs read is left at its real-AWS default (15 s per CloudFormation poll on every local deploy job).
"""

from __future__ import annotations

import json
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


def test_with_a_prod_account_only_the_prod_role_moves_there_as_project_yml_names_it():
    one, two = project.deploy_variables(REGION), project.deploy_variables(REGION, "210987654321")
    assert two["PROD_DEPLOY_ROLE_ARN"] == "arn:aws:iam::210987654321:role/abalone-prod-deploy"
    assert one["PROD_DEPLOY_ROLE_ARN"].startswith("arn:aws:iam::123456789012:role/")  # one account: as before
    assert {k: v for k, v in two.items() if k != "PROD_DEPLOY_ROLE_ARN"} == {
        k: v for k, v in one.items() if k != "PROD_DEPLOY_ROLE_ARN"
    }
    # project.yml's own naming of the prod role, with ProdAccountId set: the local value cannot drift from it.
    template = (REPO_ROOT / "cloudformation" / "project.yml").read_text(encoding="utf-8")
    assert "arn:${AWS::Partition}:iam::${ProdAccountId}:role/${SageMakerProjectName}-prod-deploy" in template


def test_the_two_account_prod_config_is_the_prod_stacks_outputs_and_passes_the_deploy_checks():
    from deploy import accounts

    outputs = {
        "ModelExecutionRoleArn": "arn:aws:iam::210987654321:role/abalone-prod-model-execution",
        "DataCaptureBucketName": "abalone-prod-account-datacapturebucket-x",
        "KmsKeyArn": "arn:aws:kms:us-east-1:210987654321:key/k",
        "AlertTopicArn": "arn:aws:sns:us-east-1:210987654321:abalone-prod-alerts",
    }
    base = json.loads((REPO_ROOT / "model-deploy" / "prod-config.json").read_text(encoding="utf-8"))
    config = project.prod_config(base, "210987654321", outputs)
    assert accounts.of_stage(config, "prod") == ("210987654321", "")
    assert config["Parameters"]["ArtifactBucket"] == outputs["DataCaptureBucketName"]
    assert config["Parameters"]["AlertTopicArn"] == outputs["AlertTopicArn"]
    assert {k: v for k, v in config["Parameters"].items() if k in base["Parameters"]} == base["Parameters"]


def test_the_id_token_stand_in_has_the_audience_the_job_asks_for():
    from local_gitlab import id_tokens

    ci_file = REPO_ROOT / "model-deploy" / ".gitlab-ci.yml"
    from cfnlint.decode import cfn_yaml

    parameters = cfn_yaml.load(str(REPO_ROOT / "cloudformation" / "prod-account.yml"))["Parameters"]
    assert parameters["ProductionOidcAudience"]["Default"] == id_tokens.PRODUCTION_AUDIENCE
    assert id_tokens.audience(ci_file, "production-deploy") == id_tokens.PRODUCTION_AUDIENCE
    assert id_tokens.audience(ci_file, "production-rollback") == "sts.amazonaws.com/production"
    assert id_tokens.audience(ci_file, "staging-deploy") == "sts.amazonaws.com"  # from .aws-oidc, by `extends`
    claims = id_tokens.job_claims(
        "https://127.0.0.1", "sts.amazonaws.com/production", "local/model-deploy", "main", 7, 1
    )
    token = id_tokens.issue(claims)
    assert id_tokens.claims_of(token)["sub"] == "project_path:local/model-deploy:ref_type:branch:ref:main"
    assert id_tokens.claims_of(token)["aud"] == "sts.amazonaws.com/production"
