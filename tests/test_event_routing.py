"""An approval deploys through the project template's own route, as on AWS: the registry's event, the
template's EventBridge rule (in moto), the trigger Lambda's real handler, the local GitLab's deploy pipeline.

Nothing here calls the handler or reads the events file: the test approves with scripts/approve-model and
follows the local GitLab with python-gitlab, as a person would.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from botocore.exceptions import ClientError

from local_aws import LocalStack
from local_aws.cloudformation.template import load, resolve
from local_aws.core.lifecycle import PROJECT_STACK, PROJECT_TEMPLATE
from local_gitlab import pipelines
from local_gitlab.service import DEPLOY_PROJECT_ID

REPO_ROOT = Path(__file__).resolve().parents[1]
ABALONE_CSV = REPO_ROOT.parent / "shared" / "datasets" / "abalone.csv"
GCL = REPO_ROOT / "node_modules" / ".bin" / "gitlab-ci-local"
XGBOOST_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
BUCKET = "sagemaker-local-artifacts"
PROD = "210987654321"  # production's own account in the two-account test

pytestmark = pytest.mark.skipif(not GCL.exists(), reason="gitlab-ci-local is not installed: `make gitlab-ci-local`")


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with LocalStack(state_dir=tmp_path_factory.mktemp("routing")) as running:
        yield running


def register_version(stack: LocalStack, name: str) -> str:
    """A version as the build registers it: a real XGBoost model, its test split and its evaluation."""
    import xgboost

    frame = pd.get_dummies(pd.read_csv(ABALONE_CSV), columns=["sex"], dtype=float)  # sex_F, sex_I, sex_M last
    labels, features = frame.pop("rings").to_numpy(), frame.to_numpy(np.float32)
    booster = xgboost.train(
        {"objective": "reg:squarederror", "max_depth": 4, "seed": 1},
        xgboost.DMatrix(features[:3500], labels[:3500]),
        30,
    )
    test_rows = np.column_stack([labels[3500:], features[3500:]])
    rmse = float(np.sqrt(np.mean((booster.predict(xgboost.DMatrix(features[3500:])) - labels[3500:]) ** 2)))

    s3 = stack.client("s3")
    model = bytes(booster.save_raw(raw_format="ubj"))
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        member = tarfile.TarInfo("xgboost-model")
        member.size = len(model)
        tar.addfile(member, io.BytesIO(model))
    s3.put_object(Bucket=BUCKET, Key=f"tests/{name}/model.tar.gz", Body=archive.getvalue())
    csv = io.StringIO()
    np.savetxt(csv, test_rows, delimiter=",", fmt="%.6g")
    s3.put_object(Bucket=BUCKET, Key=f"tests/{name}/test/test.csv", Body=csv.getvalue().encode())
    evaluation = {"regression_metrics": {"rmse": {"value": rmse}, "mse": {"value": rmse**2}}}
    s3.put_object(Bucket=BUCKET, Key=f"tests/{name}/evaluation.json", Body=json.dumps(evaluation).encode())
    arn = stack.client("sagemaker").create_model_package(
        ModelPackageGroupName="abalone",
        InferenceSpecification={
            "Containers": [{"Image": XGBOOST_IMAGE, "ModelDataUrl": f"s3://{BUCKET}/tests/{name}/model.tar.gz"}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["text/csv"],
        },
        ModelMetrics={
            "ModelQuality": {
                "Statistics": {
                    "ContentType": "application/json",
                    "S3Uri": f"s3://{BUCKET}/tests/{name}/evaluation.json",
                }
            }
        },
        CustomerMetadataProperties={"TestDataUrl": f"s3://{BUCKET}/tests/{name}/test"},
        ModelApprovalStatus="PendingManualApproval",
    )["ModelPackageArn"]
    # Pinned as run_pipeline pins what it registers, here through the command for older packages.
    command = [sys.executable, str(REPO_ROOT / "scripts" / "approve-model"), "pin", "--arn", arn]
    pinned = subprocess.run(command, env=stack.environ(), capture_output=True, text=True)
    assert pinned.returncode == 0, pinned.stderr
    assert "ModelDataSha256 = " in pinned.stdout and "EvaluationSha256 = " in pinned.stdout
    return arn


def approve(stack: LocalStack, arn: str) -> None:
    command = [sys.executable, str(REPO_ROOT / "scripts" / "approve-model"), "approve", "--arn", arn]
    done = subprocess.run(
        [*command, "--description", "routing test"], env=stack.environ(), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr


def test_the_rule_and_its_target_are_the_templates_own(stack):
    template = load(PROJECT_TEMPLATE)["Resources"]
    events = stack.client("events")
    rule = events.describe_rule(Name=f"{PROJECT_STACK}-ApprovalRule")
    declared = resolve(template["ApprovalRule"]["Properties"]["EventPattern"], {"SageMakerProjectName": "abalone"})
    assert json.loads(rule["EventPattern"]) == declared
    (target,) = events.list_targets_by_rule(Rule=rule["Name"])["Targets"]
    function = stack.client("lambda").get_function_configuration(FunctionName=target["Arn"].rsplit(":", 1)[-1])
    declared_function = template["TriggerFunction"]["Properties"]
    assert function["Handler"] == declared_function["Handler"] and function["Timeout"] == declared_function["Timeout"]
    assert set(function["Environment"]["Variables"]) == set(declared_function["Environment"]["Variables"])
    assert function["Environment"]["Variables"]["GITLAB_URL"] == stack.info["services"]["gitlab"]["url"]


def test_test_event_pattern_answers_through_the_eventbridge_api(stack):
    events = stack.client("events")
    event = {"id": "1", "account": "123456789012", "source": "aws.sagemaker", "time": "2026-12-01T00:00:00Z"}
    event |= {"region": "us-east-1", "detail-type": "SageMaker Model Package State Change", "resources": []}
    event["detail"] = {"ModelPackageGroupName": "abalone", "ModelApprovalStatus": "Approved"}
    pattern = events.describe_rule(Name=f"{PROJECT_STACK}-ApprovalRule")["EventPattern"]
    assert events.test_event_pattern(EventPattern=pattern, Event=json.dumps(event))["Result"] is True
    event["detail"]["ModelApprovalStatus"] = "PendingManualApproval"
    assert events.test_event_pattern(EventPattern=pattern, Event=json.dumps(event))["Result"] is False


def test_an_approval_triggers_the_deploy_pipeline_with_that_version_and_staging_serves_it(stack):
    arn = register_version(stack, "routed")
    approve(stack, arn)

    gitlab_url = stack.info["services"]["gitlab"]["url"]
    pipeline = pipelines.wait_for_trigger(gitlab_url, DEPLOY_PROJECT_ID, {"MODEL_PACKAGE_ARN": arn})
    jobs = {
        job["name"]: job["status"] for job in pipelines.wait_until_settled(gitlab_url, DEPLOY_PROJECT_ID, pipeline.id)
    }
    log = stack.state_dir / "gitlab" / "pipelines" / str(pipeline.id) / "output.log"
    assert jobs["build"] == jobs["staging-deploy"] == jobs["staging-test"] == "success", log.read_text()[-3000:]
    assert jobs["production-deploy"] == "manual"  # stops at the button, as on GitLab

    assert served_package(stack, "staging") == arn

    # The button, from the shell: scripts/local-gitlab lists the waiting pipeline and presses production-deploy.
    local_gitlab = [sys.executable, str(REPO_ROOT / "scripts" / "local-gitlab"), "--state-dir", str(stack.state_dir)]
    listed = subprocess.run([*local_gitlab, "pipelines"], capture_output=True, text=True, timeout=60)
    assert f"#{pipeline.id} manual: Approved {arn}" in listed.stdout, listed.stdout + listed.stderr
    pressed = subprocess.run(
        [*local_gitlab, "play", str(pipeline.id), "production-deploy"], capture_output=True, text=True, timeout=300
    )
    assert pressed.returncode == 0, pressed.stdout[-3000:] + pressed.stderr
    assert served_package(stack, "prod") == arn
    # One account: the production job has no ID token stand-in and deploys with the ambient credentials, as before.
    assert "production-deploy > AWS: no GitLab ID token in this job, using the ambient credentials" in log.read_text()


def test_with_prod_in_its_own_account_the_production_job_deploys_there_and_nowhere_else(tmp_path):
    """`PROD_ACCOUNT_ID=... make demo`'s path: the stack bootstraps the prod account, the production job exchanges
    its ID token (the local stand-in) for the prod deploy role through moto's STS, and deploy-stage prod creates
    the endpoint in that account, serving the version approved in the tooling account."""
    with LocalStack(state_dir=tmp_path, prod_account_id=PROD) as stack:
        arn = register_version(stack, "two-accounts")
        approve(stack, arn)
        gitlab_url = stack.info["services"]["gitlab"]["url"]
        pipeline = pipelines.wait_for_trigger(gitlab_url, DEPLOY_PROJECT_ID, {"MODEL_PACKAGE_ARN": arn})
        log = stack.state_dir / "gitlab" / "pipelines" / str(pipeline.id) / "output.log"
        jobs = pipelines.wait_until_settled(gitlab_url, DEPLOY_PROJECT_ID, pipeline.id)
        assert [j["status"] for j in jobs if j["name"] != "production-rollback"] == [
            *["success"] * 4,  # build, staging-deploy, staging-test, batch-staging
            "manual",
        ], log.read_text()[-3000:]
        assert served_package(stack, "staging") == arn  # staging stays in the tooling account
        jobs = pipelines.play(gitlab_url, DEPLOY_PROJECT_ID, pipeline.id, "production-deploy")
        assert {j["name"]: j["status"] for j in jobs}["production-deploy"] == "success", log.read_text()[-3000:]

        output = log.read_text()
        assert f"production-deploy > AWS: web identity for arn:aws:iam::{PROD}:role/abalone-prod-deploy" in output
        assert (
            f"prod is in account {PROD}: deploying as arn:aws:sts::{PROD}:assumed-role/abalone-prod-deploy/" in output
        )
        assert "staging-deploy      > AWS: no GitLab ID token in this job, using the ambient credentials" in output
        # The prod stack and endpoint exist in the prod account only, and serve the tooling account's version.
        credentials = stack.client("sts").assume_role(
            RoleArn=f"arn:aws:iam::{PROD}:role/abalone-prod-deploy", RoleSessionName="test"
        )["Credentials"]
        prod = prod_clients(stack, credentials)
        assert served_package(stack, "prod", prod) == arn
        endpoint = prod("sagemaker").list_endpoints()["Endpoints"]
        assert [e["EndpointArn"].split(":")[4] for e in endpoint] == [PROD]
        with pytest.raises(ClientError, match="does not exist"):
            stack.client("cloudformation").describe_stacks(StackName="sagemaker-abalone-deploy-prod")
        tooling_endpoints = [e["EndpointName"] for e in stack.client("sagemaker").list_endpoints()["Endpoints"]]
        assert tooling_endpoints == [next(n for n in endpoint_names(stack.client, "staging") if "Endpoint" in n)]
        model = prod("sagemaker").describe_model(ModelName=prod("sagemaker").list_models()["Models"][0]["ModelName"])
        assert model["ExecutionRoleArn"] == f"arn:aws:iam::{PROD}:role/abalone-prod-model-execution"

        # Rejected: production-rollback runs at once beside staging-rollback, on its own with its own token, and
        # (no earlier Approved version) deletes the prod stack in the prod account.
        command = [sys.executable, str(REPO_ROOT / "scripts" / "approve-model"), "reject", "--arn", arn]
        rejected = subprocess.run(
            [*command, "--description", "test"], env=stack.environ(), capture_output=True, text=True
        )
        assert rejected.returncode == 0, rejected.stderr
        rollback = pipelines.wait_for_trigger(
            gitlab_url, DEPLOY_PROJECT_ID, {"MODEL_PACKAGE_ARN": arn, "MODEL_APPROVAL_STATUS": "Rejected"}
        )
        log = stack.state_dir / "gitlab" / "pipelines" / str(rollback.id) / "output.log"
        jobs = {
            j["name"]: j["status"] for j in pipelines.wait_until_settled(gitlab_url, DEPLOY_PROJECT_ID, rollback.id)
        }
        assert jobs == {"staging-rollback": "success", "production-rollback": "success"}, log.read_text()[-3000:]
        assert f"production-rollback > AWS: web identity for arn:aws:iam::{PROD}:role/abalone-prod-deploy" in (
            log.read_text()
        )
        assert prod("sagemaker").list_endpoints()["Endpoints"] == []


def prod_clients(stack: LocalStack, credentials: dict):
    import boto3

    session = boto3.session.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=stack.env["AWS_REGION"],
    )
    urls = {"sagemaker": stack.env["AWS_ENDPOINT_URL_SAGEMAKER"]}
    return lambda service: session.client(service, endpoint_url=urls.get(service, stack.env["AWS_ENDPOINT_URL"]))


def endpoint_names(client, stage: str) -> list[str]:
    outputs = client("cloudformation").describe_stacks(StackName=f"sagemaker-abalone-deploy-{stage}")
    return [o["OutputValue"] for o in outputs["Stacks"][0]["Outputs"] if o["OutputKey"].startswith("Endpoint")]


def served_package(stack: LocalStack, stage: str, client=None) -> str:
    """The model package the stage's endpoint serves: endpoint -> config -> model -> package."""
    client = client or stack.client
    sagemaker = client("sagemaker")
    outputs = client("cloudformation").describe_stacks(StackName=f"sagemaker-abalone-deploy-{stage}")
    names = [o["OutputValue"] for o in outputs["Stacks"][0]["Outputs"] if o["OutputKey"].startswith("Endpoint")]
    endpoint = sagemaker.describe_endpoint(EndpointName=next(n for n in names if "Endpoint" in n))
    config = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    model = sagemaker.describe_model(ModelName=config["ProductionVariants"][0]["ModelName"])
    return (model.get("PrimaryContainer") or model["Containers"][0])["ModelPackageName"]


def test_with_a_changed_rule_pattern_the_same_approval_triggers_nothing(stack):
    events = stack.client("events")
    rule = events.describe_rule(Name=f"{PROJECT_STACK}-ApprovalRule")
    pattern = json.loads(rule["EventPattern"])
    pattern["detail"]["ModelPackageGroupName"] = ["another-project"]
    events.put_rule(Name=rule["Name"], EventPattern=json.dumps(pattern), State="ENABLED")

    arn = register_version(stack, "unrouted")
    approve(stack, arn)

    with pytest.raises(pipelines.PipelineTimeout):
        pipelines.wait_for_trigger(
            stack.info["services"]["gitlab"]["url"], DEPLOY_PROJECT_ID, {"MODEL_PACKAGE_ARN": arn}, timeout=5
        )
