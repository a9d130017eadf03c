"""`make demo`: the whole MLOps loop, offline, on the local stack.

    push -> SageMaker pipeline -> registered model -> approval -> deploy pipeline
         -> staging endpoint -> staging tests -> staging batch test -> production (endpoint + batch pipeline)
         -> a clean and a drifted batch land in S3 (the input rule runs prod's batch pipeline), the nightly
            schedule fires (the scheduler's path) -> the retraining decision -> the retraining build it starts

Each stage runs what the real system runs, against the local stack: the model-build repo's
.gitlab-ci.yml (through gitlab-ci-local, as a push to the default branch) and the approval command. From
there the stack does what AWS and GitLab do: the registry's event matches the project template's EventBridge
rule, whose target, the trigger Lambda's real handler, triggers the local GitLab's deploy pipeline
(model-deploy's .gitlab-ci.yml with the trigger's variables). The demo follows that pipeline with
python-gitlab and presses its manual production button. Stops everything it started.

The alerts a person would receive are shown as they were sent: the project template's rules and alarms publish
to its alert topic, whose local outbox (an SQS queue subscribed to it) the demo reads. `--fail-build`
(or DEMO_FAIL=1) runs the build with a threshold no model meets (MseThreshold=0.01), so the pipeline fails at
FailEvaluation and the failure alert is what the demo shows; it then stops, exit code 0 if that alert arrived.

`--prod-account ID` (or PROD_ACCOUNT_ID=ID) puts production in a second account: the stack bootstraps it with
prod-account.yml, the deploy project gets the two-account variables, and the production job assumes the prod
account's deploy role with its ID token (local_gitlab.service). The summary names both roles' accounts.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import boto3

from local_aws import LocalStack, LocalStackError
from local_aws.core.lifecycle import ALERT_TOPIC, ALERT_WINDOW_TABLE, PROD_ACCOUNT_STACK
from local_aws.events.rules import read_deliveries
from local_aws.sns import outbox
from local_demo import abalone_data, accounts, batch_stages, batch_triggers, batches
from local_gitlab import pipelines, project
from local_gitlab.ci_runner import CiLocalError, JobResult, PipelineFailed, artifacts_dir, run_pipeline, summary_lines
from local_gitlab.service import DEPLOY_PROJECT_ID

REPO_ROOT = Path(__file__).resolve().parents[1]
PROJECT = project.PROJECT_NAME
PROD_BUTTON = "production-deploy"
# No model reaches this MSE: the build's CheckEvaluation sends it to FailEvaluation (--fail-build).
TOO_STRICT_MSE = "0.01"


class DemoError(RuntimeError):
    pass


@dataclass
class Report:
    stages: list[tuple[str, float, str]] = field(default_factory=list)
    facts: dict[str, str] = field(default_factory=dict)
    jobs: list[JobResult] = field(default_factory=list)  # the GitLab jobs that ran, in order
    started: float = field(default_factory=time.monotonic)

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.environ.get("DATA"), help="CSV path, s3:// URI or 'uci'")
    parser.add_argument("--state-dir", type=Path, default=REPO_ROOT / ".local" / "demo")
    parser.add_argument(
        "--fail-build",
        action="store_true",
        default=os.environ.get("DEMO_FAIL", "") not in ("", "0"),
        help=f"make the build fail on purpose (MseThreshold={TOO_STRICT_MSE}) to show the failure alert (DEMO_FAIL=1)",
    )
    parser.add_argument(
        "--prod-account",
        default=os.environ.get("PROD_ACCOUNT_ID") or None,
        help="production in this second AWS account id (PROD_ACCOUNT_ID); default: one account",
    )
    args = parser.parse_args(argv)
    # SIGTERM (a CI timeout, `kill`) unwinds like Ctrl-C, so the stack this demo started is stopped too.
    signal.signal(signal.SIGTERM, lambda signum, _frame: sys.exit(128 + signum))
    report = Report()
    total = 4 if args.fail_build else 7 if args.prod_account else 11
    try:
        with report.stage(1, total, "Local stack: moto + pipeline executor + SageMaker runtime") as stage:
            stack = LocalStack(state_dir=args.state_dir, prod_account_id=args.prod_account)
            stack.start()
            stage.outcome = f"gateway {stack.env['AWS_ENDPOINT_URL_SAGEMAKER']}"
            if args.prod_account:  # prod-account.yml, deployed in that account by `start` (its administrator's step)
                stage.outcome += f"; prod account {args.prod_account} bootstrapped (stack {PROD_ACCOUNT_STACK})"
        try:
            return _loop(stack, args, report, total)
        finally:
            stack.stop()
            print("\nLocal stack stopped.")
    except (
        DemoError,
        abalone_data.DataError,
        accounts.TwoAccountError,
        CiLocalError,
        LocalStackError,
        pipelines.PipelineTimeout,
    ) as error:
        print(f"\nerror: {error}", file=sys.stderr)
        return 1
    finally:
        _print_summary(report, time.monotonic() - report.started)


def _loop(stack: LocalStack, args, report: Report, total: int) -> int:
    # The CI/CD variables the project stack's seed Lambda sets on the build repo.
    build_variables = project.build_variables(stack.env["AWS_REGION"])
    env = stack.environ()
    os.environ.update(stack.env)  # this process's own boto3 calls go to the stack too
    bucket, group = env["ARTIFACT_BUCKET"], env["MODEL_PACKAGE_GROUP_NAME"]
    sagemaker, s3 = boto3.client("sagemaker"), boto3.client("s3")

    with report.stage(2, total, "Data") as stage:
        data = abalone_data.resolve(args.data)
        print(f"    {data.description}")
        uri = abalone_data.upload(data, s3, bucket)
        # The newest data also lands where the build reads by default: a retraining build (stage 11) trains on it.
        body = data.body if data.body is not None else _read_s3(s3, uri)
        latest = abalone_data.land_latest(body, s3, bucket)
        print(f"    {uri} (this build's input) and {latest} (the build's configured input)")
        stage.outcome = ("SYNTHETIC sample at " if data.synthetic else "") + uri
        report.facts["Data"] = stage.outcome

    if args.fail_build:
        return _failing_build(stack, args, report, total, {**build_variables, "INPUT_DATA_URL": uri}, env)

    with report.stage(3, total, "git push -> model-build's .gitlab-ci.yml (gitlab-ci-local)") as stage:
        variables = {**build_variables, "INPUT_DATA_URL": uri, "CI_PIPELINE_SOURCE": "push"}
        report.jobs += gitlab_pipeline("model-build", variables, env, args.state_dir)
        package = _latest_package(sagemaker, group)
        metrics = _metrics(s3, package)
        cached = _cached_steps(sagemaker)
        stage.outcome = f"{package['ModelPackageArn'].split('/', 1)[1]}: RMSE {metrics['rmse']['value']:.3f}"
        stage.outcome += f", {len(cached)} steps from the cache ({', '.join(cached)})" if cached else ", no cache hits"
        report.facts["Registered"] = f"{package['ModelPackageArn']} ({package['ModelApprovalStatus']})"
        report.facts["Metrics"] = ", ".join(f"{name} {value['value']:.3f}" for name, value in metrics.items())
        print(f"    Registered {package['ModelPackageArn']}: {report.facts['Metrics']}")
        _show_build_checks(package, args.state_dir)
        report.facts["Champion gate"] = (package.get("CustomerMetadataProperties") or {}).get("GateResult", "-")

    with report.stage(4, total, "Alerts: the approval request the reviewers receive (SNS topic -> outbox)") as stage:
        sent = _show_alerts(stack, lambda found: any("awaits your approval" in m.text for m in found))
        stage.outcome = f"{len(sent)} message(s): " + "; ".join(
            message.subject or message.text.splitlines()[0] for message in sent
        )

    with report.stage(5, total, "Approval in the model registry") as stage:
        arn = package["ModelPackageArn"]
        approve = [str(REPO_ROOT / "scripts" / "approve-model"), "approve", "--arn", arn, "--description", "make demo"]
        run_command([sys.executable, *approve], env, REPO_ROOT, "the approval")
        report.facts["Approved"] = arn
        stage.outcome = f"{arn.rsplit('/', 2)[-2]} version {arn.rsplit('/', 1)[-1]} Approved"

    gitlab_url = stack.info["services"]["gitlab"]["url"]
    with report.stage(6, total, "EventBridge rule -> trigger Lambda -> local GitLab: model-deploy's pipeline") as stage:
        pipeline = pipelines.wait_for_trigger(gitlab_url, DEPLOY_PROJECT_ID, {"MODEL_PACKAGE_ARN": arn})
        delivery = _delivery_for(stack.state_dir, pipeline.id)
        print(
            f"    rule {delivery['rule']} -> {delivery['target'].rsplit(':', 1)[-1]}: {json.dumps(delivery['result'])}"
        )
        print(f"    GitLab: deploy pipeline #{pipeline.id} with MODEL_PACKAGE_ARN={arn}")
        log = stack.state_dir / "gitlab" / "pipelines" / str(pipeline.id) / "output.log"
        jobs = pipelines.wait_until_settled(gitlab_url, DEPLOY_PROJECT_ID, pipeline.id, log=log, output=sys.stdout)
        _require(jobs, "manual", pipeline.id)
        print(f"\n    GitLab: pressing {PROD_BUTTON} (the manual, blocking production button)")
        jobs = pipelines.play(gitlab_url, DEPLOY_PROJECT_ID, pipeline.id, PROD_BUTTON, log=log, output=sys.stdout)
        _require(jobs, "success", pipeline.id)
        report.jobs += [
            JobResult(job["name"], job["status"], job.get("duration") or 0.0)
            for job in jobs
            if job["status"] != "manual"
        ]
        ran = [job for job in jobs if job["status"] == "success"]
        stage.outcome = f"pipeline #{pipeline.id} with MODEL_PACKAGE_ARN={arn}: {len(ran)} jobs succeeded"

    prod_account = args.prod_account or ""
    deploy_env = {**env, **project.deploy_variables(stack.env["AWS_REGION"], prod_account)}
    with report.stage(7, total, "Endpoints") as stage:
        # With two accounts, the deploy repo is the local GitLab's (its prod-config.json names the prod account).
        repo = project.deploy_repo(stack.state_dir) if prod_account else REPO_ROOT / "model-deploy"
        run_command([sys.executable, "-m", "deploy", "summary"], deploy_env, repo, "summary")
        stage.outcome = "staging and prod serve the approved version"
        if prod_account:
            report.facts |= accounts.summary(
                stack, deploy_env["PROD_DEPLOY_ROLE_ARN"], f"sagemaker-{PROJECT}-deploy-prod"
            )
            stage.outcome += f"; prod in account {prod_account} only"

    if prod_account:
        # deploy-stage prod leaves batch inference out for a stage in its own account (it warns): nothing to run.
        print("\n    Batch inference: not deployed to a production in its own account (see the deploy job's warning)")
        return 0
    _batch_stages(stack, report, total, deploy_env, args.state_dir, body)
    return 0


def _batch_stages(stack: LocalStack, report: Report, total: int, env: dict, state_dir: Path, body: bytes) -> None:
    """Prod's batch inference, each run started as on AWS (local_demo/batch_stages.py), then the retraining."""
    repo = REPO_ROOT / "model-deploy"
    clean = batches.clean(batches.read(body))
    with report.stage(8, total, "Batch inference (prod): a clean batch lands in S3 -> the input rule") as stage:
        summary = batch_stages.follow(run_command, env, repo, state_dir, "clean", batch_stages.land(stack, clean))
        batch_stages.show(summary, state_dir, "clean")
        stage.outcome = f"{summary['rows']} rows scored, {summary['violation_count']} violation(s)"
        if summary["violation_count"]:
            raise DemoError(f"the clean batch has {summary['violation_count']} drift violation(s): see above")
    with report.stage(9, total, "Batch inference (prod): a drifted batch replaces it (heavier animals)") as stage:
        landed_at = time.time()
        arn = batch_stages.land(stack, batches.drifted(clean))
        summary = batch_stages.follow(run_command, env, repo, state_dir, "drifted", arn)
        report_path = batch_stages.show(summary, state_dir, "drifted")
        print(f"    {batch_stages.decision_line(summary)}")
        sent = _show_alerts(
            stack,
            lambda found: any("drift" in m.subject.lower() for m in found),
            timeout=10.0,
            gate_key=(f"{PROJECT} {batch_stages.STAGE} batch drift", landed_at),  # the BatchDriftAlertRule's key
        )
        stage.outcome = (
            f"{summary['violation_count']} violation(s), max distance {summary['max_feature_distance']:.3f}, "
            f"nDCG {summary['attribution_ndcg']}; {len(sent)} alert(s) sent"
        )
        report.facts["Drift report"] = str(report_path)
    with report.stage(10, total, "The nightly schedule fires now (the scheduler's path): the retraining rule") as stage:
        arn = batch_stages.fire_nightly_schedule(stack)
        summary = batch_stages.follow(run_command, env, repo, state_dir, "scheduled", arn)
        print(f"    {batch_stages.decision_line(summary)}")
        sent = _show_alerts(stack, lambda found: any("retrain" in m.subject.lower() for m in found), timeout=10.0)
        stage.outcome = f"{batch_stages.decision_line(summary)}; {len(sent)} alert(s) sent"
        report.facts["Retraining"] = batch_stages.decision_line(summary)
    report.facts["Loop"] = f"{time.monotonic() - report.started:.1f}s without the retraining build"
    if not summary["decision"]["retrain"]:
        return
    with report.stage(11, total, "Retraining: rule -> trigger Lambda -> local GitLab: model-build's pipeline") as stage:
        build = batch_triggers.wait_for_retraining_build(stack, summary["decision"]["event_id"])
        for job in build.jobs:
            print(f"    {job['name']}: {job['status']}")
        stage.outcome = f"build pipeline #{build.pipeline_id} {build.status} ({build.web_url})"
        if build.status != "success":
            raise DemoError(f"the retraining build #{build.pipeline_id} ended {build.status}")
        report.facts["Retrained"] = _latest_package(boto3.client("sagemaker"), PROJECT)["ModelPackageArn"]


