"""What each pipeline step type does locally. Each takes its resolved arguments and returns the
properties that later steps read through `Get Steps.<name>...` (shaped like the Describe*Job answer),
or raises StepFailure with the reason SageMaker would report.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local_aws.sagemaker.executor import s3files

CONTAINER_ROOT = "/opt/ml/"
XGBOOST_MODEL_FILE = "xgboost-model"  # what the built-in algorithm writes into model.tar.gz
# Hyperparameters of the built-in algorithm's container that are not XGBoost booster parameters.
CONTAINER_ONLY_HYPERPARAMETERS = {"num_round", "early_stopping_rounds", "csv_weights", "_kfold", "_num_cv_round"}
MAX_REASON = 1024  # FailureReason's length limit in the SageMaker API


class StepFailure(Exception):
    def __init__(self, reason: str, metadata: dict | None = None):
        super().__init__(reason)
        self.reason = reason[:MAX_REASON]
        self.metadata = metadata or {}


@dataclass
class Job:
    """One step's job: its name and ARN, sandbox folder, and clients on the local stack."""

    name: str
    arn_prefix: str  # arn:aws:sagemaker:<region>:<account>
    folder: Path
    s3: Any
    sagemaker: Any
    environment: dict[str, str] = field(default_factory=dict)

    def host_path(self, container_path: str) -> Path:
        return self.folder / container_path.lstrip("/")

    def map_argument(self, argument: str) -> str:
        return str(self.host_path(argument)) if argument.startswith(CONTAINER_ROOT) else argument


@dataclass
class Outcome:
    properties: dict[str, Any]
    metadata: dict[str, Any]


def run_processing(arguments: dict, job: Job) -> Outcome:
    """Run the container's entry point with local Python; inputs and outputs go through S3 as on AWS."""
    for item in arguments.get("ProcessingInputs", []):
        source = item.get("S3Input")
        if source is None:
            raise StepFailure(f"ClientError: input {item.get('InputName')} is not an S3Input (all the executor maps)")
        if not s3files.download_prefix(job.s3, source["S3Uri"], job.host_path(source["LocalPath"])):
            raise StepFailure(f"ClientError: no object at {source['S3Uri']} for input {item.get('InputName')}")
    for item in arguments.get("ProcessingOutputConfig", {}).get("Outputs", []):
        job.host_path(item["S3Output"]["LocalPath"]).mkdir(parents=True, exist_ok=True)

    app = arguments["AppSpecification"]
    command = [
        sys.executable if part in ("python3", "python") else job.map_argument(part)
        for part in app.get("ContainerEntrypoint", []) + app.get("ContainerArguments", [])
    ]
    if not command:
        raise StepFailure("ClientError: the local executor needs a ContainerEntrypoint to run")
    timeout = arguments.get("StoppingCondition", {}).get("MaxRuntimeInSeconds", 86400)
    log_file = job.folder / "output.log"
    # As in a container, the script gets the job's AWS settings only, never the host's (profile, tokens, endpoints).
    host = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    environment = {**host, **job.environment, **arguments.get("Environment", {})}
    with log_file.open("w") as log:
        try:
            finished = subprocess.run(
                command, cwd=job.folder, env=environment, stdout=log, stderr=subprocess.STDOUT, timeout=timeout
            )
        except subprocess.TimeoutExpired:
            raise StepFailure(f"MaxRuntimeExceeded: the job ran longer than {timeout} s (log: {log_file})") from None
    if finished.returncode != 0:
        tail = " | ".join(log_file.read_text().strip().splitlines()[-3:])
        raise StepFailure(f"AlgorithmError: {tail}, exit code: {finished.returncode} (log: {log_file})")

    for item in arguments.get("ProcessingOutputConfig", {}).get("Outputs", []):
        output = item["S3Output"]
        s3files.upload_folder(job.s3, job.host_path(output["LocalPath"]), output["S3Uri"])
    arn = f"{job.arn_prefix}:processing-job/{job.name}"
    return Outcome(
        {**arguments, "ProcessingJobName": job.name, "ProcessingJobArn": arn, "ProcessingJobStatus": "Completed"},
        {"ProcessingJob": {"Arn": arn}},
    )


