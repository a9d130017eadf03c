"""batch-staging-test: put the staging batch pipeline and its triggers on the release's version, run it once on a
staging sample and prove its predictions are the staging endpoint's.

1. batch-upsert staging (the release's package, re-read: still Approved, artifacts unchanged; needs the SDK);
2. the staging triggers stack (batch-schedule-template.yml) pointed at that version;
3. the sample: the first rows of the raw data the version was trained from (its InputDataUrl metadata), written
   under the staging results prefix; the pipeline runs once over it (StartPipelineExecution, as its schedule does);
4. the suite in deploy/batch/staging_tests: the run succeeded with the release's package, one prediction per
   input row, and each prediction equals the staging endpoint's answer (InvokeEndpoint) for the same encoded
   row (the rows the pipeline's own Preprocess wrote: this repo never encodes anything itself).
JUnit XML and the results JSON go to build/, as staging-test's do, whatever the outcome.
"""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import replace
from pathlib import Path
from xml.etree import ElementTree

from botocore.exceptions import ClientError

from deploy import aws, registry, release, stage_config, staging_test, suite_report
from deploy.batch import definition, promote, schedule
from deploy.batch import run as batch_run
from deploy.environment import Environment
from deploy.errors import DeployError

SUITE_DIR = Path(__file__).resolve().parent / "staging_tests"
REPORT_XML = "batch-staging-report.xml"
RESULTS_JSON = "batch-staging-results.json"
SAMPLE_ROWS = ("BatchSampleRows", "STAGING_BATCH_SAMPLE_ROWS", 200)
METADATA_INPUT_DATA = "InputDataUrl"


def sample_rows() -> int:
    key, variable, default = SAMPLE_ROWS
    configured = stage_config.load("staging").get("StagingTests", {})
    raw = os.environ.get(variable) or configured.get(key, default)
    try:
        rows = int(raw)
    except ValueError:
        raise DeployError(f"{variable}/StagingTests.{key} must be a whole number, got {raw!r}") from None
    if rows < 1:
        raise DeployError(f"{variable}/StagingTests.{key} must be at least 1, got {raw!r}")
    return rows


def first_object(s3, uri: str) -> str:
    """The URI itself when it names an object, else the first CSV object under that prefix."""
    bucket, key = registry.split_s3_uri(uri)
    if key and not key.endswith("/"):
        return uri
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=key).get("Contents", [])
    objects = sorted(item["Key"] for item in listed if not item["Key"].endswith("/"))
    if not objects:
        raise DeployError(f"the training data {uri} holds no object: no staging sample to score")
    return f"s3://{bucket}/{objects[0]}"


