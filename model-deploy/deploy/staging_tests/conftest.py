"""Fixtures and reports of the staging test suite, which `python -m deploy staging-test` runs.

Options carry what the suite tests (endpoint, package) and its budgets; the results JSON holds each
test's outcome and the measured figures, next to the JUnit XML that GitLab shows in its test tab.
"""

from __future__ import annotations

from functools import cached_property

import boto3
import pytest

from deploy import endpoints, inference, registry, suite_report


def pytest_addoption(parser):
    group = parser.getgroup("staging", "the staging endpoint under test")
    group.addoption("--endpoint-name", required=True, help="the staging endpoint")
    group.addoption("--model-package-arn", required=True, help="the approved package the endpoint must serve")
    group.addoption("--region", required=True, help="AWS region")
    group.addoption("--rmse-tolerance", type=float, default=0.1, help="allowed RMSE above the registered one")
    group.addoption("--latency-p95-budget-ms", type=float, default=500.0, help="p95 of one-row round trips")
    group.addoption("--latency-requests", type=int, default=50, help="one-row requests timed")
    group.addoption("--batch-rows", type=int, default=200, help="rows per request when scoring the test split")
    group.addoption("--results-json", default=None, help="where to write outcomes and figures")


class Staging:
    """The endpoint under test, its package, and clients; look-ups are made once per session."""

    def __init__(self, options):
        self.endpoint_name = options.endpoint_name
        self.package_arn = options.model_package_arn
        self.rmse_tolerance = options.rmse_tolerance
        self.latency_budget_ms = options.latency_p95_budget_ms
        self.latency_requests = options.latency_requests
        self.batch_rows = options.batch_rows
        self.sagemaker = boto3.client("sagemaker", region_name=options.region)
        self.runtime = boto3.client("sagemaker-runtime", region_name=options.region)
        self.s3 = boto3.client("s3", region_name=options.region)

    def served(self) -> endpoints.ServedEndpoint:
        return endpoints.describe(self.sagemaker, self.endpoint_name)

    @cached_property
    def package(self) -> registry.ModelPackage:
        return registry.describe(self.sagemaker, self.package_arn)

    @cached_property
    def held_out_rows(self) -> list[inference.LabelledRow]:
        return inference.parse_test_split(registry.read_s3_text(self.s3, registry.test_data_uri(self.package)))

    @cached_property
    def registered_rmse(self) -> float:
        return registry.registered_rmse(self.s3, self.package)


class Reporter(suite_report.Reporter):
    """The staging suite's results JSON: its budgets beside the outcomes; the figures printed at the end."""

    def results(self, options) -> dict:
        return {
            "endpoint_name": options.endpoint_name,
            "model_package_arn": options.model_package_arn,
            "budgets": {
                "rmse_tolerance": options.rmse_tolerance,
                "latency_p95_budget_ms": options.latency_p95_budget_ms,
                "latency_requests": options.latency_requests,
            },
        }

    def pytest_terminal_summary(self, terminalreporter):
        if self.figures:
            terminalreporter.section("staging figures")
            for key, value in self.figures.items():
                terminalreporter.write_line(f"{key:<24} {value}")


def pytest_configure(config):
    config.pluginmanager.register(Reporter(config), "staging-reporter")


@pytest.fixture(scope="session")
def staging(pytestconfig) -> Staging:
    return Staging(pytestconfig.option)


@pytest.fixture(scope="session")
def figures(pytestconfig) -> dict:
    """Measured values, written to the results JSON whatever the outcome."""
    return pytestconfig.pluginmanager.get_plugin("staging-reporter").figures
