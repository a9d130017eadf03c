"""staging-test: run the staging test suite (deploy/staging_tests) against the staging endpoint.

The suite is a pytest suite so GitLab gets a JUnit XML report for its test tab; its results JSON
keeps the measured figures, as a job artifact and in the artifact bucket (deploy/staging_results.py).
Budgets come from staging-config.json ("StagingTests"), and environment variables override them.
"""

from __future__ import annotations

import os
from pathlib import Path

from deploy import aws, deploy_stage, naming, release, stack, stage_config, staging_results, suite_report
from deploy.environment import Environment
from deploy.errors import DeployError

SUITE_DIR = Path(__file__).resolve().parent / "staging_tests"
REPORT_XML = "staging-test-report.xml"
RESULTS_JSON = "staging-test-results.json"
# staging-config.json key -> (environment override, default, smallest sensible value).
BUDGETS = {
    "RmseTolerance": ("STAGING_RMSE_TOLERANCE", 0.1, 0.0),
    "LatencyP95BudgetMs": ("STAGING_LATENCY_P95_BUDGET_MS", 500.0, 1.0),
    "LatencyRequests": ("STAGING_LATENCY_REQUESTS", 50, 1),
    "BatchRows": ("STAGING_BATCH_ROWS", 200, 1),
}


def budgets() -> dict[str, float]:
    configured = stage_config.load("staging").get("StagingTests", {})
    values = {}
    for key, (variable, default, minimum) in BUDGETS.items():
        raw = os.environ.get(variable) or configured.get(key, default)
        try:
            values[key] = type(default)(raw)
        except ValueError:
            raise DeployError(f"{variable}/StagingTests.{key} must be a number, got {raw!r}") from None
        # Caught here, not deep in the suite (0 requests has no p95; 0 rows per batch never ends a batch).
        if values[key] < minimum:
            raise DeployError(f"{variable}/StagingTests.{key} must be at least {minimum}, got {raw!r}")
    return values


def staging_endpoint_name(environment: Environment) -> str:
    """From the staging stack's Outputs; the conventional name if the stack is missing (the tests then fail)."""
    stack_name = naming.stack_name(environment.project_name, "staging")
    described = stack.describe_stack(aws.client("cloudformation", environment.region), stack_name)
    if described is None:
        name = naming.endpoint_name(environment.project_name, "staging")
        print(f"Stack {stack_name} does not exist: testing the conventional endpoint name {name}")
        return name
    return deploy_stage.outputs_of(described)["EndpointName"]


def run(environment: Environment, build_dir: Path, endpoint_name: str | None = None) -> int:
    resolved = release.read(build_dir)
    endpoint_name = endpoint_name or staging_endpoint_name(environment)
    values = budgets()
    build_dir.mkdir(parents=True, exist_ok=True)
    results_path = build_dir / RESULTS_JSON
    # A report left by an earlier run must never pass for this run's.
    results_path.unlink(missing_ok=True)
    (build_dir / REPORT_XML).unlink(missing_ok=True)
    print(f"Staging tests: endpoint {endpoint_name}, package {resolved.package_arn}", flush=True)
    exit_code, results = suite_report.run_suite(
        SUITE_DIR,
        "staging-tests",
        build_dir / REPORT_XML,
        results_path,
        [
            f"--endpoint-name={endpoint_name}",
            f"--model-package-arn={resolved.package_arn}",
            f"--region={environment.region}",
            f"--rmse-tolerance={values['RmseTolerance']}",
            f"--latency-p95-budget-ms={values['LatencyP95BudgetMs']}",
            f"--latency-requests={values['LatencyRequests']}",
            f"--batch-rows={values['BatchRows']}",
        ],
    )
    if not results:
        print(f"Staging tests did not produce {results_path}")
        return 1
    print(staging_results.summary_line(results))
    s3 = aws.client("s3", environment.region)
    print(f"Results: {staging_results.publish(s3, environment, resolved.package_version, results)}")
    return 0 if exit_code == 0 else 1
