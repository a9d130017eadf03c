"""Production in its own account on the local stack: the deploy CLI as CI runs it (own processes), the tooling
account's credentials for build, moto STS credentials of the prod account for `deploy-stage prod`.

moto keeps accounts apart (an assumed role's keys act in the role's account); the stack's emulators (gateway,
runtime, registry reads) must too: the prod endpoint exists in prod's account only, and serves the version
approved in the tooling account, read from the tooling registry and bucket.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import random
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import boto3
import numpy as np
import pytest
import xgboost
from botocore.config import Config
from botocore.exceptions import ClientError

from local_aws import LocalStack

REPO_ROOT = Path(__file__).resolve().parents[1]
ABALONE_CSV = REPO_ROOT.parent / "shared" / "datasets" / "abalone.csv"
TOOLING = "123456789012"  # moto's default account: the stack's own
PROD = "210987654321"
PROJECT = "abalone"
PROD_DEPLOY_ROLE = f"arn:aws:iam::{PROD}:role/{PROJECT}-prod-deploy"
PROD_EXECUTION_ROLE = f"arn:aws:iam::{PROD}:role/{PROJECT}-prod-model-execution"
PROD_CAPTURE_BUCKET = f"{PROJECT}-prod-capture-{PROD}"
XGBOOST_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
NO_RETRIES = Config(retries={"max_attempts": 1})


def model_and_rows() -> tuple[bytes, np.ndarray]:
    """A small real XGBoost model on abalone (model.tar.gz as the built-in algorithm writes it), and rows for it."""
    with ABALONE_CSV.open() as handle:
        records = random.Random(7).sample(list(csv.DictReader(handle)), 200)  # noqa: S311 - a fixed small sample
    features = ["length", "diameter", "height", "whole_weight", "shucked_weight", "viscera_weight", "shell_weight"]
    x = np.array([[float(r[f]) for f in features] for r in records])
    booster = xgboost.train(
        {"max_depth": 3, "seed": 7, "verbosity": 0}, xgboost.DMatrix(x, label=[float(r["rings"]) for r in records]), 10
    )
    raw = bytes(booster.save_raw("json"))
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        info = tarfile.TarInfo("xgboost-model")
        info.size = len(raw)
        archive.addfile(info, io.BytesIO(raw))
    return buffer.getvalue(), x[:5]


def session_env(stack_env: dict, credentials: dict | None = None, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SAGEMAKER_", "MODEL_", "PROD_"))}
    env |= stack_env | {"AWS_MAX_ATTEMPTS": "1", "DEPLOY_POLL_SECONDS": "0.05"} | extra
    if credentials:
        env |= {
            "AWS_ACCESS_KEY_ID": credentials["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": credentials["SecretAccessKey"],
            "AWS_SESSION_TOKEN": credentials["SessionToken"],
        }
    return env


def clients(stack_env: dict, credentials: dict | None = None):
    keys = {
        "aws_access_key_id": stack_env["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": stack_env["AWS_SECRET_ACCESS_KEY"],
    }
    if credentials:
        keys = {
            "aws_access_key_id": credentials["AccessKeyId"],
            "aws_secret_access_key": credentials["SecretAccessKey"],
            "aws_session_token": credentials["SessionToken"],
        }
    endpoints = {
        "sagemaker": stack_env["AWS_ENDPOINT_URL_SAGEMAKER"],
        "sagemaker-runtime": stack_env["AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"],
    }

    def client(service: str):
        url = endpoints.get(service, stack_env["AWS_ENDPOINT_URL"])
        return boto3.client(service, region_name="us-east-1", endpoint_url=url, config=NO_RETRIES, **keys)

    return client


@pytest.mark.skipif(not ABALONE_CSV.exists(), reason="needs ../shared/datasets/abalone.csv")
def test_prod_in_its_own_account_serves_the_version_approved_in_tooling(tmp_path):
    # The deploy repo as a team with prod in its own account has it: prod-config.json names that account.
    repo = tmp_path / "model-deploy"
    shutil.copytree(REPO_ROOT / "model-deploy", repo, ignore=shutil.ignore_patterns("build", "tests", "*.egg-info"))
    prod_config = json.loads((repo / "prod-config.json").read_text())
    prod_config["AccountId"] = PROD
    prod_config["Parameters"] |= {"ModelExecutionRoleArn": PROD_EXECUTION_ROLE, "ArtifactBucket": PROD_CAPTURE_BUCKET}
    (repo / "prod-config.json").write_text(json.dumps(prod_config, indent=2))

    with LocalStack(state_dir=tmp_path / "stack", local_gitlab=False) as stack:
        env = stack.env
        tooling = clients(env)
        bucket = env["ARTIFACT_BUCKET"]

        # Tooling: a version registered and approved the way model-build and approve-model do it.
        tar, rows = model_and_rows()
        evaluation = json.dumps({"regression_metrics": {"rmse": {"value": 2.2}}}).encode()
        tooling("s3").put_object(Bucket=bucket, Key="run-1/model.tar.gz", Body=tar)
        tooling("s3").put_object(Bucket=bucket, Key="run-1/evaluation.json", Body=evaluation)
        arn = tooling("sagemaker").create_model_package(
            ModelPackageGroupName=env["MODEL_PACKAGE_GROUP_NAME"],
            ModelApprovalStatus="Approved",
            InferenceSpecification={
                "Containers": [{"Image": XGBOOST_IMAGE, "ModelDataUrl": f"s3://{bucket}/run-1/model.tar.gz"}],
                "SupportedContentTypes": ["text/csv"],
                "SupportedResponseMIMETypes": ["text/csv"],
            },
            ModelMetrics={
                "ModelQuality": {
                    "Statistics": {"ContentType": "application/json", "S3Uri": f"s3://{bucket}/run-1/evaluation.json"}
                }
            },
            CustomerMetadataProperties={
                "ModelDataSha256": hashlib.sha256(tar).hexdigest(),
                "EvaluationSha256": hashlib.sha256(evaluation).hexdigest(),
            },
        )["ModelPackageArn"]
        assert f":{TOOLING}:model-package/" in arn

        # Prod: the deploy role's credentials, from moto's STS; prod-account.yml's capture bucket.
        prod_credentials = tooling("sts").assume_role(RoleArn=PROD_DEPLOY_ROLE, RoleSessionName="production-deploy")[
            "Credentials"
        ]
        prod = clients(env, prod_credentials)
        assert prod("sts").get_caller_identity()["Account"] == PROD
        prod("s3").create_bucket(Bucket=PROD_CAPTURE_BUCKET)

        project = {
            "SAGEMAKER_PROJECT_NAME": PROJECT,
            "SAGEMAKER_PROJECT_ID": "p-local",
            "MODEL_EXECUTION_ROLE_ARN": f"arn:aws:iam::{TOOLING}:role/{PROJECT}-model-execution",
            "MODEL_PACKAGE_ARN": arn,
        }

        def deploy(*argv: str, env: dict) -> subprocess.CompletedProcess:
            return subprocess.run(
                [sys.executable, "-m", "deploy", *argv],
                cwd=repo,
                env=env | {"PYTHONPATH": str(repo)},
                capture_output=True,
                text=True,
                timeout=120,
            )

        built = deploy("build", env=session_env(env, **project))
        assert built.returncode == 0, built.stdout + built.stderr
        # The tooling account's credentials cannot deploy prod: refused, naming both accounts.
        refused = deploy("deploy-stage", "prod", env=session_env(env, **project))
        assert refused.returncode == 1
        assert f"puts it in account {PROD}, but the credentials are for account {TOOLING}" in refused.stderr
        deployed = deploy("deploy-stage", "prod", env=session_env(env, prod_credentials, **project))
        assert deployed.returncode == 0, deployed.stdout + deployed.stderr
        assert f"prod is in account {PROD}: deploying as arn:aws:sts::{PROD}:assumed-role/" in deployed.stdout

        # The prod stack and endpoint are prod's, and nowhere else.
        stack_name = f"sagemaker-{PROJECT}-deploy-prod"
        outputs = prod("cloudformation").describe_stacks(StackName=stack_name)["Stacks"][0]["Outputs"]
        endpoint_name = {o["OutputKey"]: o["OutputValue"] for o in outputs}["EndpointName"]
        with pytest.raises(ClientError):
            tooling("cloudformation").describe_stacks(StackName=stack_name)
        with pytest.raises(ClientError, match="Could not find endpoint"):
            tooling("sagemaker").describe_endpoint(EndpointName=endpoint_name)
        assert tooling("sagemaker").list_endpoints()["Endpoints"] == []

        # It serves the tooling account's approved version: its model names the tooling package ARN...
        endpoint = prod("sagemaker").describe_endpoint(EndpointName=endpoint_name)
        config = prod("sagemaker").describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
        model = prod("sagemaker").describe_model(ModelName=config["ProductionVariants"][0]["ModelName"])
        assert model["PrimaryContainer"]["ModelPackageName"] == arn
        assert model["ExecutionRoleArn"] == PROD_EXECUTION_ROLE
        # ...and its predictions are that model's, read from the tooling bucket through the tooling registry.
        body = "\n".join(",".join(f"{v:g}" for v in row) for row in rows)
        answer = prod("sagemaker-runtime").invoke_endpoint(
            EndpointName=endpoint_name, ContentType="text/csv", Body=body
        )
        predictions = [float(line) for line in answer["Body"].read().decode().split()]
        booster = xgboost.Booster()
        with tarfile.open(fileobj=io.BytesIO(tar)) as archive:
            booster.load_model(bytearray(archive.extractfile("xgboost-model").read()))
        expected = booster.predict(
            xgboost.DMatrix(np.array([[float(v) for v in line.split(",")] for line in body.split("\n")]))
        )
        assert predictions == [float(value) for value in expected]
        # The tooling account's runtime has no such endpoint: AWS's answer, naming the caller's account.
        with pytest.raises(ClientError, match=f"Endpoint {endpoint_name} of account {TOOLING} not found"):
            tooling("sagemaker-runtime").invoke_endpoint(EndpointName=endpoint_name, ContentType="text/csv", Body=body)

        # summary reads prod with prod's credentials (its deploy role, assumed), staging with the tooling ones.
        summary = deploy("summary", env=session_env(env, **project, PROD_DEPLOY_ROLE_ARN=PROD_DEPLOY_ROLE))
        assert summary.returncode == 0, summary.stdout + summary.stderr
        prod_line = next(line for line in summary.stdout.splitlines() if line.strip().startswith("prod"))
        assert f"endpoint {endpoint_name} InService, serves {PROJECT}/1" in prod_line
        # Without a way into prod's account it says so, rather than "no stack" read in the wrong account.
        blind = deploy("summary", env=session_env(env, **project))
        prod_line = next(line for line in blind.stdout.splitlines() if line.strip().startswith("prod"))
        assert f"not read: prod is in account {PROD}" in prod_line and "PROD_DEPLOY_ROLE_ARN" in prod_line
