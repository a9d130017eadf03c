"""What each pipeline step type does locally. Each takes its resolved arguments and returns the
properties that later steps read through `Get Steps.<name>...` (shaped like the Describe*Job answer),
or raises StepFailure with the reason SageMaker would report.
"""

from __future__ import annotations

import io
import re
import subprocess
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local_aws.sagemaker.executor import container, container_config, images, s3files

CONTAINER_ROOT = container.CONTAINER_ROOT
XGBOOST_ALGORITHM = images.LOCKS / "xgboost_algorithm.py"  # the built-in algorithm's entry point
_ROUND_LINE = re.compile(r"^\[\d+\]\s")
_METRIC = re.compile(r"(\w+)-([\w@:.-]+?):([-+]?[0-9.]+(?:[eE][-+]?\d+)?)")
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


@dataclass
class Outcome:
    properties: dict[str, Any]
    metadata: dict[str, Any]


def run_processing(arguments: dict, job: Job, extra_environment: dict | None = None) -> Outcome:
    """Run the container's entry point in the image's environment, isolated; inputs and outputs through S3.

    `extra_environment`: variables the local stack adds for its stand-in of an image's own program."""
    image = _image_environment(arguments["AppSpecification"].get("ImageUri", ""), job)
    for item in arguments.get("ProcessingInputs", []):
        source = item.get("S3Input")
        if source is None:
            raise StepFailure(f"ClientError: input {item.get('InputName')} is not an S3Input (all the executor maps)")
        if not s3files.download_prefix(job.s3, source["S3Uri"], job.host_path(source["LocalPath"])):
            raise StepFailure(f"ClientError: no object at {source['S3Uri']} for input {item.get('InputName')}")
    for item in arguments.get("ProcessingOutputConfig", {}).get("Outputs", []):
        job.host_path(item["S3Output"]["LocalPath"]).mkdir(parents=True, exist_ok=True)
    arn = f"{job.arn_prefix}:processing-job/{job.name}"
    job_config = {**arguments, "ProcessingJobName": job.name, "ProcessingJobArn": arn}
    container_config.write_processing(job.host_path(CONTAINER_ROOT), job_config)

    app = arguments["AppSpecification"]
    command = app.get("ContainerEntrypoint", []) + app.get("ContainerArguments", [])
    read_only = {}
    if not app.get("ContainerEntrypoint") and image.image.framework in images.ENTRY_POINTS:
        # The image's own program (the Model Monitor analyzer, Clarify): its stand-in, mounted read-only.
        entry_point = f"/opt/local-aws/{images.ENTRY_POINTS[image.image.framework]}"
        read_only[entry_point] = images.LOCKS / images.ENTRY_POINTS[image.image.framework]
        command = ["python3", entry_point] + app.get("ContainerArguments", [])
    if not command:
        raise StepFailure("ClientError: the local executor needs a ContainerEntrypoint to run")
    environment = {**arguments.get("Environment", {}), **(extra_environment or {})}
    _run_container(job, image, command, environment, arguments, read_only=read_only)

    for item in arguments.get("ProcessingOutputConfig", {}).get("Outputs", []):
        output = item["S3Output"]
        s3files.upload_folder(job.s3, job.host_path(output["LocalPath"]), output["S3Uri"])
    return Outcome({**job_config, "ProcessingJobStatus": "Completed"}, {"ProcessingJob": {"Arn": arn}})


