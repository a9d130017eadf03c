"""Shared fixtures: one moto server per session, a fresh SageMaker project in it per test, real
XGBoost models trained on abalone, and an InvokeEndpoint test double that serves whatever model the
endpoint really points at (endpoint -> config -> model -> package -> model.tar.gz in S3).

moto answers `invoke_endpoint` with a canned body, so predictions never come from moto.
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tarfile
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

import boto3
import numpy as np
import pytest
import xgboost
from botocore.config import Config
from botocore.exceptions import ClientError
from moto.server import ThreadedMotoServer

from deploy.__main__ import main as deploy_main

REPO_DIR = Path(__file__).resolve().parent.parent
ACCOUNT = "123456789012"  # moto's default account
REGION = "us-east-1"
XGBOOST_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
SEXES = ("F", "I", "M")
_project_numbers = itertools.count(1)


def tool(name: str) -> str:
    """A console script of the running environment (the venv), else from PATH."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if not found:
        pytest.fail(f"{name} is not installed: pip install {name}")
    return found


def find_dataset() -> Path:
    """`<repo root>/../shared/datasets/abalone.csv`, whichever folder above is the repo root; ABALONE_CSV wins."""
    if os.environ.get("ABALONE_CSV"):
        return Path(os.environ["ABALONE_CSV"])
    for folder in Path(__file__).resolve().parents:
        candidate = folder / "shared" / "datasets" / "abalone.csv"
        if candidate.is_file():
            return candidate
    raise FileNotFoundError("abalone.csv not found: set ABALONE_CSV to the UCI abalone CSV (with header)")


@dataclass(frozen=True)
class Abalone:
    test_csv: str  # as the model-build preprocess step writes it: no header, rings first
    good_model_tar: bytes
    constant_model_tar: bytes
    good_rmse: float
    rows: int


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def model_tar(booster: xgboost.Booster) -> bytes:
    """model.tar.gz as the built-in algorithm writes it: one file, `xgboost-model`."""
    raw = bytes(booster.save_raw("json"))
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        info = tarfile.TarInfo("xgboost-model")
        info.size = len(raw)
        archive.addfile(info, io.BytesIO(raw))
    return buffer.getvalue()


@pytest.fixture(scope="session")
def abalone() -> Abalone:
    with find_dataset().open() as handle:
        records = list(csv.DictReader(handle))
    sample = random.Random(42).sample(records, 300)  # noqa: S311 - a small, fixed held-out split keeps tests fast
    features = ["length", "diameter", "height", "whole_weight", "shucked_weight", "viscera_weight", "shell_weight"]
    table = np.array(
        [
            [float(r["rings"])] + [float(r[f]) for f in features] + [1.0 if r["sex"] == s else 0.0 for s in SEXES]
            for r in sample
        ]
    )
    labels, x = table[:, 0], table[:, 1:]
    params = {"objective": "reg:squarederror", "max_depth": 4, "eta": 0.3, "seed": 42, "verbosity": 0}
    good = xgboost.train(params, xgboost.DMatrix(x, label=labels), num_boost_round=30)
    good_rmse = float(np.sqrt(np.mean((good.predict(xgboost.DMatrix(x)) - labels) ** 2)))
    # A model that answers the mean whatever it is asked: no trees, only the base score.
    constant = xgboost.train({**params, "base_score": float(labels.mean())}, xgboost.DMatrix(x, label=labels), 0)
    test_csv = "\n".join(",".join(f"{v:g}" for v in row) for row in table) + "\n"
    return Abalone(test_csv, model_tar(good), model_tar(constant), good_rmse, len(table))


@pytest.fixture(scope="session")
def moto_url():
    # The model-build repo has the same fixture: each seeded repo stands alone and cannot import the other's.
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def moto_client(moto_url: str, service: str):
    return boto3.client(
        service,
        endpoint_url=moto_url,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # noqa: S106 - moto's dummy credentials
        config=Config(retries={"max_attempts": 1}),
    )


class RuntimeDouble(ThreadingHTTPServer):
    """Speaks sagemaker-runtime InvokeEndpoint (POST /endpoints/<name>/invocations, text/csv) with real models."""

    daemon_threads = True

    def __init__(self, moto_url: str):
        super().__init__(("127.0.0.1", 0), InvokeHandler)
        # Made once: creating boto3 clients per request would dominate the latency being measured.
        self.sagemaker = moto_client(moto_url, "sagemaker")
        self.s3 = moto_client(moto_url, "s3")
        self.boosters: dict[str, xgboost.Booster] = {}
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def booster_for(self, endpoint_name: str) -> xgboost.Booster:
        sagemaker = self.sagemaker
        try:
            endpoint = sagemaker.describe_endpoint(EndpointName=endpoint_name)
        except ClientError:
            raise LookupError(f"Endpoint {endpoint_name} of account {ACCOUNT} not found.") from None
        config = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
        model = sagemaker.describe_model(ModelName=config["ProductionVariants"][0]["ModelName"])
        package = sagemaker.describe_model_package(ModelPackageName=model["PrimaryContainer"]["ModelPackageName"])
        model_data_url = package["InferenceSpecification"]["Containers"][0]["ModelDataUrl"]
        with self.lock:
            if model_data_url not in self.boosters:
                bucket, key = model_data_url[len("s3://") :].split("/", 1)
                tar_bytes = self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
                with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as archive:
                    raw = archive.extractfile("xgboost-model").read()
                booster = xgboost.Booster()
                booster.load_model(bytearray(raw))
                self.boosters[model_data_url] = booster
            return self.boosters[model_data_url]