def run_training(arguments: dict, job: Job) -> Outcome:
    """The built-in XGBoost algorithm: CSV channels with the label first, model.tar.gz with xgboost-model."""
    import numpy as np
    import pandas as pd
    import xgboost

    image = arguments["AlgorithmSpecification"].get("TrainingImage", "")
    if "sagemaker-xgboost" not in image:
        raise StepFailure(f"ClientError: the local executor emulates the built-in XGBoost algorithm only, not {image}")
    channels = {}
    for channel in arguments.get("InputDataConfig", []):
        name = channel["ChannelName"]
        content_type = channel.get("ContentType", "text/csv").split(";")[0].strip()
        if content_type != "text/csv":
            raise StepFailure(f"ClientError: channel {name} is {content_type}; the local XGBoost reads text/csv")
        folder = job.host_path(f"/opt/ml/input/data/{name}")
        if not s3files.download_prefix(job.s3, channel["DataSource"]["S3DataSource"]["S3Uri"], folder):
            raise StepFailure(f"ClientError: channel {name} is empty")
        frames = [pd.read_csv(path, header=None) for path in sorted(folder.rglob("*")) if path.is_file()]
        data = pd.concat(frames, ignore_index=True).to_numpy(dtype=np.float64)
        channels[name] = xgboost.DMatrix(data[:, 1:], label=data[:, 0])
    if "train" not in channels:
        raise StepFailure("ClientError: the built-in XGBoost algorithm needs a 'train' channel")

    hyperparameters = dict(arguments.get("HyperParameters", {}))
    if "num_round" not in hyperparameters:
        raise StepFailure("AlgorithmError: Missing required hyperparameter: num_round")
    params = {k: v for k, v in hyperparameters.items() if k not in CONTAINER_ONLY_HYPERPARAMETERS}
    evals = [(matrix, name) for name, matrix in channels.items()]
    history: dict = {}
    try:
        booster = xgboost.train(
            params,
            channels["train"],
            num_boost_round=int(hyperparameters["num_round"]),
            evals=evals,
            evals_result=history,
            early_stopping_rounds=int(hyperparameters["early_stopping_rounds"])
            if "early_stopping_rounds" in hyperparameters
            else None,
            verbose_eval=False,
        )
    except (xgboost.core.XGBoostError, ValueError) as error:
        raise StepFailure(f"AlgorithmError: {str(error).strip().splitlines()[0]}") from None

    model_tar = io.BytesIO()
    with tarfile.open(fileobj=model_tar, mode="w:gz") as archive:
        raw = booster.save_raw(raw_format="ubj")
        entry = tarfile.TarInfo(XGBOOST_MODEL_FILE)
        entry.size, entry.mtime = len(raw), int(time.time())
        archive.addfile(entry, io.BytesIO(raw))
    output_path = arguments["OutputDataConfig"]["S3OutputPath"].rstrip("/")
    model_uri = f"{output_path}/{job.name}/output/model.tar.gz"
    bucket, key = s3files.split_uri(model_uri)
    job.s3.put_object(Bucket=bucket, Key=key, Body=model_tar.getvalue())

    metrics = [
        {"MetricName": f"{channel}:{metric}", "Value": float(values[-1])}
        for channel, by_metric in history.items()
        for metric, values in by_metric.items()
    ]
    arn = f"{job.arn_prefix}:training-job/{job.name}"
    properties = {
        **arguments,
        "TrainingJobName": job.name,
        "TrainingJobArn": arn,
        "TrainingJobStatus": "Completed",
        "ModelArtifacts": {"S3ModelArtifacts": model_uri},
        "FinalMetricDataList": metrics,
    }
    return Outcome(properties, {"TrainingJob": {"Arn": arn}})


def run_register_model(arguments: dict, job: Job) -> Outcome:
    """CreateModelPackage with the step's request, as the RegisterModel step sends it."""
    try:
        arn = job.sagemaker.create_model_package(**arguments)["ModelPackageArn"]
    except Exception as error:  # noqa: BLE001 - any API error is the step's failure reason
        raise StepFailure(f"ClientError: CreateModelPackage failed: {error}") from None
    return Outcome({**arguments, "ModelPackageArn": arn}, {"RegisterModel": {"Arn": arn}})


def evaluate_condition(condition: dict) -> bool:
    kind = condition["Type"]
    if kind == "Not":
        return not evaluate_condition(condition["Expression"])
    if kind == "Or":
        return any(evaluate_condition(c) for c in condition["Conditions"])
    if kind == "In":
        return condition["QueryValue"] in condition["Values"]
    left, right = condition["LeftValue"], condition["RightValue"]
    if kind == "Equals":
        return left == right
    compare = {
        "LessThanOrEqualTo": lambda a, b: a <= b,
        "LessThan": lambda a, b: a < b,
        "GreaterThanOrEqualTo": lambda a, b: a >= b,
        "GreaterThan": lambda a, b: a > b,
    }.get(kind)
    if compare is None:
        raise StepFailure(f"ClientError: unsupported condition type {kind}")
    try:
        return compare(float(left), float(right))
    except (TypeError, ValueError):
        raise StepFailure(f"ClientError: condition {kind} compares non-numbers {left!r} and {right!r}") from None
