"""The batch inference's triggers and its retraining build, as the demo (and a person at a shell) drives them on a
running local stack. Each goes through AWS's own path, never a direct start:

    fire_schedule(stack, "batch-staging-Schedule-ABC")          # the scheduler's path: role assumed, parameters passed
    execution_arn = upload_batch(stack, key, body)              # S3 -> EventBridge -> the input rule -> the pipeline
    build = wait_for_retraining_build(stack, event_id)          # the retraining event -> trigger Lambda -> GitLab build

`stack` is a started `local_aws.LocalStack`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from local_aws import LocalStack
from local_aws.events.bus import read_events
from local_aws.events.rules import read_deliveries
from local_aws.scheduler import invoke


class TriggerTimeout(TimeoutError):
    pass


@dataclass(frozen=True)
class RetrainingBuild:
    pipeline_id: int
    web_url: str
    status: str
    jobs: list[dict[str, Any]]


def fire_schedule(stack: LocalStack, name: str, group: str | None = None) -> invoke.Invocation:
    """Invoke the schedule now, as EventBridge Scheduler does (`scripts/local-stack schedule fire NAME`)."""
    return invoke.fire(name, stack.environ(), group=group, state_dir=stack.state_dir)


def upload_batch(stack: LocalStack, key: str, body: bytes, *, bucket: str | None = None, timeout: float = 60.0) -> str:
    """Put a batch under the input prefix; the execution ARN the bucket's event started through the input rule."""
    bucket = bucket or stack.env["ARTIFACT_BUCKET"]

    def created_events() -> list[str]:
        return [
            event["id"]
            for event in read_events(stack.state_dir, "Object Created")
            if event["detail"]["bucket"]["name"] == bucket and event["detail"]["object"]["key"] == key
        ]

    earlier = set(created_events())  # a key written before (the day's file replaced) has its own older events
    stack.client("s3").put_object(Bucket=bucket, Key=key, Body=body)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        created = [event_id for event_id in created_events() if event_id not in earlier]
        started = [d for d in read_deliveries(stack.state_dir) if d["event"] in created and ":pipeline/" in d["target"]]
        if started:
            if started[-1]["status"] != "delivered":
                raise RuntimeError(
                    f"the input rule {started[-1]['rule']} could not start the pipeline: {started[-1]['error']}"
                )
            return started[-1]["result"]
        time.sleep(0.2)
    raise TriggerTimeout(
        f"no rule started a pipeline for s3://{bucket}/{key} within {timeout:.0f} s: is the key under the input"
        " prefix of a deployed batch-schedule-template.yml, and does the bucket send events to EventBridge?"
    )


def wait_for_retraining_build(stack: LocalStack, event_id: str, *, timeout: float = 600.0) -> RetrainingBuild:
    """The model-build pipeline the retraining event (its EventBridge id) triggered in the local GitLab, settled."""
    from local_gitlab import pipelines
    from local_gitlab.service import BUILD_PROJECT_ID

    gitlab = (stack.running() or {}).get("services", {}).get("gitlab")
    if gitlab is None:
        raise RuntimeError("this stack runs no local GitLab: start it with the local GitLab (the default)")
    pipeline = pipelines.wait_for_trigger(
        gitlab["url"], BUILD_PROJECT_ID, {"EVENTBRIDGE_EVENT_ID": event_id}, timeout=60
    )
    jobs = pipelines.wait_until_settled(gitlab["url"], BUILD_PROJECT_ID, pipeline.id, timeout=timeout)
    settled = pipelines.client(gitlab["url"]).projects.get(BUILD_PROJECT_ID, lazy=True).pipelines.get(pipeline.id)
    return RetrainingBuild(pipeline.id, settled.web_url, settled.status, jobs)
