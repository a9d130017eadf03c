"""Run one pipeline execution: the steps of the stored definition in dependency order.

Order comes from DependsOn and from data references (`Get Steps.X...`). A Condition step adds the
steps of the branch it chose. As on SageMaker, every step whose dependencies succeeded starts at once,
up to ParallelismConfiguration.MaxParallelExecutionSteps (AWS's default: 50), and locally also no more
than the machine has cores (each step is a CPU-bound process). When a step fails, no further step
starts, the running ones finish, and the execution fails.
Caching follows SageMaker: the key is the step's resolved cache attributes (outputs excluded), and a
hit reuses the earlier run's properties, provided its outputs are still in S3.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import secrets
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from local_aws.events import bus as events
from local_aws.sagemaker import jobs, pipeline_events, registry, step_outputs
from local_aws.sagemaker.executor import check_steps, expressions, faults, model_steps, s3files, step_types
from local_aws.sagemaker.executor.store import ExecutionStore

log = logging.getLogger("local_aws.sagemaker.executor")

# The attributes SageMaker compares for a cache hit, by step type (its "default cache key attributes").
CACHE_ATTRIBUTES = {
    "Processing": ("AppSpecification", "Environment", "ProcessingInputs"),
    "Training": (
        "AlgorithmSpecification",
        "CheckpointConfig",
        "DebugHookConfig",
        "DebugRuleConfigurations",
        "Environment",
        "HyperParameters",
        "InputDataConfig",
    ),
    # A check step is a processing job; its check settings and the baseline it compares against are part of it.
    "QualityCheck": ("AppSpecification", "Environment", "ProcessingInputs", "CheckSettings"),
    "ClarifyCheck": ("AppSpecification", "Environment", "ProcessingInputs", "CheckSettings"),
    "Transform": ("DataProcessing", "Environment", "ModelName", "TransformInput", "TransformResources"),
}
JOB_STEPS = {
    "Processing": step_types.run_processing,
    "Training": step_types.run_training,
    "Transform": model_steps.run_transform,
}
CHECK_TYPES = {"QualityCheck", "ClarifyCheck"}
# The job kind each job step is listed as (DescribeProcessingJob answers for a check step's job).
JOB_KINDS = {"QualityCheck": "Processing", "ClarifyCheck": "Processing"}
SUPPORTED_TYPES = {"Processing", "Training", "RegisterModel", "Condition", "Fail", "Model", "Transform", *CHECK_TYPES}
# A RetryPolicy's defaults (SageMaker developer guide, "Retry Policy for Pipeline Steps").
RETRY_DEFAULTS = {"IntervalSeconds": 1, "BackoffRate": 2.0, "MaxAttempts": 5}
# How a job's failure reason starts -> the SageMaker.* exception type a RetryPolicy names.
JOB_ERROR_TYPES = {
    "CapacityError": "SageMaker.CAPACITY_ERROR",
    "InternalServerError": "SageMaker.JOB_INTERNAL_ERROR",
    "ResourceLimitExceeded": "SageMaker.RESOURCE_LIMIT",
}
# ParallelismConfiguration's default on AWS ("MaxParallelExecutionSteps", API reference).
DEFAULT_MAX_PARALLEL_STEPS = 50
STEPS_PER_CORE = 2
THROTTLING_CODES = {"ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded"}
_DURATION = re.compile(
    r"^P?(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$", re.IGNORECASE
)


def expire_after_seconds(text: str | None) -> float:
    """ISO 8601 duration ("P30D", "PT1H", also the "30d" form the docs show) in seconds."""
    if not text:
        return float("inf")
    match = _DURATION.match(text.strip())
    if not match or not any(match.groups()):
        raise step_types.StepFailure(f"ClientError: CacheConfig ExpireAfter {text!r} is not an ISO 8601 duration")
    years, months, weeks, days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return ((((years * 365 + months * 30 + weeks * 7 + days) * 24 + hours) * 60 + minutes) * 60) + seconds


def entry_args(entry: dict) -> dict:
    return {"properties": entry["Properties"], "metadata": entry["Metadata"]}


def _with_branches(steps: list[dict]):
    """The steps, and the steps of every Condition's branches, depth first."""
    for step in steps:
        yield step
        if step["Type"] == "Condition":
            yield from _with_branches(step["Arguments"].get("IfSteps", []) + step["Arguments"].get("ElseSteps", []))


def every_step(definition: dict) -> list[dict]:
    return list(_with_branches(definition.get("Steps", [])))


