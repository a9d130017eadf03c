"""The jobs a pipeline's steps ran, behind DescribeTrainingJob / DescribeProcessingJob / DescribeTransformJob
and their List* operations.

On AWS a Processing or Training step creates a real job: the ARN in the step's Metadata can be
described, and the job is listed. The executor runs steps itself, so moto never hears of them; the
runner records each step's job here (`record`) with the fields AWS's Describe*Job answer has in
that state, and these handlers answer from the records. Jobs the stack did not run (created with
Create*Job on moto) are still moto's: Describe falls back to moto, List merges moto's summaries.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

from local_aws.core import api
from local_aws.sagemaker import listing


class Kind:
    def __init__(self, name: str, arn_type: str, end_time: str, summary_fields: tuple[str, ...]):
        self.name = name  # Training, Processing, Transform
        self.arn_type = arn_type  # training-job
        self.end_time = end_time  # TrainingEndTime
        self.summary_fields = summary_fields

    @property
    def job_name(self) -> str:
        return f"{self.name}JobName"

    @property
    def job_arn(self) -> str:
        return f"{self.name}JobArn"

    @property
    def status(self) -> str:
        return f"{self.name}JobStatus"


KINDS = {
    "Training": Kind(
        "Training",
        "training-job",
        "TrainingEndTime",
        ("CreationTime", "TrainingEndTime", "LastModifiedTime", "TrainingJobStatus", "SecondaryStatus"),
    ),
    "Processing": Kind(
        "Processing",
        "processing-job",
        "ProcessingEndTime",
        (
            "CreationTime",
            "ProcessingEndTime",
            "LastModifiedTime",
            "ProcessingJobStatus",
            "FailureReason",
            "ExitMessage",
        ),
    ),
    "Transform": Kind(
        "Transform",
        "transform-job",
        "TransformEndTime",
        ("CreationTime", "TransformEndTime", "LastModifiedTime", "TransformJobStatus", "FailureReason"),
    ),
}
# Request members a step's Arguments share with the Describe*Job answer (the rest are the job's own state).
REQUEST_FIELDS = {
    "Training": (
        "AlgorithmSpecification",
        "HyperParameters",
        "RoleArn",
        "InputDataConfig",
        "OutputDataConfig",
        "ResourceConfig",
        "VpcConfig",
        "StoppingCondition",
        "EnableNetworkIsolation",
        "EnableInterContainerTrafficEncryption",
        "EnableManagedSpotTraining",
        "CheckpointConfig",
        "DebugHookConfig",
        "DebugRuleConfigurations",
        "TensorBoardOutputConfig",
        "ProfilerConfig",
        "Environment",
        "RetryStrategy",
    ),
    "Processing": (
        "ProcessingInputs",
        "ProcessingOutputConfig",
        "ProcessingResources",
        "StoppingCondition",
        "AppSpecification",
        "Environment",
        "NetworkConfig",
        "RoleArn",
    ),
    "Transform": (
        "ModelName",
        "MaxConcurrentTransforms",
        "ModelClientConfig",
        "MaxPayloadInMB",
        "BatchStrategy",
        "Environment",
        "TransformInput",
        "TransformOutput",
        "DataCaptureConfig",
        "TransformResources",
        "DataProcessing",
    ),
}
_lock = threading.Lock()


def _folder(state_dir: Path) -> Path:
    folder = Path(state_dir) / "job-records"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def record(
    state_dir: Path,
    kind: str,
    *,
    name: str,
    arn: str,
    arguments: dict,
    started: float,
    execution_arn: str,
    step_name: str,
    properties: dict | None = None,
    failure_reason: str | None = None,
) -> dict:
    """Keep the Describe*Job answer of a step's job: Completed with `properties`, else Failed with the reason."""
    spec = KINDS[kind]
    ended = time.time()
    pipeline_name, execution_id = execution_arn.split(":pipeline/", 1)[1].split("/execution/")
    job: dict[str, Any] = {name_: arguments[name_] for name_ in REQUEST_FIELDS[kind] if name_ in arguments}
    job.update(
        {
            spec.job_name: name,
            spec.job_arn: arn,
            spec.status: "Completed" if failure_reason is None else "Failed",
            "CreationTime": started,
            "LastModifiedTime": ended,
            spec.end_time: ended,
            # AWS's default PipelineExperimentConfig: a pipeline's jobs belong to the experiment named after the
            # pipeline and the trial named after the execution. This is how a job points back at its execution.
            "ExperimentConfig": {
                "ExperimentName": pipeline_name,
                "TrialName": execution_id,
                "TrialComponentDisplayName": step_name,
            },
        }
    )
    if failure_reason is not None:
        job["FailureReason"] = failure_reason
    if kind == "Training":
        job.setdefault("StoppingCondition", {"MaxRuntimeInSeconds": 86400})
        job["TrainingStartTime"] = started
        job["SecondaryStatus"] = job["TrainingJobStatus"]
        job["SecondaryStatusTransitions"] = [
            {
                "Status": "Training",
                "StartTime": started,
                "EndTime": ended,
                "StatusMessage": "Training image download completed. Training in progress.",
            },
            {
                "Status": job["SecondaryStatus"],
                "StartTime": ended,
                "EndTime": ended,
                "StatusMessage": failure_reason or "Training job completed",
            },
        ]
        job["TrainingTimeInSeconds"] = job["BillableTimeInSeconds"] = max(1, round(ended - started))
        # ModelArtifacts is required in the answer: a failed job still names where the model would be.
        artifacts = (properties or {}).get("ModelArtifacts") or {
            "S3ModelArtifacts": f"{arguments.get('OutputDataConfig', {}).get('S3OutputPath', '').rstrip('/')}"
            f"/{name}/output/model.tar.gz"
        }
        job["ModelArtifacts"] = artifacts
        if properties and properties.get("FinalMetricDataList"):
            job["FinalMetricDataList"] = [
                {**metric, "Timestamp": ended} for metric in properties["FinalMetricDataList"]
            ]
        for flag in ("EnableNetworkIsolation", "EnableInterContainerTrafficEncryption", "EnableManagedSpotTraining"):
            job.setdefault(flag, False)
    elif kind == "Processing":
        job["ProcessingStartTime"] = started
    else:
        job["TransformStartTime"] = started
    with _lock:
        (_folder(state_dir) / f"{spec.arn_type}-{name}.json").write_text(json.dumps(job))
    return job