def _read_s3(s3, uri: str) -> bytes:
    bucket, key = uri.removeprefix("s3://").split("/", 1)
    if key.endswith("/") or not key:
        key = s3.list_objects_v2(Bucket=bucket, Prefix=key)["Contents"][0]["Key"]
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def _failing_build(stack: LocalStack, args, report: Report, total: int, variables: dict, env: dict) -> int:
    """The build with a threshold no model meets: the pipeline fails, and the failure alert is what a person sees."""
    with report.stage(3, total, f"git push with MseThreshold={TOO_STRICT_MSE} (fails on purpose)") as stage:
        variables = {**variables, "CI_PIPELINE_SOURCE": "push", "PIPELINE_PARAMETERS": f"MseThreshold={TOO_STRICT_MSE}"}
        try:
            report.jobs += gitlab_pipeline("model-build", variables, env, args.state_dir)
        except PipelineFailed as failure:
            report.jobs += failure.results
            stage.outcome = f"job {failure.job} failed, as asked (--fail-build)"
        else:
            raise DemoError(f"the build succeeded although MseThreshold={TOO_STRICT_MSE}: nothing to alert about")
    with report.stage(
        4, total, "Alerts: the failure alert the team receives (rule -> alert gate -> SNS -> outbox)"
    ) as stage:
        sent = _show_alerts(stack, lambda found: any("failed" in m.subject for m in found))
        failures = [message for message in sent if "failed" in message.subject]
        if not failures:
            raise DemoError("the pipeline failed but no failure alert reached the outbox")
        stage.outcome = f"{len(sent)} message(s): " + "; ".join(message.subject for message in sent)
    return 0