class InvokeHandler(BaseHTTPRequestHandler):
    server: RuntimeDouble

    def do_POST(self):  # noqa: N802 - http.server's naming
        match = re.fullmatch(r"/endpoints/([^/]+)/invocations", self.path)
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if not match:
            return self.answer_error(404, "UnknownOperationException", f"no route {self.path}")
        try:
            booster = self.server.booster_for(unquote(match.group(1)))
        except LookupError as error:
            return self.answer_error(400, "ValidationError", str(error))
        try:
            rows = [[float(value) for value in line.split(",")] for line in body.decode().splitlines() if line.strip()]
            predictions = booster.predict(xgboost.DMatrix(np.array(rows)))
        except (ValueError, xgboost.core.XGBoostError) as error:
            # What SageMaker does when the container rejects the input: 424 ModelError.
            return self.answer_error(424, "ModelError", f"Received client error (415) from primary: {error}")
        self.answer(200, "text/csv", "\n".join(f"{p:.6f}" for p in predictions).encode())

    def answer_error(self, status: int, code: str, message: str):
        self.answer(status, "application/json", json.dumps({"message": message}).encode(), {"x-amzn-ErrorType": code})

    def answer(self, status: int, content_type: str, body: bytes, headers: dict | None = None):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):  # quiet
        pass


@pytest.fixture(scope="session")
def runtime_double(moto_url):
    server = RuntimeDouble(moto_url)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


