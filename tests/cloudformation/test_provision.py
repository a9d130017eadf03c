"""project_tools/provision_project.py seed: the workstation path seeds exactly like the custom resource."""

from __future__ import annotations

import json

import boto3
import pytest
from cfnlint.decode import cfn_yaml

from lambdas.seed_code import seeding
from project_tools import package_lambdas, provision_project

from .cfn_testkit import PERSONAL_TOKEN, REGION, create_secret

NAMESPACE = "ml-team/abalone"


def described_stack(template: dict, parameters: dict, outputs: dict) -> dict:
    """describe_stacks' answer for a deployed project stack."""
    given = {name: spec.get("Default", "") for name, spec in template["Parameters"].items()} | parameters
    return {
        "StackName": "abalone",
        "StackId": f"arn:aws:cloudformation:{REGION}:123456789012:stack/abalone/guid",
        "StackStatus": "CREATE_COMPLETE",
        "Parameters": [{"ParameterKey": k, "ParameterValue": v} for k, v in given.items()],
        "Outputs": [{"OutputKey": k, "OutputValue": v} for k, v in outputs.items()],
    }


def test_workstation_seed_uses_the_stack_outputs_and_stores_the_trigger_token(gitlab_fake, capsys):
    template = cfn_yaml.load(str(provision_project.TEMPLATE))
    namespace_id = gitlab_fake.add_namespace(NAMESPACE)
    role = "arn:aws:iam::123456789012:role/"
    outputs = {
        "BuildRepositoryName": "abalone-model-build",
        "DeployRepositoryName": "abalone-model-deploy",
        "ArtifactBucketName": "abalone-artifacts",
        "KmsKeyArn": "arn:aws:kms:us-east-1:123456789012:key/abc",
        "ModelPackageGroupName": "abalone",
        "SageMakerPipelineRoleArn": role + "pipeline",
        "ModelExecutionRoleArn": role + "model",
        "GitLabBuildRoleArn": role + "build",
        "GitLabDeployStagingRoleArn": role + "staging",
        "GitLabDeployProdRoleArn": role + "prod",
        "TriggerSecretArn": create_secret("abalone/trigger", '{"status": "not seeded yet"}'),
    }
    assert set(outputs) <= set(template["Outputs"])  # every output the command reads exists
    create_secret("sagemaker-gitlab-seed-token", json.dumps({"token": PERSONAL_TOKEN}))
    stack = described_stack(
        template,
        {
            "SageMakerProjectName": "abalone",
            "SageMakerProjectId": "p-abc",
            "GitLabServerUrl": gitlab_fake.url,
            "GitLabNamespaceId": str(namespace_id),
            "GitLabNamespacePath": NAMESPACE,
            "SeedRepositories": "from-workstation",
        },
        outputs,
    )
    secrets = boto3.client("secretsmanager", region_name=REGION)

    provision_project.seed(stack, token=None, secrets=secrets)

    build = gitlab_fake.project(f"{NAMESPACE}/abalone-model-build")
    deploy = gitlab_fake.project(f"{NAMESPACE}/abalone-model-deploy")
    for project, folder in ((build, "model-build"), (deploy, "model-deploy")):
        expected = {f.path: f.content for f in seeding.read_seed_archive(package_lambdas.seed_archive(folder), folder)}
        assert {path: content for path, (content, _) in project.branches["main"].items()} == expected
    assert deploy.variables["PROD_DEPLOY_ROLE_ARN"] == {
        "variable_type": "env_var",
        "key": "PROD_DEPLOY_ROLE_ARN",
        "value": role + "prod",
        "masked": True,
        "protected": True,
        "environment_scope": "production",
    }
    (trigger,) = deploy.triggers.values()
    build = next(project for project in gitlab_fake.projects.values() if project is not deploy)
    (build_trigger,) = build.triggers.values()  # the retraining decision's
    stored = json.loads(secrets.get_secret_value(SecretId=outputs["TriggerSecretArn"])["SecretString"])
    assert stored == {
        "project_id": deploy.id,
        "ref": "main",
        "token": trigger["token"],
        "build": {"project_id": build.id, "ref": "main", "token": build_trigger["token"]},
    }
    printed = capsys.readouterr().out
    assert "created, seeded on main" in printed and trigger["token"] not in printed and PERSONAL_TOKEN not in printed
    assert build_trigger["token"] not in printed


def test_seed_properties_match_the_custom_resource():
    template = cfn_yaml.load(str(provision_project.TEMPLATE))
    resource = set(template["Resources"]["SeedRepositoriesResource"]["Properties"])
    stack = described_stack(template, {}, {name: "x" for name in template["Outputs"]})

    rebuilt = set(provision_project.seed_properties(stack))

    # Only what the Lambda alone needs differs: its service token and where it finds the archives.
    assert resource - rebuilt == {"ServiceToken", "SeedBucket", "ModelBuildSeedKey", "ModelDeploySeedKey"}
    assert rebuilt <= resource