def dependencies_of(step: dict) -> set[str]:
    """The steps `step` waits for: DependsOn and the steps its arguments read (`Get Steps.X...`), including a check
    step's fields outside Arguments (a ClarifyCheck's ModelName reads the Model step's name)."""
    arguments = {k: v for k, v in step["Arguments"].items() if k not in ("IfSteps", "ElseSteps")}
    check_fields = {k: step[k] for k in check_steps.CHECK_SETTINGS if k in step}
    return set(step.get("DependsOn", [])) | expressions.references(arguments) | expressions.references(check_fields)


@dataclass
class Settings:
    """Where an execution runs: the stack's state folder and clients on moto."""

    state_dir: Path
    arn_prefix: str
    s3: Any
    sagemaker: Any
    environment: dict[str, str]


def exception_type(failure: Exception) -> str | None:
    """The RetryPolicy exception type of a step's failure (None: SageMaker never retries it)."""
    explicit = getattr(failure, "exception_type", None)
    if explicit:
        return explicit
    if isinstance(failure, ClientError):
        if failure.response.get("Error", {}).get("Code") in THROTTLING_CODES:
            return "Step.THROTTLING"
        if failure.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 400) >= 500:
            return "Step.SERVICE_FAULT"
    if isinstance(failure, step_types.StepFailure):
        return JOB_ERROR_TYPES.get(failure.reason.split(":", 1)[0])
    return None