def _show_alerts(stack: LocalStack, enough, timeout: float = 15.0, gate_key=None) -> list[outbox.Message]:
    """The messages the alert topic sent so far (its outbox), printed as the subscriber reads them. Delivery is
    asynchronous, as on AWS: wait until `enough(messages)` or the timeout. With `gate_key` (key, since): an alert
    the gate holds back, because one went out for that key before `since` and within its window (a demo run again
    on its state), is not waited for."""
    url = outbox.queue_url(stack.client, ALERT_TOPIC)
    found: list[outbox.Message] = []
    held_back = _alert_window_opened_before(stack, *gate_key) if gate_key else None
    found += outbox.drain(stack.client, url)
    deadline = time.monotonic() + (0 if held_back is not None else timeout)  # nothing more is coming
    while not enough(found) and time.monotonic() < deadline:
        time.sleep(0.1)
        found += outbox.drain(stack.client, url)
    for message in found:
        print(f"    --- to: the {ALERT_TOPIC} subscribers   subject: {message.subject or '(none)'}")
        print("\n".join(f"    | {line}" for line in message.text.splitlines()))
    if held_back is not None:
        sent_at = time.strftime("%H:%M:%S", time.localtime(held_back))
        print(f"    (the alert gate holds it back: the alert for {gate_key[0]!r} went out at {sent_at}, in its window)")
    elif not found:
        print("    (no message)")
    return found


