"""Staging-test step: run the staging test suite against the staging endpoint.

The suite (deploy/staging_tests) is a pytest suite so GitLab gets a JUnit XML report for its test
tab; its results JSON keeps the measured figures. Budgets come from staging-config.json
("StagingTests"), and environment variables override them for a run.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from deploy import settings, stack
from deploy.errors import DeployError
from deploy.settings import Settings

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
    configured = settings.load_stage_config("staging").get("StagingTests", {})
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


def staging_endpoint_name(config: Settings) -> str:
    """From the staging stack's Outputs; the conventional name if the stack is missing (the tests then fail)."""
    described = stack.describe_stack(config.client("cloudformation"), config.stack_name("staging"))
    if described is None:
        name = config.endpoint_name("staging")
        print(f"Stack {config.stack_name('staging')} does not exist: testing the conventional endpoint name {name}")
        return name
    return stack.outputs_of(described)["EndpointName"]


def run(config: Settings, endpoint_name: str | None = None) -> int:
    package_arn = settings.build_value(config, "RESOLVED_MODEL_PACKAGE_ARN")
    endpoint_name = endpoint_name or staging_endpoint_name(config)
    values = budgets()
    config.build_dir.mkdir(parents=True, exist_ok=True)
    results_path = config.build_dir / RESULTS_JSON
    # A report left by an earlier run must never pass for this run's.
    results_path.unlink(missing_ok=True)
    (config.build_dir / REPORT_XML).unlink(missing_ok=True)
    print(f"Staging tests: endpoint {endpoint_name}, package {package_arn}", flush=True)
    exit_code = pytest.main(
        [
            str(SUITE_DIR),
            "--rootdir",
            str(SUITE_DIR),
            "-o",
            "addopts=",
            "-o",
            "junit_suite_name=staging-tests",
            "-p",
            "no:cacheprovider",
            "--import-mode=importlib",
            "-v",
            f"--junitxml={config.build_dir / REPORT_XML}",
            f"--results-json={results_path}",
            f"--endpoint-name={endpoint_name}",
            f"--model-package-arn={package_arn}",
            f"--region={config.region}",
            f"--rmse-tolerance={values['RmseTolerance']}",
            f"--latency-p95-budget-ms={values['LatencyP95BudgetMs']}",
            f"--latency-requests={values['LatencyRequests']}",
            f"--batch-rows={values['BatchRows']}",
        ]
    )
    print(summary_line(results_path))
    return 0 if exit_code == 0 else 1


def summary_line(results_path: Path) -> str:
    if not results_path.is_file():
        return f"Staging tests did not produce {results_path}"
    results = json.loads(results_path.read_text())
    outcomes = [test["outcome"] for test in results["tests"].values()]
    verdict = "PASSED" if results["passed"] else "FAILED"
    figures = results["figures"]
    parts = [f"Staging tests {verdict}: {outcomes.count('passed')}/{len(outcomes)} passed"]
    if "rmse" in figures:
        parts.append(f"RMSE {figures['rmse']} (limit {figures['rmse_limit']})")
    if "latency_p95_ms" in figures:
        parts.append(f"p95 {figures['latency_p95_ms']} ms (budget {figures['latency_p95_budget_ms']} ms)")
    return "; ".join(parts)
