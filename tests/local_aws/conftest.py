"""Fixtures shared by the local stack tests.

`local_stack` is one stack server for the whole session, started exactly as `scripts/local-stack up`
starts it (plus the test plugin) and stopped by PID at the end. `clients` are boto3 clients that
reach it through the environment it prints, as user code does.
"""

from __future__ import annotations

import io
import pickle
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from local_aws import LocalStack

HERE = Path(__file__).parent
REPO_ROOT = HERE.parents[1]
ABALONE_CSV = REPO_ROOT.parent / "shared" / "datasets" / "abalone.csv"
FEATURES = [
    "length",
    "diameter",
    "height",
    "whole_weight",
    "shucked_weight",
    "viscera_weight",
    "shell_weight",
    "sex_F",
    "sex_I",
    "sex_M",
]
XGBOOST_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
ROLE_ARN = "arn:aws:iam::123456789012:role/local-stack-tests"


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory):
    # Without the local GitLab: an approval here must not start a deploy pipeline (tests/test_event_routing.py
    # tests that route).
    # The alarm tests evaluate on demand at injected times (LocalAws.EvaluateAlarms); the periodic evaluator, at
    # the real time, would race them (an alarm on data of another time is OK for it), so it waits an hour here.
    with pytest.MonkeyPatch.context() as env:
        env.setenv("LOCAL_STACK_ALARM_SECONDS", "3600")
        stack = LocalStack(
            state_dir=tmp_path_factory.mktemp("stack"), plugins=[str(HERE / "stack_plugin.py")], local_gitlab=False
        )
        stack.start()
    yield stack
    stack.stop()


@dataclass
class Clients:
    sagemaker: object
    runtime: object
    s3: object
    moto_sagemaker: object  # straight to moto, bypassing the gateway: to check what it really stored
    moto_s3: object


@pytest.fixture(scope="session")
def clients(local_stack) -> Clients:
    import boto3
    from botocore.config import Config

    env = local_stack.env
    session = boto3.session.Session(
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name=env["AWS_REGION"],
    )
    config = Config(retries={"max_attempts": 1})
    return Clients(
        sagemaker=session.client("sagemaker", endpoint_url=env["AWS_ENDPOINT_URL_SAGEMAKER"], config=config),
        runtime=session.client(
            "sagemaker-runtime", endpoint_url=env["AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"], config=config
        ),
        s3=session.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], config=config),
        moto_sagemaker=session.client("sagemaker", endpoint_url=env["AWS_ENDPOINT_URL"], config=config),
        moto_s3=session.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], config=config),
    )


@pytest.fixture(scope="session")
def abalone() -> tuple[np.ndarray, np.ndarray]:
    """(features float32 [n, 10], rings) of the real data set, columns as the pipeline's test.csv."""
    if not ABALONE_CSV.exists():
        pytest.fail(f"the abalone data set is missing: expected {ABALONE_CSV}")
    frame = pd.read_csv(ABALONE_CSV)
    for sex in "FIM":
        frame[f"sex_{sex}"] = (frame["sex"] == sex).astype(float)
    return frame[FEATURES].to_numpy(np.float32), frame["rings"].to_numpy(np.float32)


@pytest.fixture(scope="session")
def train():
    """train(features, labels, rounds=30, depth=4) -> a real XGBoost Booster."""

    def train_booster(features: np.ndarray, labels: np.ndarray, rounds: int = 30, depth: int = 4):
        import xgboost

        parameters = {
            "objective": "reg:squarederror",
            "max_depth": depth,
            "eta": 0.3,
            "seed": 42,
            "tree_method": "hist",
        }
        return xgboost.train(parameters, xgboost.DMatrix(features, label=labels), num_boost_round=rounds)

    return train_booster


@pytest.fixture(scope="session")
def upload_model(clients):
    """upload_model(name, booster, pickled=False) -> s3://sagemaker-local-artifacts/tests/<name>/model.tar.gz"""

    def upload(name: str, booster, pickled: bool = False) -> str:
        key = f"tests/{name}/model.tar.gz"
        clients.s3.put_object(Bucket="sagemaker-local-artifacts", Key=key, Body=model_tar_gz(booster, pickled))
        return f"s3://sagemaker-local-artifacts/{key}"

    return upload


@pytest.fixture(scope="session")
def deploy(clients, upload_model):
    """deploy(name, booster, pickled=False, via_package=True) -> endpoint name.

    Uploads the booster as a model.tar.gz to the artifact bucket and creates, in moto, what the
    deploy stack creates: (model package ->) model -> endpoint config -> endpoint.
    """

    def deploy_endpoint(name: str, booster, pickled: bool = False, via_package: bool = True) -> str:
        container = {"Image": XGBOOST_IMAGE, "ModelDataUrl": upload_model(name, booster, pickled)}
        if via_package:
            package = clients.sagemaker.create_model_package(
                ModelPackageGroupName="abalone",
                InferenceSpecification={
                    "Containers": [container],
                    "SupportedContentTypes": ["text/csv"],
                    "SupportedResponseMIMETypes": ["text/csv"],
                },
                ModelApprovalStatus="Approved",
            )
            container = {"ModelPackageName": package["ModelPackageArn"]}
        clients.sagemaker.create_model(ModelName=f"{name}-model", ExecutionRoleArn=ROLE_ARN, PrimaryContainer=container)
        clients.sagemaker.create_endpoint_config(
            EndpointConfigName=f"{name}-config",
            ProductionVariants=[
                {
                    "VariantName": "AllTraffic",
                    "ModelName": f"{name}-model",
                    "InitialInstanceCount": 1,
                    "InstanceType": "ml.m5.large",
                }
            ],
        )
        clients.sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=f"{name}-config")
        return name

    return deploy_endpoint


def model_tar_gz(booster, pickled: bool = False) -> bytes:
    """A model.tar.gz laid out as the SageMaker XGBoost container writes it: one file, xgboost-model."""
    raw = pickle.dumps(booster) if pickled else bytes(booster.save_raw(raw_format="ubj"))
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        member = tarfile.TarInfo("xgboost-model")
        member.size = len(raw)
        archive.addfile(member, io.BytesIO(raw))
    return buffer.getvalue()