def sample(s3, package: registry.ModelPackage, rows: int) -> tuple[str, int]:
    """`rows` data rows spread evenly over the version's own training data (with its header line, if it has one).

    Evenly spaced, not the first rows: a file's first rows are often not its distribution (the UCI abalone file's
    first 200 gave three data-quality violations), and the run's drift check would then alert people on every
    deploy about data that is the training data."""
    source = package.metadata.get(METADATA_INPUT_DATA)
    if not source:
        raise DeployError(
            f"model package {package.label} has no {METADATA_INPUT_DATA} metadata: the batch staging sample comes "
            "from the data the version was trained on; register it with the model-build pipeline, which records it"
        )
    lines = [line for line in registry.read_s3_text(s3, first_object(s3, source)).splitlines() if line.strip()]
    fields = next(csv.reader(io.StringIO(lines[0]))) if lines else []
    header = bool(fields) and not _is_number(fields[-1])  # a data row ends with its numeric label
    data = lines[header:]
    kept = [data[index * len(data) // rows] for index in range(rows)] if len(data) > rows else data
    return "\n".join(lines[:header] + kept) + "\n", len(kept)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def sample_prefix(environment: Environment, package_version: int) -> str:
    # Under the staging results prefix: the staging role writes nowhere else in the bucket.
    return f"staging-tests/{environment.project_name}/{package_version}/batch-input/"


def upsert_and_point_triggers(environment: Environment, package_arn: str, build_dir: Path) -> dict:
    """batch-upsert staging, then the staging triggers stack on that version (the SDK is imported here)."""
    from deploy.batch import upsert

    settings = batch_run.stage_settings("staging")
    record = upsert.upsert(environment, "staging", package_arn, build_dir, settings)
    schedule.deploy(
        environment, "staging", schedule.parameters(environment, "staging", package_arn, settings), build_dir
    )
    return record


def render_prod_ahead(environment: Environment, build_dir: Path) -> None:
    """Prod's batch definitions for the release, rendered here where the SDK is loaded anyway, so that
    production-deploy puts them with boto3 (deploy/batch/upsert.py). Prod's plan: its model role from the release's
    prod inputs, as production-deploy takes it. Nothing for a prod in its own account (no batch inference there)."""
    from deploy.batch import upsert

    resolved = release.read(build_dir)
    prod = resolved.stage("prod")
    if prod.account_id:
        return
    role = prod.parameters.get("ModelExecutionRoleArn") or environment.execution_role_arn
    prod_environment = replace(environment, execution_role_arn=role)
    settings = batch_run.stage_settings("prod")
    try:
        path = upsert.render_ahead(prod_environment, "prod", resolved.package_arn, build_dir, settings)
    except (DeployError, ClientError) as error:  # a shortcut only: production-deploy renders (and refuses) itself
        print(f"warning: prod's batch definitions not rendered ahead: {error}", flush=True)
        return
    print(f"Rendered prod's batch definitions for production-deploy: {path.name}", flush=True)


def write_skipped(results_path: Path, report_path: Path, package_arn: str, reason: str) -> None:
    """The results JSON and a JUnit report of one skipped case, so GitLab shows why nothing was scored."""
    results = {"passed": True, "skipped": reason, "model_package_arn": package_arn, "tests": {}, "figures": {}}
    results_path.write_text(json.dumps(results, indent=2) + "\n")
    suite = ElementTree.Element("testsuite", name="batch-staging-tests", tests="1", skipped="1", failures="0")
    case = ElementTree.SubElement(suite, "testcase", classname="batch_staging", name="test_batch_inference")
    ElementTree.SubElement(case, "skipped", message=f"batch inference skipped: {reason}")
    ElementTree.ElementTree(suite).write(report_path, encoding="utf-8", xml_declaration=True)


def run(environment: Environment, build_dir: Path) -> int:
    resolved = release.read(build_dir)
    build_dir.mkdir(parents=True, exist_ok=True)
    results_path, report_path = build_dir / RESULTS_JSON, build_dir / REPORT_XML
    # A report left by an earlier run must never pass for this run's.
    results_path.unlink(missing_ok=True)
    report_path.unlink(missing_ok=True)
    package = registry.describe(aws.client("sagemaker", environment.region), resolved.package_arn)
    reason = promote.batch_ready(package)
    if reason:
        # As promote does for prod (and deploy for a monitor without baselines): the endpoint goes on, batch
        # inference does not move, and the report says why instead of failing the deployment.
        print(f"warning: staging batch inference skipped for {package.label}: {reason}", flush=True)
        write_skipped(results_path, report_path, package.arn, reason)
        return 0
    upsert_and_point_triggers(environment, resolved.package_arn, build_dir)

    s3 = aws.client("s3", environment.region)
    body, rows = sample(s3, package, sample_rows())
    prefix = sample_prefix(environment, resolved.package_version)
    s3.put_object(Bucket=environment.artifact_bucket, Key=f"{prefix}sample.csv", Body=body.encode("utf-8"))
    input_uri = f"s3://{environment.artifact_bucket}/{prefix}"
    values = {**batch_run.stage_settings("staging").get("Parameters", {}), "InputDataUrl": input_uri}
    execution_arn = batch_run.start(environment, "staging", values)
    print(f"Batch staging run {execution_arn} on {rows} sample rows ({input_uri})", flush=True)
    render_prod_ahead(environment, build_dir)  # while the run runs
    failure = ""
    try:
        batch_run.follow(
            environment,
            execution_arn,
            float(os.environ.get("DEPLOY_POLL_SECONDS", "2")),
            float(os.environ.get("DEPLOY_TIMEOUT_SECONDS", "5400")),
        )
    except DeployError as error:  # reported by the suite, in the JUnit report, as the run's failure
        failure = str(error)
    endpoint_name = staging_test.staging_endpoint_name(environment)
    exit_code, results = suite_report.run_suite(
        SUITE_DIR,
        "batch-staging-tests",
        report_path,
        results_path,
        [
            f"--execution-arn={execution_arn}",
            f"--run-failure={failure}",
            f"--pipeline-name={definition.pipeline_name(environment.project_name, 'staging')}",
            f"--output-root=s3://{environment.artifact_bucket}/batch-inference/{environment.project_name}/staging",
            f"--sample-uri={input_uri}sample.csv",
            f"--sample-rows={rows}",
            f"--endpoint-name={endpoint_name}",
            f"--model-package-arn={resolved.package_arn}",
            f"--region={environment.region}",
            f"--batch-rows={staging_test.budgets()['BatchRows']}",
        ],
    )
    if not results:
        print(f"Batch staging tests did not produce {results_path}")
        return 1
    outcomes = [test["outcome"] for test in results["tests"].values()]
    figures = results["figures"]
    print(
        f"Batch staging tests {'PASSED' if results['passed'] else 'FAILED'}: {outcomes.count('passed')}/"
        f"{len(outcomes)} passed; {figures.get('predictions', '?')} predictions for {rows} rows, "
        f"{figures.get('mismatched_rows', '?')} differ from {endpoint_name} (max |difference| "
        f"{figures.get('max_abs_difference', '?')})"
    )
    return 0 if exit_code == 0 else 1