def run_training(arguments: dict, job: Job) -> Outcome:
    """The built-in XGBoost algorithm, run by the image's own xgboost in the job's container view."""
    image_uri = arguments["AlgorithmSpecification"].get("TrainingImage", "")
    image = _image_environment(image_uri, job)
    if image.image.framework != "xgboost":
        raise StepFailure(
            f"ClientError: the local executor emulates the built-in XGBoost algorithm only, not {image_uri}"
        )
    for channel in arguments.get("InputDataConfig", []):
        name = channel["ChannelName"]
        folder = job.host_path(f"/opt/ml/input/data/{name}")
        if not s3files.download_prefix(job.s3, channel["DataSource"]["S3DataSource"]["S3Uri"], folder):
            raise StepFailure(f"ClientError: channel {name} is empty")
    root = job.host_path(CONTAINER_ROOT)
    container_config.write_training(root, arguments)
    environment = {**container_config.training_environment(arguments, job.name), **arguments.get("Environment", {})}
    entry_point = "/opt/local-aws/xgboost_algorithm.py"
    log_file = _run_container(
        job, image, ["python3", entry_point], environment, arguments, read_only={entry_point: XGBOOST_ALGORITHM}
    )

    model_tar = io.BytesIO()
    with tarfile.open(fileobj=model_tar, mode="w:gz") as archive:
        for path in sorted((root / "model").rglob("*")):  # SageMaker packs /opt/ml/model as it is
            if path.is_file():
                archive.add(path, arcname=path.relative_to(root / "model").as_posix())
    output_path = arguments["OutputDataConfig"]["S3OutputPath"].rstrip("/")
    model_uri = f"{output_path}/{job.name}/output/model.tar.gz"
    bucket, key = s3files.split_uri(model_uri)
    job.s3.put_object(Bucket=bucket, Key=key, Body=model_tar.getvalue())

    arn = f"{job.arn_prefix}:training-job/{job.name}"
    properties = {
        **arguments,
        "TrainingJobName": job.name,
        "TrainingJobArn": arn,
        "TrainingJobStatus": "Completed",
        "ModelArtifacts": {"S3ModelArtifacts": model_uri},
        "FinalMetricDataList": final_metrics(log_file.read_text()),
    }
    return Outcome(properties, {"TrainingJob": {"Arn": arn}})


def final_metrics(log_text: str) -> list[dict]:
    """The last "[round] train-rmse:1.2 validation-rmse:2.3" line, as the algorithm's metric definitions read it."""
    rounds = [line for line in log_text.splitlines() if _ROUND_LINE.match(line)]
    if not rounds:
        return []
    return [
        {"MetricName": f"{channel}:{metric}", "Value": float(value)}
        for channel, metric, value in _METRIC.findall(rounds[-1])
    ]


def _image_environment(uri: str, job: Job) -> images.Environment:
    """The image's Python environment; its first build is reported in the step's log, apart from the job."""
    try:
        container.check_isolation()
        environment = images.environment(images.resolve(uri))
    except (images.ImageError, container.IsolationUnavailable) as error:
        raise StepFailure(f"ClientError: {error}") from None
    with (job.folder / "output.log").open("a") as log:
        if environment.build_seconds:
            log.write(f"local stack: built the environment of {uri} in {environment.build_seconds:.1f} s (once)\n")
        log.write(f"local stack: image {uri} -> {environment.root}\n")
    return environment


def _run_container(
    job: Job, image: images.Environment, command: list[str], environment: dict, arguments: dict, read_only=None
) -> Path:
    timeout = arguments.get("StoppingCondition", {}).get("MaxRuntimeInSeconds", 86400)
    log_file = job.folder / "output.log"
    process = container.Process(
        command=command,
        job_root=job.host_path(CONTAINER_ROOT),
        env_bin=image.bin,
        # As in a container, the job gets the job's AWS settings only, never the host's (profile, tokens).
        environment={**job.environment, **environment},
        log_file=log_file,
        timeout=timeout,
        read_only=read_only or {},
    )
    try:
        returncode = container.run(process)
    except subprocess.TimeoutExpired:
        raise StepFailure(f"MaxRuntimeExceeded: the job ran longer than {timeout} s (log: {log_file})") from None
    except container.IsolationUnavailable as error:
        raise StepFailure(f"ClientError: {error}") from None
    if returncode != 0:
        failure = job.host_path("/opt/ml/output/failure")
        if failure.exists():  # the container's own reason, as SageMaker reports it
            raise StepFailure(f"{failure.read_text().strip()} (log: {log_file})")
        tail = " | ".join(log_file.read_text().strip().splitlines()[-3:])
        raise StepFailure(f"AlgorithmError: {tail}, exit code: {returncode} (log: {log_file})")
    return log_file


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
