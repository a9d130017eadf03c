"""`make demo`: the whole MLOps loop, offline, on the local stack.

    push -> SageMaker pipeline -> registered model -> approval -> deploy pipeline
         -> staging endpoint -> staging tests -> production

Each stage runs what the real system runs, against the local stack: the model-build repo's
.gitlab-ci.yml (through gitlab-ci-local, as a push to the default branch), the approval command, the
trigger Lambda's handler, and the model-deploy repo's .gitlab-ci.yml with the trigger's variables,
its manual production button pressed. Stops everything it started.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "scripts")]

import abalone_data  # noqa: E402
import boto3  # noqa: E402
from ci_local import LOCAL_PROJECT_VARIABLES, CiLocalError, JobResult, run_pipeline, summary_lines  # noqa: E402

from local_stack import LocalStack, LocalStackError, events  # noqa: E402
from local_stack.gitlab_receiver import GitLabReceiver, TriggeredPipeline  # noqa: E402
from local_stack.trigger_bridge import deliver_approval_event  # noqa: E402

PROJECT = LOCAL_PROJECT_VARIABLES["SAGEMAKER_PROJECT_NAME"]
STATE_CHANGE = "SageMaker Model Package State Change"


class DemoError(RuntimeError):
    pass


@dataclass
class Report:
    stages: list[tuple[str, float, str]] = field(default_factory=list)
    facts: dict[str, str] = field(default_factory=dict)
    jobs: list[JobResult] = field(default_factory=list)  # the GitLab jobs that ran, in order

    def stage(self, number: int, total: int, name: str):
        return _Stage(self, f"[{number}/{total}] {name}")


class _Stage:
    def __init__(self, report: Report, title: str):
        self.report, self.title, self.outcome = report, title, ""

    def __enter__(self):
        print(f"\n==> {self.title}", flush=True)
        self.started = time.monotonic()
        return self

    def __exit__(self, kind, error, _traceback):
        seconds = time.monotonic() - self.started
        self.report.stages.append((self.title, seconds, self.outcome if kind is None else f"FAILED: {error}"))
        return False


def run_command(command: list[str], env: dict[str, str], cwd: Path, what: str) -> None:
    """Run a project command with its output shown live; a failure stops the demo with its name."""
    print(f"    $ {' '.join(command)}", flush=True)
    finished = subprocess.run(command, env=env, cwd=cwd)
    if finished.returncode != 0:
        raise DemoError(f"{what} failed (exit {finished.returncode}); its output is above")


def gitlab_pipeline(folder: str, variables: dict[str, str], env: dict[str, str], state: Path, manual=()):
    """A repo's real .gitlab-ci.yml, run by gitlab-ci-local on the shell executor; job output streams live."""
    return run_pipeline(folder, variables, manual=manual, env=env, state=state / "gitlab-ci-local" / folder)


def deploy_pipeline(project: dict[str, str], env: dict[str, str], state: Path, jobs: list[JobResult]):
    """What the GitLab receiver does with a triggered pipeline: model-deploy's CI, prod button pressed."""

    def run(pipeline: TriggeredPipeline) -> None:
        print(f"\n    GitLab: deploy pipeline #{pipeline.id} on {pipeline.ref}, variables {sorted(pipeline.variables)}")
        variables = {**project, **pipeline.variables, "CI_PIPELINE_SOURCE": "trigger"}
        jobs.extend(gitlab_pipeline("model-deploy", variables, env, state, manual=["production-deploy"]))

    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.environ.get("DATA"), help="CSV path, s3:// URI or 'uci'")
    parser.add_argument("--state-dir", type=Path, default=REPO_ROOT / ".local" / "demo")
    args = parser.parse_args(argv)
    report = Report()
    total = 6
    started = time.monotonic()
    try:
        with report.stage(1, total, "Local stack: moto + pipeline executor + SageMaker runtime") as stage:
            stack = LocalStack(state_dir=args.state_dir)
            stack.start()
            stage.outcome = f"gateway {stack.env['AWS_ENDPOINT_URL_SAGEMAKER']}"
        try:
            return _loop(stack, args, report, total)
        finally:
            stack.stop()
            print("\nLocal stack stopped.")
    except (DemoError, abalone_data.DataError, CiLocalError, LocalStackError) as error:
        print(f"\nerror: {error}", file=sys.stderr)
        return 1
    finally:
        _print_summary(report, time.monotonic() - started)


