"""Command line for the model-build pipeline.

    python -m pipelines.run_pipeline definition         # the definition JSON, no AWS account needed
    python -m pipelines.run_pipeline run [--no-wait]    # upload step code, upsert, start, follow

Settings come from flags or from the environment the project's CI variables provide, so a CI job
and a laptop run the same command. The same command runs on AWS and on the local stack.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass

from pipelines import s3_input, sdk_env

# `definition` needs no account: these stand in for the role and bucket the project stack creates.
PLACEHOLDER_ROLE = "arn:aws:iam::111111111111:role/placeholder-sagemaker-pipeline-role"
PLACEHOLDER_BUCKET = "placeholder-artifact-bucket"
METADATA_REPORT = "Report"  # where the build's report is (a job artifact's URL in CI)


class ConfigError(SystemExit):
    """A missing or malformed setting: exits with a message naming it and the fix."""

    def __init__(self, message: str):
        super().__init__(f"error: {message}")


@dataclass(frozen=True)
class Settings:
    region: str
    role_arn: str
    bucket: str
    pipeline_name: str
    model_package_group_name: str
    base_job_prefix: str
    project_name: str
    project_id: str


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    env = os.environ.get
    parser = argparse.ArgumentParser(prog="python -m pipelines.run_pipeline", description=__doc__.splitlines()[0])
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--region", default=env("AWS_REGION") or env("AWS_DEFAULT_REGION"))
    common.add_argument("--role-arn", default=env("SAGEMAKER_PIPELINE_ROLE_ARN"), help="pipeline execution role")
    common.add_argument("--bucket", default=env("ARTIFACT_BUCKET"), help="artifact bucket")
    common.add_argument("--project-name", default=env("SAGEMAKER_PROJECT_NAME", "abalone"))
    common.add_argument("--project-id", default=env("SAGEMAKER_PROJECT_ID", ""))
    common.add_argument("--pipeline-name", default=env("PIPELINE_NAME"), help="default: <project>-build")
    common.add_argument("--model-package-group-name", default=env("MODEL_PACKAGE_GROUP_NAME"), help="default: project")
    common.add_argument("--base-job-prefix", default=env("BASE_JOB_PREFIX"), help="default: project name")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("definition", parents=[common], help="print the pipeline definition JSON")
    run = commands.add_parser("run", parents=[common], help="upsert, start and follow the pipeline")
    run.add_argument(
        "--parameter", "-p", action="append", default=[], metavar="NAME=VALUE", help="pipeline parameter (repeat)"
    )
    run.add_argument("--no-wait", action="store_true", help="start the execution and return")
    run.add_argument("--report-dir", default=env("REPORT_DIR", "reports"), help="where report.html and its PNGs go")
    # A string default goes through type=float too: a bad PIPELINE_POLL_SECONDS gets argparse's clear error.
    run.add_argument("--poll-seconds", type=float, default=env("PIPELINE_POLL_SECONDS", "10"))
    return parser.parse_args(argv)


def settings_from(args: argparse.Namespace, need_account: bool) -> Settings:
    missing = [
        f"{flag} (or ${var})"
        for flag, var, value in (
            ("--role-arn", "SAGEMAKER_PIPELINE_ROLE_ARN", args.role_arn),
            ("--bucket", "ARTIFACT_BUCKET", args.bucket),
        )
        if need_account and not value
    ]
    if missing:
        raise ConfigError(f"missing {', '.join(missing)}: the project stack's outputs give both")
    project = args.project_name
    return Settings(
        region=sdk_env.configure(args.region),
        role_arn=args.role_arn or PLACEHOLDER_ROLE,
        bucket=args.bucket or PLACEHOLDER_BUCKET,
        pipeline_name=args.pipeline_name or f"{project}-build",
        model_package_group_name=args.model_package_group_name or project,
        base_job_prefix=args.base_job_prefix or project,
        project_name=project,
        project_id=args.project_id,
    )


def build(settings: Settings):
    from pipelines.abalone.pipeline import get_pipeline  # imports the SDK: after sdk_env.configure

    return get_pipeline(
        region=settings.region,
        role=settings.role_arn,
        default_bucket=settings.bucket,
        pipeline_name=settings.pipeline_name,
        model_package_group_name=settings.model_package_group_name,
        base_job_prefix=settings.base_job_prefix,
    )


def pipeline_parameters(pairs: list[str]) -> dict[str, str]:
    """Explicit NAME=VALUE pairs win over what CI provides (commit SHA, pipeline URL, input data)."""
    values = {
        "GitCommit": os.environ.get("CI_COMMIT_SHA"),
        "GitLabPipelineUrl": os.environ.get("CI_PIPELINE_URL"),
        "InputDataUrl": os.environ.get("INPUT_DATA_URL"),
    }
    # PIPELINE_PARAMETERS (a CI/CD variable, e.g. "MseThreshold=6.0 SplitSeed=2") overrides defaults for one run,
    # such as a pipeline started from GitLab's "Run pipeline" form; -p pairs win over it.
    for pair in [*os.environ.get("PIPELINE_PARAMETERS", "").split(), *pairs]:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise ConfigError(f"parameter {pair!r} is not NAME=VALUE, e.g. -p MseThreshold=6.0")
        values[name] = value
    return {name: value for name, value in values.items() if value}


def tags(settings: Settings) -> list[dict[str, str]]:
    # SageMaker Projects link resources to the project through these two tags.
    pairs = {"sagemaker:project-name": settings.project_name, "sagemaker:project-id": settings.project_id}
    if os.environ.get("CI_COMMIT_SHA"):
        pairs["GitCommit"] = os.environ["CI_COMMIT_SHA"]
    return [{"Key": key, "Value": value} for key, value in pairs.items() if value]


def upload_step_code(settings: Settings, s3) -> None:
    """The step scripts and the Clarify analysis configs, at the content-addressed URIs the definition names."""
    from pipelines.abalone.pipeline import step_code

    for path, uri in step_code(settings.pipeline_name, settings.bucket).items():
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        s3.upload_file(path, bucket, key)
    for uri, body in sdk_env.staged_files().items():
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        s3.put_object(Bucket=bucket, Key=key, Body=body)


def first_run_parameters(sagemaker, group: str, given: dict[str, str]) -> dict[str, str]:
    """Check settings from the registry, as a person would choose them; explicit -p values win.

    With no Approved package carrying DriftCheckBaselines there is nothing to check against: each check is
    skipped and registers its new baseline. Otherwise the checks run against that package's baselines.
    """
    from pipelines.abalone.pipeline import CHECKS

    packages = sagemaker.list_model_packages(
        ModelPackageGroupName=group, ModelApprovalStatus="Approved", SortBy="CreationTime", SortOrder="Descending"
    ).get("ModelPackageSummaryList", [])
    champion = None
    if packages:
        description = sagemaker.describe_model_package(ModelPackageName=packages[0]["ModelPackageArn"])
        champion = description["ModelPackageArn"] if description.get("DriftCheckBaselines") else None
    values = {}
    for check in CHECKS:
        values[f"Skip{check}Check"] = "false" if champion else "true"
        values[f"RegisterNew{check}Baseline"] = "false" if champion else "true"
    chosen = {name: value for name, value in values.items() if name not in given}
    if champion:
        print(f"Checks: against the baselines of the latest Approved package {champion}", flush=True)
    else:
        print(
            f"Checks: no Approved package with baselines in {group}: skipping the checks and registering new "
            "baselines (first run; override with -p SkipDataQualityCheck=false ...)",
            flush=True,
        )
    overridden = sorted(set(values) - set(chosen))
    if overridden:
        print(f"Checks: kept your values for {', '.join(overridden)}", flush=True)
    return {**chosen, **given}


def run(
    settings: Settings, parameters: dict[str, str], wait: bool, poll_seconds: float, report_dir: str = "reports"
) -> int:
    import boto3
    from boto3.exceptions import Boto3Error
    from botocore.exceptions import BotoCoreError, ClientError

    from pipelines.execution import follow, summary

    pipeline = build(settings)
    declared = {parameter.name for parameter in pipeline.parameters}
    unknown = sorted(set(parameters) - declared)
    if unknown:
        raise ConfigError(f"unknown pipeline parameter(s) {', '.join(unknown)}; known: {', '.join(sorted(declared))}")
    session = boto3.Session(region_name=settings.region)
    sagemaker = session.client("sagemaker")
    input_uri = parameters.get("InputDataUrl") or next(
        p.default_value for p in pipeline.parameters if p.name == "InputDataUrl"
    )
    try:
        # Before anything is uploaded or started: a wrong input fails here in a second, not in the Preprocess job.
        s3_input.check(session.client("s3"), input_uri)
        parameters = first_run_parameters(sagemaker, settings.model_package_group_name, parameters)
        upload_step_code(settings, session.client("s3"))
        pipeline.upsert(role_arn=settings.role_arn, description="Abalone model build", tags=tags(settings))
        print(f"Upserted pipeline {settings.pipeline_name}", flush=True)
        execution_arn = sagemaker.start_pipeline_execution(
            PipelineName=settings.pipeline_name,
            # The execution's events carry its description: a failure alert names the GitLab pipeline that started it.
            PipelineExecutionDescription=os.environ.get("CI_PIPELINE_URL") or "started outside GitLab CI",
            PipelineParameters=[{"Name": name, "Value": str(value)} for name, value in sorted(parameters.items())],
        )["PipelineExecutionArn"]
    except s3_input.InputError as error:
        raise ConfigError(f"InputDataUrl {error}") from None
    except (Boto3Error, BotoCoreError, ClientError) as error:
        print(f"error: could not upsert or start {settings.pipeline_name}: {error}", file=sys.stderr)
        return 2
    print(f"Started {execution_arn}", flush=True)
    if not wait:
        return 0
    try:
        result = follow(sagemaker, execution_arn, poll_seconds=poll_seconds)
    except (BotoCoreError, ClientError) as error:
        # One line, not botocore's traceback: the endpoint went away (the local stack stopped, the network).
        print(
            f"error: lost AWS while following {execution_arn}: {error}. Check that the endpoint is up"
            " (local stack: `scripts/local-stack status`) and AWS_ENDPOINT_URL / AWS_REGION; the execution"
            " may still be running in SageMaker",
            file=sys.stderr,
        )
        return 2
    print(summary(result), flush=True)
    report_url = write_report(sagemaker, session.client("s3"), result, report_dir)
    if result.status != "Succeeded":
        return 1
    if result.model_package_arn:
        status = pin_registered(sagemaker, session.client("s3"), result.model_package_arn)
        if report_url:
            record_report(sagemaker, result.model_package_arn, report_url)
        return status
    return 0


def _read(s3, uri: str) -> str:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()


def _job_output(sagemaker, step, output_name: str) -> str | None:
    """The S3 prefix of a processing step's output, from its job (also right for a cached step: its source job)."""
    arn = step.metadata.get("ProcessingJob", {}).get("Arn") if step else None
    if not arn:
        return None
    job = sagemaker.describe_processing_job(ProcessingJobName=arn.rsplit("/", 1)[1])
    outputs = {o["OutputName"]: o["S3Output"]["S3Uri"] for o in job["ProcessingOutputConfig"]["Outputs"]}
    return outputs.get(output_name, "").rstrip("/") or None