def test_bootstrap_creates_then_updates_the_token_secret_and_checks_the_token(gitlab_fake, monkeypatch, capsys):
    from project_tools import bootstrap_gitlab_token as bootstrap

    secrets = boto3.client("secretsmanager", region_name=REGION)
    arn, first = bootstrap.store("sagemaker-gitlab-seed-token", "glpat-old-token-000000", None, secrets)
    same_arn, second = bootstrap.store("sagemaker-gitlab-seed-token", PERSONAL_TOKEN, None, secrets)

    assert (first, second) == ("created", "updated") and same_arn == arn
    value = secrets.get_secret_value(SecretId="sagemaker-gitlab-seed-token")["SecretString"]
    assert seeding.personal_token_from_secret(value) == PERSONAL_TOKEN  # the seed code reads what this writes

    gitlab_fake.user = {"id": 1, "username": "seed-bot"}
    assert bootstrap.check_token(gitlab_fake.url, PERSONAL_TOKEN) == "seed-bot"
    monkeypatch.setenv("GITLAB_TOKEN", "glpat-typo")
    with pytest.raises(SystemExit, match=r"rejected the token \(401\)"):
        bootstrap.main(["--gitlab-url", gitlab_fake.url])
    assert "glpat-typo" not in capsys.readouterr().out


def test_an_update_keeps_the_values_of_parameters_not_given():
    """Like `aws cloudformation deploy`: redeploying new code must not reset SeedRepositories or drop
    the GitLab group (required, no default) just because the command line did not repeat them."""
    from botocore.stub import Stubber

    cloudformation = boto3.client(
        "cloudformation", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x"
    )
    stack_id = f"arn:aws:cloudformation:{REGION}:123456789012:stack/abalone/guid"
    url = "https://assets.s3.us-east-1.amazonaws.com/templates/project-0123.yml"
    previous = {"SageMakerProjectName": "abalone", "GitLabNamespaceId": "42", "SeedRepositories": "from-workstation"}
    previous["ParameterTheNewTemplateDropped"] = "x"
    stack = {
        "StackName": "abalone",
        "StackId": stack_id,
        "CreationTime": "2026-11-23T10:00:00Z",
        "StackStatus": "UPDATE_COMPLETE",
        "Parameters": [{"ParameterKey": k, "ParameterValue": v} for k, v in previous.items()],
    }
    declared = ["SageMakerProjectName", "GitLabNamespaceId", "SeedRepositories", "AssetsBucket", "SeedFunctionKey"]
    with Stubber(cloudformation) as stub:
        stub.add_response("describe_stacks", {"Stacks": [stack]}, {"StackName": "abalone"})
        stub.add_response(
            "get_template_summary", {"Parameters": [{"ParameterKey": k} for k in declared]}, {"TemplateURL": url}
        )
        # The events already there, so only this update's are printed (deploy/stack.py's EventLog).
        stub.add_response("describe_stack_events", {"StackEvents": []}, {"StackName": stack_id})
        stub.add_response(
            "update_stack",
            {"StackId": stack_id},
            {
                "StackName": "abalone",
                "TemplateURL": url,
                "Capabilities": ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"],
                "Parameters": [
                    {"ParameterKey": "AssetsBucket", "ParameterValue": "assets"},
                    {"ParameterKey": "SeedFunctionKey", "ParameterValue": "assets/seed_code-1.zip"},
                    {"ParameterKey": "GitLabNamespaceId", "UsePreviousValue": True},
                    {"ParameterKey": "SageMakerProjectName", "UsePreviousValue": True},
                    {"ParameterKey": "SeedRepositories", "UsePreviousValue": True},
                ],
            },
        )
        stub.add_response("describe_stack_events", {"StackEvents": []}, {"StackName": stack_id})
        stub.add_response("describe_stacks", {"Stacks": [stack]}, {"StackName": stack_id})
        stub.add_response("describe_stack_events", {"StackEvents": []}, {"StackName": stack_id})  # the last ones

        result = provision_project.deploy(
            cloudformation, "abalone", url, {"AssetsBucket": "assets", "SeedFunctionKey": "assets/seed_code-1.zip"}
        )

        stub.assert_no_pending_responses()
    assert result["StackStatus"] == "UPDATE_COMPLETE"


def test_aws_errors_end_in_a_message_not_a_traceback(monkeypatch, capsys):
    # Nothing listens on port 9: the AWS call fails the way a wrong endpoint or region does.
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    assert provision_project.main(["delete", "--stack-name", "sagemaker-abalone-project"]) == 1
    error = capsys.readouterr().err
    assert error.startswith("error: ") and "check the AWS credentials and region" in error
