"""Fire an EventBridge Scheduler schedule by the scheduler's own path, now or when it is due.

    fire("abalone-batch-staging", environ=stack.environ())          # -> Invocation (execution ARN, parameters)

1. GetSchedule from moto's EventBridge Scheduler (the schedule CloudFormation or CreateSchedule made);
2. a DISABLED schedule is refused (ScheduleDisabled), as the scheduler never invokes one;
3. the target: only SageMaker pipelines (`SageMakerPipelineParameters`), which this project schedules;
4. the target's role, assumed by `scheduler.amazonaws.com` after its trust is checked, starts the pipeline with
   the target's parameters (`local_aws.sagemaker.pipeline_targets`).
Each invocation, started or failed, is a line of `<state>/schedule-invocations.jsonl` (`read_invocations`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from local_aws.core import journal
from local_aws.sagemaker.pipeline_targets import TargetError, _client, start_as_service

SERVICE_PRINCIPAL = "scheduler.amazonaws.com"
INVOCATIONS_FILE = "schedule-invocations.jsonl"


class ScheduleError(ValueError):
    """The schedule cannot be fired; the message says why and what to do."""


@dataclass(frozen=True)
class Invocation:
    schedule: str
    schedule_arn: str
    pipeline_execution_arn: str
    role_arn: str
    parameters: list[dict[str, str]] = field(default_factory=list)
    due: str | None = None  # the due time it fired for (None: fired on demand)
    caller: str = ""  # the identity that started the execution: the role's assumed-role session


def get_schedule(name: str, environ: Mapping[str, str], group: str | None = None) -> dict[str, Any]:
    scheduler = _client("scheduler", environ)
    try:
        return scheduler.get_schedule(Name=name, **({"GroupName": group} if group else {}))
    except scheduler.exceptions.ResourceNotFoundException:
        where = f"group {group}" if group else "the default group"
        raise ScheduleError(
            f"schedule {name} does not exist in {where}: deploy batch-schedule-template.yml"
            " (its ScheduleName output names it), or list them with `aws scheduler list-schedules`"
        ) from None


def fire(
    name: str,
    environ: Mapping[str, str],
    *,
    group: str | None = None,
    due: dt.datetime | None = None,
    state_dir: Path | None = None,
) -> Invocation:
    """Invoke the schedule's target as the scheduler does; returns what was started."""
    schedule = get_schedule(name, environ, group)
    record: dict[str, Any] = {"schedule": name, "arn": schedule["Arn"], "due": due.isoformat() if due else None}
    try:
        if schedule.get("State") == "DISABLED":
            raise ScheduleError(
                f"schedule {name} is DISABLED: the scheduler does not invoke it. Enable it (State ENABLED in the"
                " stack's ScheduleState parameter, or `aws scheduler update-schedule`) to run it"
            )
        target = schedule["Target"]
        if "SageMakerPipelineParameters" not in target and ":pipeline/" not in target.get("Arn", ""):
            raise ScheduleError(
                f"schedule {name} targets {target.get('Arn')}: the local stack invokes SageMaker pipeline targets only"
            )
        account = schedule["Arn"].split(":")[4]
        try:
            started = start_as_service(
                target,
                service=SERVICE_PRINCIPAL,
                source_arn=schedule["Arn"],
                source_account=account,
                environ=environ,
                session_name=f"scheduler-{name}"[:64],
            )
        except TargetError as error:
            raise ScheduleError(f"schedule {name}: {error}") from None
        except ClientError as error:  # the pipeline is missing, the parameters are not the pipeline's, ...
            raise ScheduleError(
                f"schedule {name}: StartPipelineExecution of {target['Arn']} as {target.get('RoleArn')} failed: {error}"
            ) from None
        parameters = list((target.get("SageMakerPipelineParameters") or {}).get("PipelineParameterList") or [])
        invocation = Invocation(
            name, schedule["Arn"], started.execution_arn, target["RoleArn"], parameters, record["due"], started.caller
        )
        record |= {"status": "started", "pipeline_execution_arn": started.execution_arn, "caller": started.caller}
        return invocation
    except ScheduleError as error:
        record |= {"status": "refused", "error": str(error)}
        raise
    finally:
        record["time"] = dt.datetime.now(dt.UTC).isoformat()
        folder = state_dir or (Path(environ["LOCAL_STACK_STATE_DIR"]) if environ.get("LOCAL_STACK_STATE_DIR") else None)
        if folder is not None:
            journal.append(Path(folder) / INVOCATIONS_FILE, record)


def read_invocations(state_dir: Path) -> list[dict[str, Any]]:
    return journal.read(Path(state_dir) / INVOCATIONS_FILE).entries


def as_dict(invocation: Invocation) -> dict[str, Any]:
    return asdict(invocation)