def report_files(sagemaker, s3, result) -> dict:
    """The files the execution wrote that the report shows, read from S3; a part whose step did not run is None."""
    from pipelines import report

    steps = {step.name: step for step in result.steps if step.status == "Succeeded"}
    files = {}
    evaluation = _job_output(sagemaker, steps.get("Evaluate"), "evaluation")
    files["evaluation"] = report.load_json(_read(s3, f"{evaluation}/evaluation.json")) if evaluation else None
    comparison = _job_output(sagemaker, steps.get("ChampionGate"), "comparison")
    files["comparison"] = report.load_json(_read(s3, f"{comparison}/comparison.json")) if comparison else None
    clarify = steps.get("ModelExplainabilityCheck")
    analysis = clarify.metadata.get("ClarifyCheck", {}).get("CalculatedBaselineConstraints") if clarify else None
    files["analysis"] = report.load_json(_read(s3, analysis)) if analysis else None
    files["predictions"] = None
    transform = steps.get("TransformTest")
    arn = transform.metadata.get("TransformJob", {}).get("Arn") if transform else None
    if arn:
        output = sagemaker.describe_transform_job(TransformJobName=arn.rsplit("/", 1)[1])["TransformOutput"]
        bucket, _, prefix = output["S3OutputPath"].removeprefix("s3://").partition("/")
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])]
        text = "".join(_read(s3, f"s3://{bucket}/{key}") for key in sorted(keys) if key.endswith(".out"))
        files["predictions"] = report.load_predictions(text) if text.strip() else None
    return files


