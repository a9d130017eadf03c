"""The SageMaker pipeline-execution API, answered by the local executor instead of moto.

moto stores pipelines but runs nothing. These handlers start a real execution of the stored
definition on a background thread and report its status in the API's own shapes, so
`run_pipeline run` follows a local execution exactly as it follows one on AWS.
"""

from __future__ import annotations

import json
import secrets
import string
import threading
import time

from local_aws.core import api
from local_aws.sagemaker.executor.runner import Runner, Settings
from local_aws.sagemaker.executor.store import ExecutionStore

_running: dict[str, Runner] = {}  # execution ARN -> its runner, while it runs in this process
_ID_ALPHABET = string.ascii_lowercase + string.digits


def start_pipeline_execution(request: dict, context: api.Context) -> dict:
    sagemaker = context.client("sagemaker")
    pipeline = sagemaker.describe_pipeline(PipelineName=request["PipelineName"])  # moto's errors pass through
    if not pipeline.get("PipelineDefinition"):
        raise api.LocalApiError("ValidationException", "the local executor needs the definition stored inline")
    definition = json.loads(pipeline["PipelineDefinition"])
    declared = {p["Name"]: p for p in definition.get("Parameters", [])}
    given = {p["Name"]: p["Value"] for p in request.get("PipelineParameters", [])}
    unknown = sorted(set(given) - set(declared))
    if unknown:
        raise api.LocalApiError(
            "ValidationException", f"Parameters {unknown} are not defined in pipeline {pipeline['PipelineName']}"
        )
    resolved = []
    for name, parameter in declared.items():
        if name not in given and "DefaultValue" not in parameter:
            raise api.LocalApiError("ValidationException", f"Parameter {name} has no default and no value was given")
        resolved.append({"Name": name, "Value": _typed(parameter, given.get(name, parameter.get("DefaultValue")))})

    execution_id = "".join(secrets.choice(_ID_ALPHABET) for _ in range(12))
    now = time.time()
    execution = {
        "PipelineArn": pipeline["PipelineArn"],
        "PipelineExecutionArn": f"{pipeline['PipelineArn']}/execution/{execution_id}",
        "PipelineExecutionDisplayName": request.get("PipelineExecutionDisplayName") or f"execution-{int(now * 1000)}",
        "PipelineExecutionStatus": "Executing",
        "CreationTime": now,
        "PipelineParameters": request.get("PipelineParameters", []),
        "ResolvedParameters": resolved,
        "Steps": [],
    }
    store = ExecutionStore(context.state_dir)
    store.save(execution)
    settings = Settings(
        state_dir=context.state_dir,
        arn_prefix=f"arn:aws:sagemaker:{context.region}:{context.account_id}",
        s3=context.client("s3"),
        sagemaker=sagemaker,
        environment={
            "AWS_ENDPOINT_URL": context.moto_url,
            "AWS_ACCESS_KEY_ID": api.DUMMY_ACCESS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": api.DUMMY_SECRET_ACCESS_KEY,
            "AWS_DEFAULT_REGION": context.region,
        },
    )
    runner = Runner(execution, definition, settings, store)
    _running[execution["PipelineExecutionArn"]] = runner

    def run() -> None:
        try:
            runner.run()
        finally:
            _running.pop(execution["PipelineExecutionArn"], None)

    threading.Thread(target=run, name=f"pipeline-{execution_id}", daemon=True).start()
    return {"PipelineExecutionArn": execution["PipelineExecutionArn"]}


def describe_pipeline_execution(request: dict, context: api.Context) -> dict:
    execution = _load(request["PipelineExecutionArn"], context)
    keys = ("PipelineArn", "PipelineExecutionArn", "PipelineExecutionDisplayName", "PipelineExecutionStatus")
    answer = {key: execution[key] for key in keys}
    answer.update(CreationTime=execution["CreationTime"], LastModifiedTime=execution["LastModifiedTime"])
    if execution.get("FailureReason"):
        answer["FailureReason"] = execution["FailureReason"]
    return answer


def list_pipeline_execution_steps(request: dict, context: api.Context) -> dict:
    steps = sorted(_load(request["PipelineExecutionArn"], context)["Steps"], key=lambda s: s["StartTime"])
    if request.get("SortOrder", "Descending") == "Descending":
        steps.reverse()
    return {"PipelineExecutionSteps": steps}


def list_pipeline_executions(request: dict, context: api.Context) -> dict:
    pipeline = context.client("sagemaker").describe_pipeline(PipelineName=request["PipelineName"])
    executions = sorted(ExecutionStore(context.state_dir).for_pipeline(pipeline["PipelineArn"]), key=_started)
    if request.get("SortOrder", "Descending") == "Descending":
        executions.reverse()
    return {
        "PipelineExecutionSummaries": [
            {
                "PipelineExecutionArn": e["PipelineExecutionArn"],
                "StartTime": e["CreationTime"],
                "PipelineExecutionStatus": e["PipelineExecutionStatus"],
                "PipelineExecutionDisplayName": e["PipelineExecutionDisplayName"],
            }
            for e in executions
        ]
    }


def list_pipeline_parameters_for_execution(request: dict, context: api.Context) -> dict:
    return {"PipelineParameters": _load(request["PipelineExecutionArn"], context)["PipelineParameters"]}


def stop_pipeline_execution(request: dict, context: api.Context) -> dict:
    arn = request["PipelineExecutionArn"]
    execution = _load(arn, context)
    runner = _running.get(arn)
    if runner is None or execution["PipelineExecutionStatus"] != "Executing":
        raise api.LocalApiError("ValidationException", f"Pipeline execution {arn} is not executing")
    runner.stop_requested.set()  # takes effect before the next step starts, as Stopping does on AWS
    return {"PipelineExecutionArn": arn}


def _load(arn: str, context: api.Context) -> dict:
    execution = ExecutionStore(context.state_dir).load(arn)
    if execution is None:
        raise api.LocalApiError("ResourceNotFound", f"Pipeline execution {arn} does not exist")
    if execution["PipelineExecutionStatus"] == "Executing" and arn not in _running:
        # Its runner died with an earlier server process: say so instead of "Executing" forever.
        execution["PipelineExecutionStatus"] = "Failed"
        execution["FailureReason"] = "the local stack stopped while this execution ran; start it again"
    return execution


def _started(execution: dict) -> float:
    return execution["CreationTime"]


def _typed(parameter: dict, value):
    kind = parameter.get("Type", "String")
    try:
        if kind == "Integer":
            return int(value)
        if kind == "Float":
            return float(value)
        if kind == "Boolean":
            return value if isinstance(value, bool) else str(value).lower() == "true"
    except ValueError:
        raise api.LocalApiError(
            "ValidationException", f"Parameter {parameter['Name']} must be {kind}, got {value!r}"
        ) from None
    return str(value)


OPERATIONS = {
    "StartPipelineExecution": start_pipeline_execution,
    "DescribePipelineExecution": describe_pipeline_execution,
    "ListPipelineExecutionSteps": list_pipeline_execution_steps,
    "ListPipelineExecutions": list_pipeline_executions,
    "ListPipelineParametersForExecution": list_pipeline_parameters_for_execution,
    "StopPipelineExecution": stop_pipeline_execution,
}
