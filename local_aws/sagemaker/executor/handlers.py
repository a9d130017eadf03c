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
from local_aws.sagemaker import idempotency, listing, step_outputs
from local_aws.sagemaker.executor import runner as runner_module
from local_aws.sagemaker.executor.runner import Runner, Settings
from local_aws.sagemaker.executor.store import ExecutionStore

_running: dict[str, Runner] = {}  # execution ARN -> its runner, while it runs in this process
_ID_ALPHABET = string.ascii_lowercase + string.digits


def start_pipeline_execution(request: dict, context: api.Context) -> dict:
    # The same ClientRequestToken again is the same request: the first execution's ARN, nothing started.
    return idempotency.once(
        context.state_dir,
        context.account_id,
        "StartPipelineExecution",
        request.get("ClientRequestToken"),
        lambda: _start(request, context),
    )


def _start(request: dict, context: api.Context) -> dict:
    sagemaker = context.client("sagemaker")
    pipeline = sagemaker.describe_pipeline(PipelineName=request["PipelineName"])  # moto's errors pass through
    if not pipeline.get("PipelineDefinition"):
        raise api.LocalApiError("ValidationException", f"Pipeline {pipeline['PipelineName']} has no definition")
    try:
        definition = json.loads(pipeline["PipelineDefinition"])
    except ValueError:
        raise api.LocalApiError(
            "ValidationException", f"The definition of pipeline {pipeline['PipelineName']} is not valid JSON"
        ) from None
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
    selective = request.get("SelectiveExecutionConfig")
    reuse, selected, reference_arn = {}, None, None
    if selective:
        reference_arn, reuse, selected = _selection(selective, pipeline, definition, context)

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
        # The definition this execution runs, as DescribePipelineDefinitionForExecution answers it after an update.
        "PipelineDefinition": pipeline["PipelineDefinition"],
    }
    if request.get("PipelineExecutionDescription"):
        execution["PipelineExecutionDescription"] = request["PipelineExecutionDescription"]
    parallelism = request.get("ParallelismConfiguration") or pipeline.get("ParallelismConfiguration")
    if parallelism:
        # Honoured by the runner: never more steps at once than MaxParallelExecutionSteps (nor than the cores).
        execution["ParallelismConfiguration"] = parallelism
    if selective:
        execution["SelectiveExecutionConfig"] = {**selective, "SourcePipelineExecutionArn": reference_arn}
    role = _role_credentials(pipeline, context)  # before the execution exists: a refusal leaves nothing behind
    ExecutionStore(context.state_dir).save(execution)
    _launch(execution, definition, context, role, reuse=reuse, selected=selected, reference_arn=reference_arn)
    return {"PipelineExecutionArn": execution["PipelineExecutionArn"]}


def _selection(selective: dict, pipeline: dict, definition: dict, context: api.Context):
    """(reference ARN, reused outputs, selected names) of a SelectiveExecutionConfig, checked as AWS checks it."""
    reference_arn = selective.get("SourcePipelineExecutionArn")
    if reference_arn is None:  # AWS takes the latest successful execution of the pipeline
        done = [
            e
            for e in ExecutionStore(context.state_dir).for_pipeline(pipeline["PipelineArn"])
            if e["PipelineExecutionStatus"] == "Succeeded"
        ]
        if not done:
            raise api.LocalApiError(
                "ValidationException", f"Pipeline {pipeline['PipelineName']} has no successful execution to reuse"
            )
        reference_arn = max(done, key=_started)["PipelineExecutionArn"]
    reference = _load(reference_arn, context)
    if reference["PipelineArn"] != pipeline["PipelineArn"]:
        raise api.LocalApiError(
            "ValidationException", f"Reference execution {reference_arn} is not an execution of this pipeline"
        )
    if reference["PipelineExecutionStatus"] not in ("Succeeded", "Failed"):
        raise api.LocalApiError(
            "ValidationException",
            f"Reference execution {reference_arn} is {reference['PipelineExecutionStatus']}: "
            "it must be Succeeded or Failed",
        )
    steps = {step["Name"]: step for step in runner_module.every_step(definition)}
    selected = {item["StepName"] for item in selective["SelectedSteps"]}
    unknown = sorted(selected - steps.keys())
    if unknown:
        raise api.LocalApiError("ValidationException", f"Selected steps {unknown} are not steps of the pipeline")
    outputs = step_outputs.load(context.state_dir, reference_arn)
    for name in sorted(selected):
        missing = sorted(
            d for d in runner_module.dependencies_of(steps[name]) if d not in selected and d not in outputs
        )
        if missing:
            raise api.LocalApiError(
                "ValidationException",
                f"Step {name} depends on {missing}, which neither are selected nor succeeded in {reference_arn}",
            )
    # Reused: the reference's steps upstream of the selection. What comes after a selected step does not run
    # (AWS runs the selected steps only), and the reference's results of it would be stale.
    needs = {name: runner_module.dependencies_of(step) for name, step in steps.items()}
    downstream, grew = set(selected), True
    while grew:
        grown = downstream | {name for name, wanted in needs.items() if wanted & downstream}
        grew, downstream = grown != downstream, grown
    reuse = {name: entry for name, entry in outputs.items() if name not in downstream}
    return reference_arn, reuse, selected


