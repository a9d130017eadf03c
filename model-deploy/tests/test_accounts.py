"""Stages in their own AWS account: the stage configs name it, build hands the tooling account's package
ARN to it, and deploy refuses credentials of any other account. One account stays exactly as it was."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.config import Config

from deploy import accounts, aws, stage_config
from deploy.errors import DeployError

from .conftest import ACCOUNT, REGION

PROD = "210987654321"
PROD_ROLE = f"arn:aws:iam::{PROD}:role/proj-prod-model-execution"
REAL_LOAD = stage_config.load


def prod_in(account: str = PROD, region: str = "", **parameters: str):
    """stage_config.load with prod in its own account, as a team's prod-config.json would say."""

    def load(stage: str, *args):
        config = REAL_LOAD(stage, *args)
        if stage != "prod":
            return config
        own = {"ModelExecutionRoleArn": PROD_ROLE, "ArtifactBucket": "proj-prod-capture", "KmsKeyArn": ""}
        return {
            **config,
            "AccountId": account,
            "Region": region,
            "Parameters": {**config["Parameters"], **own, **parameters},
        }

    return load


def release(project) -> dict:
    return json.loads((project.build_dir / "release.json").read_text())


# -- one account ---------------------------------------------------------------------------------
def test_the_shipped_configs_keep_both_stages_in_the_projects_account():
    for stage in ("staging", "prod"):
        assert accounts.of_stage(REAL_LOAD(stage), stage) == ("", "")


def test_one_account_release_and_deploy_never_ask_sts(project, monkeypatch):
    arn = project.register()
    monkeypatch.setenv("MODEL_PACKAGE_ARN", arn)
    real_client = aws.client

    def client(service, region):
        assert service != "sts", "the single-account path must not call STS"
        return real_client(service, region)

    monkeypatch.setattr(aws, "client", client)
    assert project.run("build") == 0
    prod = release(project)["stages"]["prod"]
    assert (prod["account_id"], prod["region"]) == ("", "")
    assert prod["parameters"]["ModelExecutionRoleArn"] == project.environment["MODEL_EXECUTION_ROLE_ARN"]
    assert prod["parameters"]["ArtifactBucket"] == project.bucket
    assert project.run("deploy-stage", "prod") == 0


# -- prod in its own account -----------------------------------------------------------------------
def test_build_hands_prod_the_tooling_package_and_prods_own_resources(project, monkeypatch):
    monkeypatch.setattr(stage_config, "load", prod_in())
    arn = project.register()
    monkeypatch.setenv("MODEL_PACKAGE_ARN", arn)
    assert project.run("build") == 0
    stages = release(project)["stages"]
    assert stages["prod"]["account_id"] == PROD
    assert stages["prod"]["parameters"]["ModelPackageArn"] == arn  # the tooling account's ARN
    assert f":{ACCOUNT}:model-package/" in arn
    assert stages["prod"]["parameters"]["ModelExecutionRoleArn"] == PROD_ROLE
    assert stages["prod"]["parameters"]["ArtifactBucket"] == "proj-prod-capture"
    # staging stays with the project's variables
    assert stages["staging"]["account_id"] == ""
    assert stages["staging"]["parameters"]["ArtifactBucket"] == project.bucket


def test_deploy_refuses_prod_with_the_tooling_accounts_credentials(project, monkeypatch, capsys):
    monkeypatch.setattr(stage_config, "load", prod_in())
    monkeypatch.setenv("MODEL_PACKAGE_ARN", project.register())
    assert project.run("build") == 0
    capsys.readouterr()

    assert project.run("deploy-stage", "prod") == 1

    error = capsys.readouterr().err
    assert f"puts it in account {PROD}, but the credentials are for account {ACCOUNT}" in error
    assert "Nothing was changed" in error
    cloudformation = boto3.client("cloudformation", region_name=REGION, config=Config(retries={"max_attempts": 1}))
    names = {s["StackName"] for s in cloudformation.list_stacks()["StackSummaries"]}
    assert f"sagemaker-{project.name}-deploy-prod" not in names


def test_rollback_refuses_prod_with_another_accounts_credentials_before_reading_anything(project, monkeypatch, capsys):
    monkeypatch.setattr(stage_config, "load", prod_in())
    assert project.run("rollback", "prod") == 1
    assert f"credentials are for account {ACCOUNT}" in capsys.readouterr().err


def test_credentials_of_the_prod_account_pass_the_check(project):
    # moto keeps accounts apart: an assumed role's credentials act in the role's account.
    sts = boto3.client("sts", region_name=REGION)
    assumed = sts.assume_role(RoleArn=f"arn:aws:iam::{PROD}:role/proj-prod-deploy", RoleSessionName="ci")
    creds = assumed["Credentials"]
    prod_sts = boto3.client(
        "sts",
        region_name=REGION,
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )
    assert accounts.require_credentials_for(prod_sts, "prod", PROD).startswith(f"arn:aws:sts::{PROD}:assumed-role/")


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"AccountId": "21098765432"}, "AccountId must be 12 digits"),
        ({"Region": "eu-west-1"}, "without AccountId"),
        ({"AccountId": PROD, "Parameters": {}}, "ModelExecutionRoleArn, ArtifactBucket"),
        (
            {
                "AccountId": PROD,
                "Parameters": {"ModelExecutionRoleArn": f"arn:aws:iam::{ACCOUNT}:role/x", "ArtifactBucket": "b"},
            },
            f"is in account {ACCOUNT}, not in the stage's account {PROD}",
        ),
    ],
)
def test_a_stage_account_that_cannot_work_is_named(config, message):
    with pytest.raises(DeployError, match=message):
        accounts.of_stage(config, "prod")


def test_a_stage_in_another_region_than_the_registry_is_refused(project, monkeypatch, capsys):
    monkeypatch.setattr(stage_config, "load", prod_in(region="eu-west-1"))
    monkeypatch.setenv("MODEL_PACKAGE_ARN", project.register())
    assert project.run("build") == 1
    assert "SageMaker creates a model from a package of its own region only" in capsys.readouterr().err


def test_rollback_lists_the_tooling_group_by_arn_from_another_account():
    arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/proj/3"
    assert (
        accounts.group_reference(arn, "proj", PROD) == f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package-group/proj"
    )
    assert accounts.group_reference(arn, "proj", "") == "proj"
