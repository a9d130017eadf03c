"""The project's own emulators act in the caller's account, and keep it across a restart (issue 15).

- idempotency tokens belong to the account that sent them: one ClientToken in two accounts is two requests;
- a Lambda function runs with its execution role's credentials, so its handler acts in the function's account;
- the journal replays a request signed with STS session keys into the account those keys acted in, although
  the next start's moto knows none of those keys;
- `LocalStack(prod_account_id=...)` bootstraps prod-account.yml in that account only.
"""

from __future__ import annotations

import json
import zipfile
from io import BytesIO

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from local_aws import LocalStack, LocalStackError
from local_aws.awslambda.invoke import invoke
from local_aws.core import api, lifecycle

TOOLING = "123456789012"
PROD = "210987654321"
XGBOOST_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
NO_RETRIES = Config(retries={"max_attempts": 1})


def pattern(source: str) -> str:
    return json.dumps({"source": [source]})


def session_of(stack: LocalStack, account_id: str) -> boto3.session.Session:
    """Credentials of a role in `account_id`, from moto's STS (what an assumed role hands a client)."""
    role = f"arn:aws:iam::{account_id}:role/test-admin"
    credentials = stack.client("sts").assume_role(RoleArn=role, RoleSessionName="test")["Credentials"]
    return boto3.session.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=stack.env["AWS_REGION"],
    )


def client(stack: LocalStack, session: boto3.session.Session, service: str):
    env = stack.env
    url = env["AWS_ENDPOINT_URL_SAGEMAKER"] if service == "sagemaker" else env["AWS_ENDPOINT_URL"]
    return session.client(service, endpoint_url=url, config=NO_RETRIES)


def test_one_client_token_in_two_accounts_is_two_requests(local_stack):
    bucket = local_stack.env["ARTIFACT_BUCKET"]
    request = {
        "ModelPackageGroupName": "tokens-per-account",
        "ClientToken": "same-token-in-both-accounts",
        "InferenceSpecification": {
            "Containers": [{"Image": XGBOOST_IMAGE, "ModelDataUrl": f"s3://{bucket}/m/model.tar.gz"}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["text/csv"],
        },
    }
    answers = {}
    for account in (TOOLING, PROD):
        sagemaker = client(local_stack, session_of(local_stack, account), "sagemaker")
        sagemaker.create_model_package_group(ModelPackageGroupName="tokens-per-account")
        answers[account] = sagemaker.create_model_package(**request)["ModelPackageArn"]
        # The same token again in the same account: the first answer, nothing created.
        assert sagemaker.create_model_package(**request)["ModelPackageArn"] == answers[account]
        listed = sagemaker.list_model_packages(ModelPackageGroupName="tokens-per-account")["ModelPackageSummaryList"]
        assert [p["ModelPackageArn"] for p in listed] == [answers[account]]
    assert f":{TOOLING}:model-package/tokens-per-account/1" in answers[TOOLING]
    assert f":{PROD}:model-package/tokens-per-account/1" in answers[PROD]


def test_a_lambda_handler_acts_in_its_functions_account(local_stack, tmp_path):
    env, name = local_stack.env, "who-am-i"
    code = 'import boto3\n\ndef handler(event, context):\n    return boto3.client("sts").get_caller_identity()\n'
    (tmp_path / "lambda" / name).mkdir(parents=True)
    (tmp_path / "lambda" / name / "app.py").write_text(code)
    archive = BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("app.py", code)
    # The function and its role in the prod account, as a rule's target there would be.
    prod = lambda service: api.moto_client(local_stack.info["moto_url"], service, env["AWS_REGION"], PROD)  # noqa: E731
    trust = {"Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:*"}]}
    role = prod("iam").create_role(RoleName="who-am-i-role", AssumeRolePolicyDocument=json.dumps(trust))["Role"]
    prod("lambda").create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=role["Arn"],
        Handler="app.handler",
        Code={"ZipFile": archive.getvalue()},
    )
    identity = invoke(
        name,
        {},
        client=prod,
        stack_environment=env,  # the stack's endpoints and its own (tooling) dummy keys
        task_roots=tmp_path / "lambda",
        logs=tmp_path / "logs",
    )
    assert identity["Account"] == PROD
    assert identity["Arn"] == f"arn:aws:sts::{PROD}:assumed-role/who-am-i-role/{name}"