def write_report(sagemaker, s3, result, folder: str) -> str | None:
    """Build the report from the execution's files; print where it is. A report problem never fails the build."""
    from pathlib import Path

    from botocore.exceptions import BotoCoreError, ClientError

    from pipelines import report

    try:
        path = report.build(Path(folder), title=f"Model build {result.arn}", **report_files(sagemaker, s3, result))
    except (BotoCoreError, ClientError, OSError, KeyError, ValueError) as error:
        print(f"warning: no report: {type(error).__name__}: {error}", file=sys.stderr)
        return None
    path = path.resolve()
    location = str(path)
    # In CI the report is a job artifact: link it, relative to the project folder (model-build/ in the monorepo).
    # Only when it is inside that folder: gitlab-ci-local's shell jobs get a made-up CI_PROJECT_DIR and job URL,
    # and a local run names the file itself rather than a link that leads nowhere.
    if os.environ.get("CI_JOB_URL") and os.environ.get("CI_PROJECT_DIR"):
        relative = os.path.relpath(path, os.environ["CI_PROJECT_DIR"])
        if not relative.startswith(".."):
            location = f"{os.environ['CI_JOB_URL']}/artifacts/file/{relative}"
    print(f"Report: {location}", flush=True)
    return location


def record_report(sagemaker, package_arn: str, location: str) -> None:
    """Name the report in the package's metadata (approve-model show prints it)."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        description = sagemaker.describe_model_package(ModelPackageName=package_arn)
        metadata = {**(description.get("CustomerMetadataProperties") or {}), METADATA_REPORT: location}
        sagemaker.update_model_package(ModelPackageArn=package_arn, CustomerMetadataProperties=metadata)
    except (BotoCoreError, ClientError) as error:
        print(f"warning: could not name the report in {package_arn}: {error}", file=sys.stderr)


def pin_registered(sagemaker, s3, package_arn: str) -> int:
    """Record the artifacts' digests in the package just registered, before anyone can approve it."""
    from botocore.exceptions import BotoCoreError, ClientError

    from pipelines import pinning

    try:
        digests = pinning.pin(sagemaker, s3, package_arn)
    except (BotoCoreError, ClientError) as error:
        print(
            f"error: registered {package_arn} but could not pin its artifacts: {error}. "
            f"Pin it with `scripts/approve-model pin --arn {package_arn}` before approving it.",
            file=sys.stderr,
        )
        return 1
    for key, digest in sorted(digests.items()):
        print(f"Pinned {key} = {digest}", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.command == "definition":
        definition = build(settings_from(args, need_account=False)).definition()
        print(json.dumps(json.loads(definition), indent=2))
        return 0
    settings = settings_from(args, need_account=True)
    return run(
        settings,
        pipeline_parameters(args.parameter),
        wait=not args.no_wait,
        poll_seconds=args.poll_seconds,
        report_dir=args.report_dir,
    )


if __name__ == "__main__":
    sys.exit(main())