def _alert_window_opened_before(stack: LocalStack, key: str, since: float) -> float | None:
    """When the alert gate's window for `key` opened, if it opened before `since` and is still open (else None)."""
    item = stack.client("dynamodb").get_item(TableName=ALERT_WINDOW_TABLE, Key={"id": {"S": f"alert#{key}"}})
    found = item.get("Item")
    # The gate stores whole seconds: a window opened in the second `since` falls in is this run's own.
    if not found or float(found["expiration"]["N"]) < time.time() or float(found["first"]["N"]) >= int(since):
        return None
    return float(found["first"]["N"])


def _show_build_checks(package: dict, state_dir: Path) -> None:
    """The baselines the build computed, the champion gate's comparison, and where the report is."""
    drift = package.get("DriftCheckBaselines", {})
    for member, kinds in sorted(drift.items()):
        files = ", ".join(f"{kind} {value['S3Uri'].rsplit('/', 1)[-1]}" for kind, value in sorted(kinds.items()))
        print(f"    Baseline {member}: {files}")
    metadata = package.get("CustomerMetadataProperties") or {}
    print(f"    Champion gate: {metadata.get('GateResult', 'not run')}")
    for key in ("GateRmse", "GateMae", "GateR2", "GateLabelShift", "GateTrainingSize"):
        if metadata.get(key) and not metadata[key].startswith("n/a"):
            print(f"      {key.removeprefix('Gate'):<14} {metadata[key]}")
    artifacts = artifacts_dir("model-build", "train", state=state_dir / "gitlab-ci-local" / "model-build")
    print(f"    Reports: {metadata.get('Report', '-')} (job artifacts: {artifacts})")