class Project:
    """A SageMaker project in moto: its group, bucket and environment, and the deploy CLI run against it."""

    def __init__(self, moto_url: str, name: str, build_dir: Path, abalone: Abalone):
        self.moto_url = moto_url
        self.name = name
        self.group = name
        self.bucket = f"{name}-artifacts"
        self.build_dir = build_dir
        self.abalone = abalone
        self.sagemaker = moto_client(moto_url, "sagemaker")
        self.s3 = moto_client(moto_url, "s3")
        self.cloudformation = moto_client(moto_url, "cloudformation")
        self.s3.create_bucket(Bucket=self.bucket)
        self.sagemaker.create_model_package_group(ModelPackageGroupName=self.group)

    @property
    def environment(self) -> dict[str, str]:
        return {
            "AWS_REGION": REGION,
            "SAGEMAKER_PROJECT_NAME": self.name,
            "SAGEMAKER_PROJECT_ID": f"p-{self.name}",
            "MODEL_PACKAGE_GROUP_NAME": self.group,
            "ARTIFACT_BUCKET": self.bucket,
            "MODEL_EXECUTION_ROLE_ARN": f"arn:aws:iam::{ACCOUNT}:role/{self.name}-model-execution",
        }

    def register(
        self,
        approval: str = "Approved",
        model: str = "good",
        group: str | None = None,
        pin: bool = True,
        baselines: bool = False,
    ) -> str:
        """Register a version the way the model-build pipeline does; returns its ARN."""
        group = group or self.group
        prefix = f"s3://{self.bucket}/{group}/run-{next(_project_numbers)}"
        tar = self.abalone.good_model_tar if model == "good" else self.abalone.constant_model_tar
        rmse = self.abalone.good_rmse  # a constant model registered with these metrics is a wrong model
        evaluation = {
            "regression_metrics": {
                "mse": {"value": rmse**2, "standard_deviation": 0.0},
                "rmse": {"value": rmse},
                "mae": {"value": rmse, "standard_deviation": 0.0},
                "r2": {"value": 0.5},
            },
            "test_rows": self.abalone.rows,
        }
        evaluation_json = json.dumps(evaluation).encode()
        self.put(f"{prefix}/Preprocess/test/test.csv", self.abalone.test_csv.encode())
        self.put(f"{prefix}/Train/model.tar.gz", tar)
        self.put(f"{prefix}/Evaluate/evaluation/evaluation.json", evaluation_json)
        # As run_pipeline pins them after registration (model-build's pipelines/pinning.py).
        digests = {"ModelDataSha256": sha256(tar), "EvaluationSha256": sha256(evaluation_json)} if pin else {}
        response = self.sagemaker.create_model_package(
            ModelPackageGroupName=group,
            ModelApprovalStatus=approval,
            InferenceSpecification={
                "Containers": [{"Image": XGBOOST_IMAGE, "ModelDataUrl": f"{prefix}/Train/model.tar.gz"}],
                "SupportedContentTypes": ["text/csv"],
                "SupportedResponseMIMETypes": ["text/csv"],
                "SupportedRealtimeInferenceInstanceTypes": ["ml.t2.medium", "ml.m5.large", "ml.m5.xlarge"],
            },
            ModelMetrics={
                "ModelQuality": {
                    "Statistics": {
                        "ContentType": "application/json",
                        "S3Uri": f"{prefix}/Evaluate/evaluation/evaluation.json",
                    }
                }
            },
            CustomerMetadataProperties={
                "GitCommit": "0123abc",
                "GitLabPipelineUrl": "https://gitlab.example.com/ml/model-build/-/pipelines/1",
                "InputDataUrl": f"s3://{self.bucket}/data/abalone.csv",
                "TestDataUrl": f"{prefix}/Preprocess/test",
                **digests,
            },
            **({"DriftCheckBaselines": self.data_quality_baselines(prefix)} if baselines else {}),
        )
        return response["ModelPackageArn"]

    def data_quality_baselines(self, prefix: str) -> dict:
        """DriftCheckBaselines as the pipeline registers them: its DataQualityCheck's statistics and constraints."""
        features = ["length", "diameter", "sex_F"]  # the model's input: encoded features, no label
        statistics = {"version": 0.0, "features": [{"name": name} for name in features]}
        constraints = {"version": 0.0, "features": [{"name": name, "inferred_type": "Fractional"} for name in features]}
        found = {}
        for kind, document in (("Statistics", statistics), ("Constraints", constraints)):
            uri = f"{prefix}/DataQualityCheck/{kind.lower()}.json"
            self.put(uri, json.dumps(document).encode())
            found[kind] = {"ContentType": "application/json", "S3Uri": uri}
        return {"ModelDataQuality": found}

    def put(self, uri: str, body: bytes) -> None:
        bucket, key = uri[len("s3://") :].split("/", 1)
        self.s3.put_object(Bucket=bucket, Key=key, Body=body)

    def run(self, *argv: str) -> int:
        """The CLI, in process (fast); the environment is this project's."""
        return deploy_main(["--build-dir", str(self.build_dir), *argv])

    def run_subprocess(self, *argv: str, env: dict[str, str]) -> subprocess.CompletedProcess:
        """The CLI as CI runs it, in its own process (for the staging suite, itself a pytest run)."""
        environment = {**os.environ, **env, "PYTHONPATH": str(REPO_DIR)}
        return subprocess.run(
            [sys.executable, "-m", "deploy", "--build-dir", str(self.build_dir), *argv],
            cwd=REPO_DIR,
            env=environment,
            capture_output=True,
            text=True,
            timeout=180,
        )

    def stack(self, stage: str) -> dict:
        name = f"sagemaker-{self.name}-deploy-{stage}"
        return self.cloudformation.describe_stacks(StackName=name)["Stacks"][0]

    def outputs(self, stage: str) -> dict:
        return {o["OutputKey"]: o["OutputValue"] for o in self.stack(stage)["Outputs"]}

    def served_packages(self, stage: str) -> list[str]:
        """What the stage's endpoint really serves, followed through SageMaker (not through the code under test)."""
        endpoint = self.sagemaker.describe_endpoint(EndpointName=self.outputs(stage)["EndpointName"])
        config = self.sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
        packages = []
        for variant in config["ProductionVariants"]:
            model = self.sagemaker.describe_model(ModelName=variant["ModelName"])
            packages.append(model["PrimaryContainer"]["ModelPackageName"])
        return packages

    def stack_events(self, stage: str) -> list[dict]:
        name = f"sagemaker-{self.name}-deploy-{stage}"
        return self.cloudformation.describe_stack_events(StackName=name)["StackEvents"]


@pytest.fixture
def aws(moto_url, monkeypatch):
    """Point every boto3 client at moto; nothing from the caller's AWS setup leaks in."""
    for name in list(os.environ):
        if name.startswith(("AWS_", "SAGEMAKER_", "MODEL_", "STAGING_", "DEPLOY_", "RESOLVED_")):
            monkeypatch.delenv(name)
    for name in ("ARTIFACT_BUCKET", "KMS_KEY_ARN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")  # moto answers unimplemented calls with 500s: never retry
    monkeypatch.setenv("DEPLOY_POLL_SECONDS", "0.05")
    return moto_url


@pytest.fixture
def project(aws, tmp_path, monkeypatch, abalone) -> Project:
    created = Project(aws, f"proj{next(_project_numbers)}", tmp_path / "build", abalone)
    for key, value in created.environment.items():
        monkeypatch.setenv(key, value)
    return created
