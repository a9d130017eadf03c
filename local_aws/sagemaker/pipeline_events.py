"""The EventBridge events SageMaker sends while a pipeline runs, in their documented shapes.

https://docs.aws.amazon.com/sagemaker/latest/dg/automating-sagemaker-with-eventbridge.html, sections
"Pipeline execution state change" and "Pipeline step state change": the envelope's `resources` are the
pipeline and the execution ARN; `detail` names fields in lower camel case (`currentPipelineExecutionStatus`,
`stepName`, `metadata.processingJob.arn`, ...), timestamps as ISO 8601. A failed step's event carries
`failureReason`, a cached one `cacheHitResult`.

The executor (`executor/runner.py`) calls `execution_status_change` and `step_status_change` on every status
transition and emits the result on the stack's bus, so the rules moto holds route it like any other event.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

SOURCE = "aws.sagemaker"
EXECUTION_DETAIL_TYPE = "SageMaker Model Building Pipeline Execution Status Change"
STEP_DETAIL_TYPE = "SageMaker Model Building Pipeline Execution Step Status Change"


def execution_status_change(execution: dict[str, Any], previous: str | None) -> dict[str, Any]:
    detail = {
        "pipelineExecutionDisplayName": execution.get("PipelineExecutionDisplayName"),
        "currentPipelineExecutionStatus": execution["PipelineExecutionStatus"],
        "previousPipelineExecutionStatus": previous,
        "executionStartTime": _iso(execution.get("CreationTime")),
        "executionEndTime": _iso(execution.get("EndTime")),
        "pipelineExecutionDescription": execution.get("PipelineExecutionDescription"),
        "pipelineArn": execution["PipelineArn"],
        "pipelineExecutionArn": execution["PipelineExecutionArn"],
    }
    if execution.get("FailureReason") and execution["PipelineExecutionStatus"] == "Failed":
        detail["failureReason"] = execution["FailureReason"]
    return _envelope(EXECUTION_DETAIL_TYPE, execution, detail)


def step_status_change(
    execution: dict[str, Any], step: dict[str, Any], step_type: str, previous: str | None
) -> dict[str, Any]:
    """`step`: the step as ListPipelineExecutionSteps reports it (StepName, StepStatus, Metadata, ...)."""
    detail = {
        "metadata": _lower_camel(step.get("Metadata") or {}),
        "stepStartTime": _iso(step.get("StartTime")),
        "stepEndTime": _iso(step.get("EndTime")),
        "stepName": step["StepName"],
        "stepType": step_type,
        "previousStepStatus": previous,
        "currentStepStatus": step["StepStatus"],
        "pipelineArn": execution["PipelineArn"],
        "pipelineExecutionArn": execution["PipelineExecutionArn"],
    }
    if step["StepStatus"] == "Failed" and step.get("FailureReason"):
        detail["failureReason"] = step["FailureReason"]
    if step.get("CacheHitResult"):
        detail["cacheHitResult"] = _lower_camel(step["CacheHitResult"])
    return _envelope(STEP_DETAIL_TYPE, execution, detail)


def _envelope(detail_type: str, execution: dict[str, Any], detail: dict[str, Any]) -> dict[str, Any]:
    _, _, _, region, account, _ = execution["PipelineArn"].split(":", 5)
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": SOURCE,
        "account": account,
        "time": _iso(dt.datetime.now(dt.UTC).timestamp()),
        "region": region,
        "resources": [execution["PipelineArn"], execution["PipelineExecutionArn"]],
        # Fields an execution or step does not have (no end time yet, no description) are left out, not null.
        "detail": {key: value for key, value in detail.items() if value is not None},
    }


def _lower_camel(value: Any) -> Any:
    """The API's `ProcessingJob: {Arn}` as the event's `processingJob: {arn}`."""
    if isinstance(value, dict):
        return {key[:1].lower() + key[1:]: _lower_camel(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_lower_camel(item) for item in value]
    return value


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