def _latest_package(sagemaker, group: str) -> dict:
    summaries = sagemaker.list_model_packages(
        ModelPackageGroupName=group, SortBy="CreationTime", SortOrder="Descending", MaxResults=1
    )["ModelPackageSummaryList"]
    if not summaries:
        raise DemoError(f"the pipeline registered no model in {group}")
    return sagemaker.describe_model_package(ModelPackageName=summaries[0]["ModelPackageArn"])


def _cached_steps(sagemaker) -> list[str]:
    latest = sagemaker.list_pipeline_executions(PipelineName=f"{PROJECT}-build")["PipelineExecutionSummaries"][0]
    pages = sagemaker.get_paginator("list_pipeline_execution_steps").paginate(  # 10 steps a page, as on AWS
        PipelineExecutionArn=latest["PipelineExecutionArn"]
    )
    steps = [step for page in pages for step in page["PipelineExecutionSteps"]]
    return [s["StepName"] for s in reversed(steps) if "CacheHitResult" in s]


def _metrics(s3, package: dict) -> dict:
    uri = package["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"]
    bucket, key = uri.removeprefix("s3://").split("/", 1)
    return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())["regression_metrics"]


def _delivery_for(state_dir: Path, pipeline_id: int, timeout: float = 10.0) -> dict:
    """The rule's delivery to the trigger Lambda whose answer names this pipeline (recorded once it returned)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for delivery in reversed(read_deliveries(state_dir)):
            result = delivery.get("result")  # an SNS target's result is its message id, a Lambda's its answer
            if isinstance(result, dict) and result.get("pipeline_id") == pipeline_id:
                return delivery
        time.sleep(0.1)
    raise DemoError(f"no EventBridge delivery names deploy pipeline #{pipeline_id} in {state_dir}")


def _require(jobs: list[dict], status: str, pipeline_id: int) -> None:
    """Every job but the manual button succeeded (status "manual": the button waits), or all did ("success")."""
    failed = [job["name"] for job in jobs if job["status"] == "failed"]
    if failed:
        raise DemoError(f"deploy pipeline #{pipeline_id}: job {failed[0]} failed; its output is above")
    if status == "manual" and not any(job["name"] == PROD_BUTTON and job["status"] == "manual" for job in jobs):
        raise DemoError(f"deploy pipeline #{pipeline_id} did not stop at its {PROD_BUTTON} button: {jobs}")
    # Other manual jobs (production-rollback) are optional buttons nobody presses here.
    if status == "success" and any(
        job["status"] not in ("success", "manual") or job["name"] == PROD_BUTTON and job["status"] != "success"
        for job in jobs
    ):
        raise DemoError(f"deploy pipeline #{pipeline_id} did not finish: {[(j['name'], j['status']) for j in jobs]}")


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