def _load(state_dir: Path, kind: Kind, name: str) -> dict | None:
    path = _folder(state_dir) / f"{kind.arn_type}-{name}.json"
    with _lock:
        return json.loads(path.read_text()) if path.exists() else None


def _all(state_dir: Path, kind: Kind) -> list[dict]:
    with _lock:
        return [json.loads(p.read_text()) for p in _folder(state_dir).glob(f"{kind.arn_type}-*.json")]


def _describe(kind_name: str):
    kind = KINDS[kind_name]
    moto_operation = f"describe_{kind_name.lower()}_job"

    def describe(request: dict, context: api.Context) -> dict:
        name = request[kind.job_name]
        job = _load(context.state_dir, kind, name)
        if job is not None:
            return job
        # Not one of the executor's: moto's job, or moto's not-found error.
        answer = getattr(context.client("sagemaker"), moto_operation)(**{kind.job_name: name})
        answer.pop("ResponseMetadata", None)
        return answer

    describe.__name__ = f"describe_{kind_name.lower()}_job"
    return describe


def _list(kind_name: str):
    kind = KINDS[kind_name]
    operation = f"List{kind_name}Jobs"
    result_key = f"{kind_name}JobSummaries"
    moto_operation = f"list_{kind_name.lower()}_jobs"

    def list_jobs(request: dict, context: api.Context) -> dict:
        summaries = [_summary(kind, job) for job in _all(context.state_dir, kind)]
        local_names = {s[kind.job_name] for s in summaries}
        paginator_items = _moto_summaries(context, moto_operation, result_key)
        summaries += [s for s in paginator_items if s[kind.job_name] not in local_names]
        if request.get("NameContains"):
            summaries = [s for s in summaries if request["NameContains"] in s[kind.job_name]]
        if request.get("StatusEquals"):
            summaries = [s for s in summaries if s[kind.status] == request["StatusEquals"]]
        summaries = listing.within(
            summaries, "CreationTime", request.get("CreationTimeAfter"), request.get("CreationTimeBefore")
        )
        summaries = listing.within(
            summaries,
            "LastModifiedTime",
            request.get("LastModifiedTimeAfter"),
            request.get("LastModifiedTimeBefore"),
        )
        keys = {
            "Name": lambda s: s[kind.job_name],
            "CreationTime": lambda s: s["CreationTime"],
            "Status": lambda s: s[kind.status],
        }
        summaries = listing.sort(summaries, request, keys, "CreationTime")
        return listing.page(operation, summaries, request, result_key)

    list_jobs.__name__ = f"list_{kind_name.lower()}_jobs"
    return list_jobs


def _summary(kind: Kind, job: dict) -> dict:
    summary = {kind.job_name: job[kind.job_name], kind.job_arn: job[kind.job_arn]}
    summary.update({name: job[name] for name in kind.summary_fields if name in job})
    return summary


def _moto_summaries(context: api.Context, operation: str, result_key: str) -> list[dict]:
    answer = getattr(context.client("sagemaker"), operation)(MaxResults=100)
    summaries = []
    for item in answer.get(result_key, []):
        # boto3 parsed moto's timestamps into datetimes; the merged list is answered as epoch seconds.
        summaries.append({k: (v.timestamp() if hasattr(v, "timestamp") else v) for k, v in item.items()})
    return summaries


OPERATIONS: dict[str, api.Handler] = {
    f"{verb}{kind}Job{'s' if verb == 'List' else ''}": (_describe if verb == "Describe" else _list)(kind)
    for kind in KINDS
    for verb in ("Describe", "List")
}
