"""Follow a SageMaker pipeline execution: print each step's status as it changes, then a summary.

Plain boto3, so it follows an execution on AWS and on the local stack the same way.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field

FINAL_STATUSES = {"Succeeded", "Failed", "Stopped"}


@dataclass
class StepRecord:
    name: str
    status: str
    started: float | None = None
    ended: float | None = None
    cache_hit: bool = False
    failure: str = ""
    metadata: dict = field(default_factory=dict)

    @property
    def seconds(self) -> float | None:
        return self.ended - self.started if self.started and self.ended else None


@dataclass
class ExecutionResult:
    arn: str
    status: str
    failure: str
    steps: list[StepRecord]

    @property
    def failed_steps(self) -> list[StepRecord]:
        return [step for step in self.steps if step.status == "Failed"]

    @property
    def model_package_arn(self) -> str | None:
        for step in self.steps:
            arn = step.metadata.get("RegisterModel", {}).get("Arn")
            if arn:
                return arn
        return None


def list_steps(sagemaker, execution_arn: str) -> list[StepRecord]:
    """All steps of an execution, oldest first."""
    records = []
    for page in sagemaker.get_paginator("list_pipeline_execution_steps").paginate(
        PipelineExecutionArn=execution_arn, SortOrder="Ascending"
    ):
        for step in page["PipelineExecutionSteps"]:
            records.append(
                StepRecord(
                    name=step["StepName"],
                    status=step["StepStatus"],
                    started=_timestamp(step.get("StartTime")),
                    ended=_timestamp(step.get("EndTime")),
                    cache_hit="CacheHitResult" in step,
                    failure=_failure(step),
                    metadata=step.get("Metadata", {}),
                )
            )
    return records


def follow(sagemaker, execution_arn: str, poll_seconds: float = 10.0, out=sys.stdout) -> ExecutionResult:
    """Poll until the execution ends, printing step status changes as they happen."""
    started = time.monotonic()
    seen: dict[str, str] = {}
    while True:
        execution = sagemaker.describe_pipeline_execution(PipelineExecutionArn=execution_arn)
        status = execution["PipelineExecutionStatus"]
        steps = list_steps(sagemaker, execution_arn)
        for step in steps:
            shown = step.status + (" (cached)" if step.cache_hit else "")
            if seen.get(step.name) != shown:
                seen[step.name] = shown
                print(f"[{time.monotonic() - started:6.1f}s] {step.name:<20} {shown}", file=out, flush=True)
        if status in FINAL_STATUSES:
            return ExecutionResult(execution_arn, status, execution.get("FailureReason", ""), steps)
        time.sleep(poll_seconds)


def summary(result: ExecutionResult) -> str:
    """A few lines a person reads at a glance."""
    lines = [f"Pipeline execution {result.status}: {result.arn}"]
    for step in result.steps:
        took = f"{step.seconds:.1f}s" if step.seconds is not None else "-"
        cached = ", cached" if step.cache_hit else ""
        lines.append(f"  {step.name:<20} {step.status:<10} {took}{cached}")
    for step in result.failed_steps:
        lines.append(f"Step {step.name} failed: {step.failure or 'no reason given'}")
    if result.status != "Succeeded" and result.failure and not result.failed_steps:
        lines.append(f"Reason: {result.failure}")
    if result.model_package_arn:
        lines.append(f"Registered model package: {result.model_package_arn}")
    return "\n".join(lines)


def _failure(step: dict) -> str:
    # A FailStep's message is its ErrorMessage metadata; FailureReason may not repeat it.
    return step.get("FailureReason") or step.get("Metadata", {}).get("Fail", {}).get("ErrorMessage", "")


def _timestamp(value) -> float | None:
    return value.timestamp() if value is not None else None