def test_a_restart_keeps_prod_accounts_state_in_the_prod_account(tmp_path):
    with LocalStack(state_dir=tmp_path, local_gitlab=False, prod_account_id=PROD) as stack:
        tooling = boto3.session.Session(
            aws_access_key_id=stack.env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=stack.env["AWS_SECRET_ACCESS_KEY"],
            region_name=stack.env["AWS_REGION"],
        )
        # The bootstrap: prod-account.yml's stack, roles and OIDC provider in the prod account, none in tooling.
        prod = session_of(stack, PROD)
        outputs = client(stack, prod, "cloudformation").describe_stacks(StackName=lifecycle.PROD_ACCOUNT_STACK)
        outputs = {o["OutputKey"]: o["OutputValue"] for o in outputs["Stacks"][0]["Outputs"]}
        assert outputs["GitLabDeployProdRoleArn"] == f"arn:aws:iam::{PROD}:role/abalone-prod-deploy"
        assert outputs["ModelExecutionRoleArn"] == f"arn:aws:iam::{PROD}:role/abalone-prod-model-execution"
        providers = client(stack, prod, "iam").list_open_id_connect_providers()["OpenIDConnectProviderList"]
        assert [p["Arn"] for p in providers] == [f"arn:aws:iam::{PROD}:oidc-provider/127.0.0.1"]
        with pytest.raises(ClientError):
            client(stack, tooling, "cloudformation").describe_stacks(StackName=lifecycle.PROD_ACCOUNT_STACK)
        # Requests signed with STS session keys, straight to moto, as the production job's are: the rule is put
        # again with a later session's keys, so compaction replays that request in the first one's place, before
        # the AssumeRole that made its keys.
        client(stack, prod, "events").put_rule(Name="prod-rule", EventPattern=pattern("first"))
        later = client(stack, session_of(stack, PROD), "events")
        later.put_rule(Name="prod-rule", EventPattern=pattern("last"))

    said = []
    with LocalStack(state_dir=tmp_path, local_gitlab=False, prod_account_id=PROD, progress=said.append) as stack:
        assert any(f"prod account {PROD}: stack {lifecycle.PROD_ACCOUNT_STACK} (already there)" in s for s in said)
        assert not [s for s in said if "refused on replay" in s], said
        prod = session_of(stack, PROD)  # new keys: the old ones died with the old moto
        assert client(stack, prod, "events").describe_rule(Name="prod-rule")["EventPattern"] == pattern("last")
        assert "prod-rule" not in [r["Name"] for r in stack.client("events").list_rules()["Rules"]]
        assert client(stack, prod, "cloudformation").describe_stacks(StackName=lifecycle.PROD_ACCOUNT_STACK)


@pytest.mark.parametrize(
    ("given", "problem"),
    [("21098765432", "not an AWS account id: give 12 digits"), (TOOLING, "is the tooling account itself")],
)
def test_a_wrong_prod_account_is_refused_with_the_fix(given, problem):
    with pytest.raises(LocalStackError, match=problem):
        LocalStack(prod_account_id=given)


def test_a_pipeline_in_another_account_runs_its_steps_there(local_stack):
    """A step's process acts with the pipeline role's credentials, as SageMaker's jobs do: in the pipeline's account."""
    import time

    prod = session_of(local_stack, PROD)
    s3, sagemaker = client(local_stack, prod, "s3"), client(local_stack, prod, "sagemaker")
    bucket = "prod-pipeline-steps"
    s3.create_bucket(Bucket=bucket)
    script = b'import boto3, json\nprint("identity", json.dumps(boto3.client("sts").get_caller_identity()))\n'
    s3.put_object(Bucket=bucket, Key="code/script.py", Body=script)
    step = {
        "Name": "WhoAmI",
        "Type": "Processing",
        "Arguments": {
            "AppSpecification": {
                "ImageUri": "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3",
                "ContainerEntrypoint": ["python3", "/opt/ml/processing/input/code/script.py"],
            },
            "ProcessingInputs": [
                {
                    "InputName": "code",
                    "S3Input": {"S3Uri": f"s3://{bucket}/code/script.py", "LocalPath": "/opt/ml/processing/input/code"},
                }
            ],
        },
    }
    definition = json.dumps({"Version": "2020-12-01", "Steps": [step]})
    role = f"arn:aws:iam::{PROD}:role/prod-pipeline"
    sagemaker.create_pipeline(PipelineName="who-am-i", PipelineDefinition=definition, RoleArn=role)
    arn = sagemaker.start_pipeline_execution(PipelineName="who-am-i")["PipelineExecutionArn"]
    assert arn.split(":")[4] == PROD
    for _ in range(600):
        execution = sagemaker.describe_pipeline_execution(PipelineExecutionArn=arn)
        if execution["PipelineExecutionStatus"] != "Executing":
            break
        time.sleep(0.1)
    assert execution["PipelineExecutionStatus"] == "Succeeded", execution.get("FailureReason")
    logs = list(local_stack.state_dir.rglob("output.log"))
    said = [line for log in logs for line in log.read_text().splitlines() if line.startswith("identity ")]
    identities = [json.loads(line.split(" ", 1)[1]) for line in said]
    assert [i["Arn"] for i in identities if "prod-pipeline" in i["Arn"]] == [
        f"arn:aws:sts::{PROD}:assumed-role/prod-pipeline/SageMaker-who-am-i"
    ]
    # The tooling account has no such pipeline, and a role of another account is refused as PassRole refuses it.
    with pytest.raises(ClientError):
        local_stack.client("sagemaker").describe_pipeline(PipelineName="who-am-i")
    sagemaker.create_pipeline(
        PipelineName="foreign-role", PipelineDefinition=definition, RoleArn=f"arn:aws:iam::{TOOLING}:role/x"
    )
    with pytest.raises(ClientError, match=f"is not in its account {PROD}"):
        sagemaker.start_pipeline_execution(PipelineName="foreign-role")
