"""A small pipeline that really runs on the stack in a few seconds: Preprocess (a Python script) ->
Train (the built-in XGBoost algorithm) -> Register (a model package), for the API fidelity tests."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[2]
BUCKET = "sagemaker-local-artifacts"
ROLE = "arn:aws:iam::123456789012:role/api-tests"
XGBOOST_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
# Copies the training CSV from the input folder to the output folder (the argument paths are mapped).
SCRIPT = """
import shutil, sys
shutil.copy(sys.argv[1] + "/train.csv", sys.argv[2] + "/train.csv")
"""


def upload_inputs(s3, prefix: str) -> None:
    rng = np.random.default_rng(7)
    features = rng.random((60, 3))
    rows = np.column_stack([features @ [1.0, 2.0, 3.0], features])
    body = "\n".join(",".join(f"{v:.5f}" for v in row) for row in rows)
    s3.put_object(Bucket=BUCKET, Key=f"{prefix}/raw/train.csv", Body=body.encode())
    s3.put_object(Bucket=BUCKET, Key=f"{prefix}/code/copy.py", Body=SCRIPT.encode())


def definition(prefix: str, retry_policies: list | None = None, group: str = "abalone") -> str:
    preprocess = {
        "Name": "Preprocess",
        "Type": "Processing",
        "Description": "copies the data",
        "Arguments": {
            "ProcessingResources": {
                "ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 30}
            },
            "AppSpecification": {
                "ImageUri": "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3",
                "ContainerEntrypoint": ["python3", "/opt/ml/processing/input/code/copy.py"],
                "ContainerArguments": ["/opt/ml/processing/input/raw", "/opt/ml/processing/output"],
            },
            "RoleArn": ROLE,
            "ProcessingInputs": [
                _input("code", f"s3://{BUCKET}/{prefix}/code", "/opt/ml/processing/input/code"),
                _input("raw", f"s3://{BUCKET}/{prefix}/raw", "/opt/ml/processing/input/raw"),
            ],
            "ProcessingOutputConfig": {
                "Outputs": [
                    {
                        "OutputName": "train",
                        "AppManaged": False,
                        "S3Output": {
                            "S3Uri": {
                                "Std:Join": {
                                    "On": "/",
                                    "Values": [f"s3://{BUCKET}/{prefix}/out", {"Get": "Execution.PipelineExecutionId"}],
                                }
                            },
                            "LocalPath": "/opt/ml/processing/output",
                            "S3UploadMode": "EndOfJob",
                        },
                    }
                ]
            },
        },
    }
    if retry_policies:
        preprocess["RetryPolicies"] = retry_policies
    train = {
        "Name": "Train",
        "Type": "Training",
        "Arguments": {
            "AlgorithmSpecification": {"TrainingImage": XGBOOST_IMAGE, "TrainingInputMode": "File"},
            "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/{prefix}/model"},
            "StoppingCondition": {"MaxRuntimeInSeconds": 600},
            "ResourceConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 30},
            "RoleArn": ROLE,
            "HyperParameters": {"num_round": "5", "objective": "reg:squarederror"},
            "InputDataConfig": [
                {
                    "ChannelName": "train",
                    "ContentType": "text/csv",
                    "DataSource": {
                        "S3DataSource": {
                            "S3DataType": "S3Prefix",
                            "S3DataDistributionType": "FullyReplicated",
                            "S3Uri": {"Get": "Steps.Preprocess.ProcessingOutputConfig.Outputs['train'].S3Output.S3Uri"},
                        }
                    },
                }
            ],
        },
    }
    register = {
        "Name": "Register",
        "Type": "RegisterModel",
        "Arguments": {
            "ModelPackageGroupName": group,
            "ModelApprovalStatus": "PendingManualApproval",
            "InferenceSpecification": {
                "Containers": [
                    {"Image": XGBOOST_IMAGE, "ModelDataUrl": {"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"}}
                ],
                "SupportedContentTypes": ["text/csv"],
                "SupportedResponseMIMETypes": ["text/csv"],
            },
        },
    }
    return json.dumps({"Version": "2020-12-01", "Parameters": [], "Steps": [preprocess, train, register]})


def _input(name: str, uri: str, local: str) -> dict:
    return {
        "InputName": name,
        "AppManaged": False,
        "S3Input": {
            "S3Uri": uri,
            "LocalPath": local,
            "S3DataType": "S3Prefix",
            "S3InputMode": "File",
            "S3DataDistributionType": "FullyReplicated",
        },
    }


def create(sagemaker, s3, name: str, **options) -> str:
    upload_inputs(s3, name)
    sagemaker.create_pipeline(
        PipelineName=name, PipelineDefinition=definition(name, **options), RoleArn=ROLE, ClientRequestToken=token()
    )
    return name


def token() -> str:
    return str(uuid.uuid4())


def wait(sagemaker, arn: str, timeout: float = 90) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        execution = sagemaker.describe_pipeline_execution(PipelineExecutionArn=arn)
        if execution["PipelineExecutionStatus"] not in ("Executing", "Stopping"):
            return execution
        time.sleep(0.2)
    raise AssertionError(f"{arn} still executing after {timeout} s")


def steps(sagemaker, arn: str) -> dict[str, dict]:
    listed = sagemaker.list_pipeline_execution_steps(PipelineExecutionArn=arn, MaxResults=100)
    return {s["StepName"]: s for s in listed["PipelineExecutionSteps"]}