class Runner:
    def __init__(
        self,
        execution: dict,
        definition: dict,
        settings: Settings,
        store: ExecutionStore,
        reuse: dict[str, dict] | None = None,
        selected: set[str] | None = None,
        reference_arn: str | None = None,
    ):
        """`reuse`: step name -> {"Properties", "Metadata"} of steps that do not run again (a selective
        execution's reference, or a retried execution's succeeded steps); `selected`: with a selective
        execution, the only steps that run; `reference_arn`: the selective execution's reference."""
        self.execution = execution
        self.reuse = reuse or {}
        self.selected = selected
        self.reference_arn = reference_arn
        self.definition = definition
        self.settings = settings
        self.store = store
        self.stop_requested = threading.Event()
        # Steps run on worker threads: the execution record (its step list) and the scope change under this lock.
        self._lock = threading.RLock()
        execution_id = execution["PipelineExecutionArn"].rsplit("/", 1)[1]
        self.execution_id = execution_id
        self.scope = expressions.Scope(
            parameters={p["Name"]: p["Value"] for p in execution["ResolvedParameters"]},
            execution={
                "PipelineExecutionId": execution_id,
                "PipelineExecutionArn": execution["PipelineExecutionArn"],
                "PipelineName": execution["PipelineArn"].rsplit("/", 1)[1],
                "PipelineArn": execution["PipelineArn"],
                "StartDateTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(execution["CreationTime"])),
                "CurrentDateTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            },
            read_s3=lambda uri: s3files.read(settings.s3, uri),
        )

    # The execution as a whole.
    def run(self) -> None:
        # As on AWS, the start is an event too (EventBridge rules may watch executions starting).
        events.emit(pipeline_events.execution_status_change(self.execution, None))
        try:
            self._run_steps()
        except Exception as error:  # noqa: BLE001 - an executor bug fails the execution, visibly
            log.exception("execution %s failed in the executor", self.execution_id)
            self._finish("Failed", f"local executor error: {type(error).__name__}: {error}")

    def _run_steps(self) -> None:
        every_step = list(_with_branches(self.definition.get("Steps", [])))
        unsupported = [f"{s['Name']} ({s['Type']})" for s in every_step if s["Type"] not in SUPPORTED_TYPES]
        if unsupported:
            self._finish("Failed", f"unsupported step type(s) for the local executor: {', '.join(unsupported)}")
            return
        # Each step's data and DependsOn dependencies, worked out once; a branch step also waits for its Condition.
        dependencies = {step["Name"]: self._dependencies(step) for step in every_step}
        # SageMaker refuses these at CreatePipeline; unchecked, the step would wait forever and never run.
        unknown = sorted(f"{name} -> {d}" for name, needs in dependencies.items() for d in needs - dependencies.keys())
        if unknown:
            self._finish("Failed", f"steps depend on steps the definition does not have: {', '.join(unknown)}")
            return
        pending = list(self.definition.get("Steps", []))
        succeeded: set[str] = set()
        failed: str | None = None
        running: dict = {}  # future -> step
        limit = self.max_parallel_steps()
        with ThreadPoolExecutor(max_workers=limit, thread_name_prefix=f"step-{self.execution_id}") as pool:
            while True:
                # Start every ready step, up to the limit, unless a step failed or a stop was asked for.
                while failed is None and not self.stop_requested.is_set() and len(running) < limit:
                    ready = next((s for s in pending if dependencies[s["Name"]] <= succeeded), None)
                    if ready is None:
                        break
                    pending.remove(ready)
                    if ready["Name"] in self.reuse:
                        running[pool.submit(self._reuse_step, ready)] = ready
                    elif self.selected is not None and ready["Name"] not in self.selected:
                        continue  # a selective execution runs its selected steps only; this one and its dependants wait
                    else:
                        running[pool.submit(self._run_step, ready)] = ready
                if not running:
                    break  # nothing runs and nothing can start: done, failed, stopped, or a branch not taken
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    step = running.pop(future)
                    outcome = future.result()
                    if outcome is None:
                        failed = failed or step["Name"]
                        continue
                    succeeded.add(step["Name"])
                    if step["Type"] == "Condition":
                        branch = "IfSteps" if outcome.properties["Outcome"] == "True" else "ElseSteps"
                        for branch_step in step["Arguments"].get(branch, []):
                            dependencies[branch_step["Name"]] = dependencies[branch_step["Name"]] | {step["Name"]}
                            pending.append(branch_step)
        if failed is not None:
            self._finish("Failed", f"Step failure: step {failed} failed")
        elif self.stop_requested.is_set():
            self._finish("Stopped", "stopped on request")
        else:
            self._finish("Succeeded", "")

    def max_parallel_steps(self) -> int:
        """How many steps run at once: the execution's MaxParallelExecutionSteps, and no more than twice the cores.

        Twice: a step's container spends part of its time starting up and moving files rather than computing, so
        a third step on two cores finishes the batch pipeline's fan-out ~7% sooner (measured, 2026-12-02); more
        would only add memory."""
        configured = (self.execution.get("ParallelismConfiguration") or {}).get(
            "MaxParallelExecutionSteps", DEFAULT_MAX_PARALLEL_STEPS
        )
        return max(1, min(int(configured), STEPS_PER_CORE * (os.cpu_count() or 1)))

    def _dependencies(self, step: dict) -> set[str]:
        return dependencies_of(step)

    def _reuse_step(self, step: dict) -> step_types.Outcome:
        """A step that does not run again: its earlier outputs feed the steps that do."""
        entry = self.reuse[step["Name"]]
        outcome = step_types.Outcome(entry["Properties"], entry["Metadata"])
        self._publish(step, outcome)
        step_outputs.save(
            self.settings.state_dir, self.execution["PipelineExecutionArn"], step["Name"], **entry_args(entry)
        )
        if self.reference_arn:  # a selective execution reports the step, and where its results come from
            now = time.time()
            record = {"StepName": step["Name"], "StepStatus": "Succeeded", "StartTime": now, "EndTime": now}
            record.update(Metadata=outcome.metadata, AttemptCount=0)
            record["SelectiveExecutionResult"] = {"SourcePipelineExecutionArn": self.reference_arn}
            self._save_step(record)
        return outcome

    # One step.
    def _run_step(self, step: dict) -> step_types.Outcome | None:
        name, kind = step["Name"], step["Type"]
        record = {"StepName": name, "StepStatus": "Executing", "StartTime": time.time(), "AttemptCount": 1}
        if step.get("DisplayName"):
            record["StepDisplayName"] = step["DisplayName"]
        if step.get("Description"):
            record["StepDescription"] = step["Description"]
        self._save_step(record)
        log.info("execution %s: step %s (%s) executing", self.execution_id, name, kind)
        try:
            outcome, cache_source = self._attempts(step, record)
        except Exception as failure:  # noqa: BLE001 - whatever stops a step fails it: none stays Executing
            reason = self._failure_reason(name, failure)
            record.update(StepStatus="Failed", EndTime=time.time(), FailureReason=reason[: step_types.MAX_REASON])
            record["Metadata"] = getattr(failure, "metadata", {})
            self._save_step(record)
            log.info("execution %s: step %s failed: %s", self.execution_id, name, reason)
            return None
        self._publish(step, outcome)
        step_outputs.save(
            self.settings.state_dir, self.execution["PipelineExecutionArn"], name, outcome.properties, outcome.metadata
        )
        record.update(StepStatus="Succeeded", EndTime=time.time(), Metadata=outcome.metadata)
        if cache_source:
            record["CacheHitResult"] = {"SourcePipelineExecutionArn": cache_source}
        self._save_step(record)
        log.info("execution %s: step %s succeeded%s", self.execution_id, name, " (cached)" if cache_source else "")
        return outcome

    def _publish(self, step: dict, outcome: step_types.Outcome) -> None:
        """Make a step's properties readable by the steps after it."""
        with self._lock:
            self.scope.steps[step["Name"]] = outcome.properties
            self.scope.property_files[step["Name"]] = self._property_files(step, outcome.properties)

    def _attempts(self, step: dict, record: dict) -> tuple[step_types.Outcome, str | None]:
        """Run the step, again after each failure a RetryPolicy of the step matches (interval x backoff)."""
        policies = [{**RETRY_DEFAULTS, **policy} for policy in step.get("RetryPolicies", [])]
        retries = [0] * len(policies)
        first_attempt = time.time()
        while True:
            try:
                faults.raise_next(self.settings.state_dir, step["Name"])
                if step["Type"] == "Condition":
                    arguments = {"Conditions": expressions.evaluate(step["Arguments"]["Conditions"], self.scope)}
                else:
                    arguments = expressions.evaluate(step["Arguments"], self.scope)
                return self._execute(step, arguments)
            except Exception as failure:
                kind = exception_type(failure)
                index = next((i for i, p in enumerate(policies) if kind in p.get("ExceptionType", [])), None)
                if index is None or self.stop_requested.is_set():
                    raise
                policy = policies[index]
                expired = "ExpireAfterMin" in policy and time.time() - first_attempt > policy["ExpireAfterMin"] * 60
                if retries[index] >= policy["MaxAttempts"] or expired:
                    raise
                delay = policy["IntervalSeconds"] * policy["BackoffRate"] ** retries[index]
                retries[index] += 1
                log.info("execution %s: step %s: %s, retry in %.1f s", self.execution_id, step["Name"], kind, delay)
                self.stop_requested.wait(delay)
                record["AttemptCount"] += 1
                self._save_step(record)

    def _failure_reason(self, step_name: str, failure: Exception) -> str:
        if isinstance(failure, step_types.StepFailure):
            return failure.reason
        if isinstance(failure, (expressions.ExpressionError, ClientError, BotoCoreError)):
            return f"ClientError: {failure}"  # e.g. an input in a bucket that does not exist, as SageMaker says
        log.exception("execution %s: step %s failed in the executor", self.execution_id, step_name)
        return f"local executor error: {type(failure).__name__}: {failure}"

    def _execute(self, step: dict, arguments: dict) -> tuple[step_types.Outcome, str | None]:
        kind = step["Type"]
        if kind == "Condition":
            outcome = all(step_types.evaluate_condition(c) for c in arguments["Conditions"])
            text = "True" if outcome else "False"
            return step_types.Outcome({"Outcome": text}, {"Condition": {"Outcome": text}}), None
        if kind == "Fail":
            message = str(arguments.get("ErrorMessage", ""))
            raise step_types.StepFailure(message, {"Fail": {"ErrorMessage": message}})
        if kind == "RegisterModel":
            # As on AWS, a package registered by a pipeline names the execution that generated it.
            metadata = {
                **arguments.get("MetadataProperties", {}),
                "GeneratedBy": self.execution["PipelineExecutionArn"],
            }
            outcome = step_types.run_register_model({**arguments, "MetadataProperties": metadata}, self._job(step))
            events.emit(registry.created_event(self.settings.sagemaker, outcome.properties["ModelPackageArn"]))
            return outcome, None
        if kind == "Model":
            return model_steps.run_model(arguments, self._job(step)), None

        run = JOB_STEPS.get(kind)
        if kind in CHECK_TYPES:
            check = check_steps.settings(step, lambda value: expressions.evaluate(value, self.scope))
            arguments, baseline = check_steps.with_baseline(arguments, check, self.settings.sagemaker)

            def run(job_arguments: dict, job: step_types.Job) -> step_types.Outcome:
                extra = check_steps.shadow_endpoint_model(job, check["ModelName"]) if kind == "ClarifyCheck" else None
                return check_steps.run(job_arguments, job, check, baseline, extra)

            arguments = {**arguments, "CheckSettings": check}  # in the cache key, never in the job's request

        cache_key = self._cache_key(step, arguments)
        if cache_key:
            max_age = expire_after_seconds(step["CacheConfig"].get("ExpireAfter"))
            entry = self.store.cached(cache_key, max_age)
            if entry and self._outputs_exist(kind, entry["Properties"]):
                return step_types.Outcome(entry["Properties"], entry["Metadata"]), entry["SourcePipelineExecutionArn"]
        outcome = self._run_job(step, {k: v for k, v in arguments.items() if k != "CheckSettings"}, run)
        if cache_key:
            self.store.remember(
                cache_key,
                {
                    "Properties": outcome.properties,
                    "Metadata": outcome.metadata,
                    "SourcePipelineExecutionArn": self.execution["PipelineExecutionArn"],
                    "EndTime": time.time(),
                },
            )
        return outcome, None

    def _run_job(self, step: dict, arguments: dict, run) -> step_types.Outcome:
        """Run a job step and keep its job for Describe*Job / List*Jobs, whatever the outcome."""
        kind, job, started = JOB_KINDS.get(step["Type"], step["Type"]), self._job(step), time.time()
        arn = f"{job.arn_prefix}:{jobs.KINDS[kind].arn_type}/{job.name}"
        details = {
            "name": job.name,
            "arn": arn,
            "arguments": arguments,
            "started": started,
            "execution_arn": self.execution["PipelineExecutionArn"],
            "step_name": step["Name"],
        }
        try:
            outcome = run(arguments, job)
        except step_types.StepFailure as failure:
            jobs.record(self.settings.state_dir, kind, failure_reason=failure.reason, **details)
            # On AWS a failed job step's Metadata still names its job.
            failure.metadata = failure.metadata or {f"{kind}Job": {"Arn": arn}}
            raise
        jobs.record(self.settings.state_dir, kind, properties=outcome.properties, **details)
        return outcome

    def _cache_key(self, step: dict, arguments: dict) -> str | None:
        if not step.get("CacheConfig", {}).get("Enabled"):
            return None
        attributes = {name: arguments.get(name) for name in CACHE_ATTRIBUTES[step["Type"]]}
        document = {"Pipeline": self.execution["PipelineArn"], "Step": step["Name"], "Attributes": attributes}
        return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()

    def _outputs_exist(self, kind: str, properties: dict) -> bool:
        """A cache hit is only as good as its outputs: a restarted stack may have lost them."""
        if kind == "Training":
            uris = [properties["ModelArtifacts"]["S3ModelArtifacts"]]
        elif kind == "Transform":
            uris = [properties["TransformOutput"]["S3OutputPath"]]
        else:
            uris = [o["S3Output"]["S3Uri"] for o in properties.get("ProcessingOutputConfig", {}).get("Outputs", [])]
        return all(s3files.exists(self.settings.s3, uri) for uri in uris)

    def _property_files(self, step: dict, properties: dict) -> dict[str, str]:
        files = {}
        outputs = {o["OutputName"]: o for o in properties.get("ProcessingOutputConfig", {}).get("Outputs", [])}
        for item in step.get("PropertyFiles", []):
            output = outputs.get(item["OutputName"])
            if output is not None:
                files[item["PropertyFileName"]] = f"{output['S3Output']['S3Uri'].rstrip('/')}/{item['FilePath']}"
        return files

    def _job(self, step: dict) -> step_types.Job:
        # SageMaker names pipeline jobs "pipelines-<execution id>-<step>-<random>", 63 characters at most.
        name = f"pipelines-{self.execution_id}-{step['Name']}-{secrets.token_hex(5)}"[:63].lower()
        folder = self.settings.state_dir / "jobs" / name
        folder.mkdir(parents=True, exist_ok=True)
        return step_types.Job(
            name=name,
            arn_prefix=self.settings.arn_prefix,
            folder=folder,
            s3=self.settings.s3,
            sagemaker=self.settings.sagemaker,
            environment=self.settings.environment,
        )

    # Status, as DescribePipelineExecution and ListPipelineExecutionSteps report it.
    def _save_step(self, record: dict) -> None:
        with self._lock:
            steps = self.execution["Steps"]
            index = next((i for i, s in enumerate(steps) if s["StepName"] == record["StepName"]), None)
            before = steps[index] if index is not None else None
            # In place: a step keeps its position (start order) while its status changes.
            self.execution["Steps"] = (
                steps + [dict(record)] if index is None else steps[:index] + [dict(record)] + steps[index + 1 :]
            )
            self.store.save(self.execution)
            snapshot = {**self.execution, "Steps": list(self.execution["Steps"])}
        previous = before["StepStatus"] if before else None
        if previous != record["StepStatus"]:  # a retry's new attempt is no status change
            step_type = next((s["Type"] for s in every_step(self.definition) if s["Name"] == record["StepName"]), "")
            events.emit(pipeline_events.step_status_change(snapshot, record, step_type, previous))

    def _finish(self, status: str, reason: str) -> None:
        with self._lock:
            previous = self.execution["PipelineExecutionStatus"]
            self.execution["PipelineExecutionStatus"] = status
            if reason:
                self.execution["FailureReason"] = reason
            self.store.save(self.execution)
        log.info("execution %s: %s %s", self.execution_id, status, reason)
        events.emit(pipeline_events.execution_status_change({**self.execution, "EndTime": time.time()}, previous))