def _loop(stack: LocalStack, args, report: Report, total: int) -> int:
    # The CI/CD variables the project stack's seed Lambda sets on both GitLab repos.
    project = {"AWS_REGION": stack.env["AWS_DEFAULT_REGION"], **LOCAL_PROJECT_VARIABLES}
    env = stack.environ()
    os.environ.update(stack.env)  # this process's own boto3 calls go to the stack too
    bucket, group = env["ARTIFACT_BUCKET"], env["MODEL_PACKAGE_GROUP_NAME"]
    sagemaker, s3 = boto3.client("sagemaker"), boto3.client("s3")

    with report.stage(2, total, "Data") as stage:
        data = abalone_data.resolve(args.data)
        print(f"    {data.description}")
        uri = abalone_data.upload(data, s3, bucket)
        stage.outcome = ("SYNTHETIC sample at " if data.synthetic else "") + uri
        report.facts["Data"] = stage.outcome

    with report.stage(3, total, "git push -> model-build's .gitlab-ci.yml (gitlab-ci-local)") as stage:
        variables = {**project, "INPUT_DATA_URL": uri, "CI_PIPELINE_SOURCE": "push"}
        report.jobs += gitlab_pipeline("model-build", variables, env, args.state_dir)
        package = _latest_package(sagemaker, group)
        metrics = _metrics(s3, package)
        cached = _cached_steps(sagemaker)
        stage.outcome = f"{package['ModelPackageArn'].split('/', 1)[1]}: RMSE {metrics['rmse']['value']:.3f}"
        stage.outcome += f", {len(cached)} steps from the cache ({', '.join(cached)})" if cached else ", no cache hits"
        report.facts["Registered"] = f"{package['ModelPackageArn']} ({package['ModelApprovalStatus']})"
        report.facts["Metrics"] = ", ".join(f"{name} {value['value']:.3f}" for name, value in metrics.items())
        print(f"    Registered {package['ModelPackageArn']}: {report.facts['Metrics']}")

    with report.stage(4, total, "Approval in the model registry") as stage:
        arn = package["ModelPackageArn"]
        approve = [str(REPO_ROOT / "scripts" / "approve-model"), "approve", "--arn", arn, "--description", "make demo"]
        run_command([sys.executable, *approve], env, REPO_ROOT, "the approval")
        event = _wait_for_event(stack.state_dir, arn)
        stage.outcome = f"event {event['id']} ({event['detail']['ModelApprovalStatus']})"
        report.facts["Approved"] = arn

    with report.stage(5, total, "EventBridge -> trigger Lambda -> GitLab -> model-deploy's .gitlab-ci.yml") as stage:
        with GitLabReceiver(on_pipeline=deploy_pipeline(project, env, args.state_dir, report.jobs)) as receiver:
            result = deliver_approval_event(event, receiver, model_package_group=group)
            print(f"    trigger Lambda: {json.dumps(result)}")
            pipelines = receiver.wait()
        failed = [p for p in pipelines if p.status != "success"]
        if not pipelines or failed:
            raise DemoError(
                f"deploy pipeline {failed[0].id if failed else '?'}: {failed[0].error if failed else 'not triggered'}"
            )
        stage.outcome = (
            f"pipeline #{pipelines[0].id} with MODEL_PACKAGE_ARN={pipelines[0].variables['MODEL_PACKAGE_ARN']}"
        )

    with report.stage(6, total, "Endpoints") as stage:
        deploy_env = {**env, **project, "PYTHONPATH": str(REPO_ROOT / "model-deploy")}
        run_command([sys.executable, "-m", "deploy", "summary"], deploy_env, REPO_ROOT / "model-deploy", "summary")
        stage.outcome = "staging and prod serve the approved version"
    return 0


def _latest_package(sagemaker, group: str) -> dict:
    summaries = sagemaker.list_model_packages(
        ModelPackageGroupName=group, SortBy="CreationTime", SortOrder="Descending", MaxResults=1
    )["ModelPackageSummaryList"]
    if not summaries:
        raise DemoError(f"the pipeline registered no model in {group}")
    return sagemaker.describe_model_package(ModelPackageName=summaries[0]["ModelPackageArn"])


def _cached_steps(sagemaker) -> list[str]:
    latest = sagemaker.list_pipeline_executions(PipelineName=f"{PROJECT}-build")["PipelineExecutionSummaries"][0]
    steps = sagemaker.list_pipeline_execution_steps(PipelineExecutionArn=latest["PipelineExecutionArn"])
    return [s["StepName"] for s in reversed(steps["PipelineExecutionSteps"]) if "CacheHitResult" in s]


def _metrics(s3, package: dict) -> dict:
    uri = package["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"]
    bucket, key = uri.removeprefix("s3://").split("/", 1)
    return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())["regression_metrics"]


def _wait_for_event(state_dir: Path, arn: str, timeout: float = 10.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for event in events.read_events(state_dir, STATE_CHANGE):
            if event["detail"].get("ModelPackageArn") == arn and event["detail"]["ModelApprovalStatus"] == "Approved":
                return event
        time.sleep(0.1)
    raise DemoError(f"no approval event for {arn} within {timeout:.0f} s")


def _print_summary(report: Report, seconds: float) -> None:
    print("\n" + "=" * 78 + "\nSummary")
    for title, took, outcome in report.stages:
        print(f"  {title:<80} {took:6.1f}s\n      {outcome}")
    if report.jobs:
        print("  GitLab jobs (gitlab-ci-local):")
        for line in summary_lines(report.jobs):
            print(f"    {line}")
    for name, value in report.facts.items():
        print(f"  {name + ':':<12} {value}")
    print(f"  {'Total:':<12} {seconds:.1f}s")


if __name__ == "__main__":
    sys.exit(main())