def _launch(execution: dict, definition: dict, context: api.Context, role: dict[str, str], **plan) -> None:
    store = ExecutionStore(context.state_dir)
    sagemaker = context.client("sagemaker")
    settings = Settings(
        state_dir=context.state_dir,
        arn_prefix=f"arn:aws:sagemaker:{context.region}:{context.account_id}",
        s3=context.client("s3"),
        sagemaker=sagemaker,
        environment={
            "AWS_ENDPOINT_URL": context.moto_url,
            **role,
            "AWS_DEFAULT_REGION": context.region,
            # The per-service endpoints too (EventBridge, SageMaker on the gateway): a step's own PutEvents is then
            # recorded and routed through the rules like any other event, as on AWS.
            **{k: v for k, v in context.environment.items() if k.startswith("AWS_ENDPOINT_URL_")},
        },
    )
    runner = Runner(execution, definition, settings, store, **plan)
    arn = execution["PipelineExecutionArn"]
    _running[arn] = runner

    def run() -> None:
        try:
            runner.run()
        finally:
            _running.pop(arn, None)

    threading.Thread(target=run, name=f"pipeline-{arn.rsplit('/', 1)[1]}", daemon=True).start()


def _role_credentials(pipeline: dict, context: api.Context) -> dict[str, str]:
    """What SageMaker gives a pipeline's jobs: credentials of the pipeline's role (moto's STS), so a step's own
    process acts in the pipeline's account, the caller's. A role of another account is refused, as IAM's PassRole
    refuses it."""
    role = pipeline.get("RoleArn") or ""
    if role.split(":")[4:5] != [context.account_id]:
        raise api.LocalApiError(
            "ValidationException",
            f"pipeline {pipeline['PipelineName']}'s role {role or '(none)'} is not in its account {context.account_id}:"
            " a pipeline's jobs run with a role of the pipeline's own account (UpdatePipeline with RoleArn)",
        )
    session = f"SageMaker-{pipeline['PipelineName']}"[:64]
    credentials = context.client("sts").assume_role(RoleArn=role, RoleSessionName=session)["Credentials"]
    return {
        "AWS_ACCESS_KEY_ID": credentials["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": credentials["SecretAccessKey"],
        "AWS_SESSION_TOKEN": credentials["SessionToken"],
    }


def describe_pipeline_execution(request: dict, context: api.Context) -> dict:
    execution = _load(request["PipelineExecutionArn"], context)
    keys = ("PipelineArn", "PipelineExecutionArn", "PipelineExecutionDisplayName", "PipelineExecutionStatus")
    answer = {key: execution[key] for key in keys}
    answer.update(CreationTime=execution["CreationTime"], LastModifiedTime=execution["LastModifiedTime"])
    for key in (
        "PipelineExecutionDescription",
        "FailureReason",
        "ParallelismConfiguration",
        "SelectiveExecutionConfig",
    ):
        if execution.get(key):
            answer[key] = execution[key]
    # AWS's default experiment config: the pipeline's name and the execution's id (its jobs carry the same).
    answer["PipelineExperimentConfig"] = {
        "ExperimentName": execution["PipelineArn"].rsplit("/", 1)[1],
        "TrialName": execution["PipelineExecutionArn"].rsplit("/", 1)[1],
    }
    return answer


def describe_pipeline_definition_for_execution(request: dict, context: api.Context) -> dict:
    execution = _load(request["PipelineExecutionArn"], context)
    definition = execution.get("PipelineDefinition")
    if definition is None:  # an execution started before the stack kept definitions: the pipeline's current one
        definition = context.client("sagemaker").describe_pipeline(PipelineName=execution["PipelineArn"])[
            "PipelineDefinition"
        ]
    return {"PipelineDefinition": definition, "CreationTime": execution["CreationTime"]}


def list_pipeline_execution_steps(request: dict, context: api.Context) -> dict:
    steps = sorted(_load(request["PipelineExecutionArn"], context)["Steps"], key=lambda s: s["StartTime"])
    if request.get("SortOrder", "Descending") == "Descending":
        steps.reverse()
    return listing.page("ListPipelineExecutionSteps", steps, request, "PipelineExecutionSteps")


def list_pipeline_executions(request: dict, context: api.Context) -> dict:
    pipeline = context.client("sagemaker").describe_pipeline(PipelineName=request["PipelineName"])
    executions = ExecutionStore(context.state_dir).for_pipeline(pipeline["PipelineArn"])
    executions = [_load(e["PipelineExecutionArn"], context) for e in executions]
    executions = listing.within(executions, "CreationTime", request.get("CreatedAfter"), request.get("CreatedBefore"))
    keys = {"CreationTime": _started, "PipelineExecutionArn": lambda e: e["PipelineExecutionArn"]}
    executions = listing.sort(executions, request, keys, "CreationTime")
    summaries = []
    for e in executions:
        summary = {
            "PipelineExecutionArn": e["PipelineExecutionArn"],
            "StartTime": e["CreationTime"],
            "PipelineExecutionStatus": e["PipelineExecutionStatus"],
            "PipelineExecutionDisplayName": e["PipelineExecutionDisplayName"],
        }
        if e.get("PipelineExecutionDescription"):
            summary["PipelineExecutionDescription"] = e["PipelineExecutionDescription"]
        if e.get("FailureReason"):
            summary["PipelineExecutionFailureReason"] = e["FailureReason"]
        summaries.append(summary)
    return listing.page("ListPipelineExecutions", summaries, request, "PipelineExecutionSummaries")


def list_pipeline_parameters_for_execution(request: dict, context: api.Context) -> dict:
    parameters = _load(request["PipelineExecutionArn"], context)["PipelineParameters"]
    return listing.page("ListPipelineParametersForExecution", parameters, request, "PipelineParameters")


def stop_pipeline_execution(request: dict, context: api.Context) -> dict:
    def stop() -> dict:
        arn = request["PipelineExecutionArn"]
        execution = _load(arn, context)
        runner = _running.get(arn)
        if runner is None or execution["PipelineExecutionStatus"] != "Executing":
            raise api.LocalApiError("ValidationException", f"Pipeline execution {arn} is not executing")
        runner.stop_requested.set()  # takes effect before the next step starts, as Stopping does on AWS
        return {"PipelineExecutionArn": arn}

    return idempotency.once(
        context.state_dir, context.account_id, "StopPipelineExecution", request.get("ClientRequestToken"), stop
    )


def retry_pipeline_execution(request: dict, context: api.Context) -> dict:
    """Run a failed or stopped execution again from where it failed: succeeded steps keep their results."""

    def retry() -> dict:
        arn = request["PipelineExecutionArn"]
        execution = _load(arn, context)
        status = execution["PipelineExecutionStatus"]
        if status not in ("Failed", "Stopped") or arn in _running:
            raise api.LocalApiError(
                "ValidationException",
                f"Pipeline execution {arn} is {status}: only a Failed or Stopped one can be retried",
            )
        reuse = step_outputs.load(context.state_dir, arn)
        # The retried steps start over: their failed records go, the succeeded ones stay as they were.
        execution["Steps"] = [
            s for s in execution["Steps"] if s["StepStatus"] == "Succeeded" and s["StepName"] in reuse
        ]
        execution["PipelineExecutionStatus"] = "Executing"
        execution.pop("FailureReason", None)
        if request.get("ParallelismConfiguration"):
            execution["ParallelismConfiguration"] = request["ParallelismConfiguration"]
        name = execution["PipelineArn"].rsplit("/", 1)[1]  # moto finds a pipeline by its name, not its ARN
        role = _role_credentials(context.client("sagemaker").describe_pipeline(PipelineName=name), context)
        ExecutionStore(context.state_dir).save(execution)
        _launch(execution, json.loads(execution["PipelineDefinition"]), context, role, reuse=reuse)
        return {"PipelineExecutionArn": arn}

    return idempotency.once(
        context.state_dir, context.account_id, "RetryPipelineExecution", request.get("ClientRequestToken"), retry
    )


def update_pipeline_execution(request: dict, context: api.Context) -> dict:
    arn = request["PipelineExecutionArn"]
    store = ExecutionStore(context.state_dir)
    runner = _running.get(arn)
    execution = runner.execution if runner is not None else _load(arn, context)  # a running one: its live record
    for key in ("PipelineExecutionDescription", "PipelineExecutionDisplayName", "ParallelismConfiguration"):
        if key in request:
            execution[key] = request[key]
    store.save(execution)
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
    "RetryPipelineExecution": retry_pipeline_execution,
    "UpdatePipelineExecution": update_pipeline_execution,
    "DescribePipelineDefinitionForExecution": describe_pipeline_definition_for_execution,
}
