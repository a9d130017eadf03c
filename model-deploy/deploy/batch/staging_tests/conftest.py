"""Fixtures and reports of the batch staging suite, which `python -m deploy batch-staging-test` runs after it
started the staging batch pipeline once on the staging sample."""

from __future__ import annotations

import json
from functools import cached_property

import boto3
import pytest

from deploy import registry, suite_report


def pytest_addoption(parser):
    group = parser.getgroup("batch", "the staging batch run under test")
    for name, text in (
        ("--execution-arn", "the pipeline execution that scored the sample"),
        ("--pipeline-name", "the staging batch pipeline"),
        ("--output-root", "s3:// root of the pipeline's outputs"),
        ("--sample-uri", "the sample the run scored"),
        ("--endpoint-name", "the staging endpoint"),
        ("--model-package-arn", "the release's approved package"),
        ("--region", "AWS region"),
    ):
        group.addoption(name, required=True, help=text)
    group.addoption("--run-failure", default="", help="why the run did not succeed (empty: it did)")
    group.addoption("--sample-rows", type=int, required=True, help="data rows in the sample")
    group.addoption("--batch-rows", type=int, default=200, help="rows per InvokeEndpoint request")
    group.addoption("--results-json", default=None, help="where to write outcomes and figures")


class BatchRun:
    """The run, its outputs in S3 and the clients; each output is read once per session."""

    def __init__(self, options):
        self.options = options
        self.execution_arn = options.execution_arn
        self.package_arn = options.model_package_arn
        self.endpoint_name = options.endpoint_name
        self.sagemaker = boto3.client("sagemaker", region_name=options.region)
        self.runtime = boto3.client("sagemaker-runtime", region_name=options.region)
        self.s3 = boto3.client("s3", region_name=options.region)
        self.execution_dir = f"{options.output_root}/executions/{options.execution_arn.rsplit('/', 1)[-1]}"

    def lines(self, uri: str) -> list[str]:
        return [line for line in registry.read_s3_text(self.s3, uri).splitlines() if line.strip()]

    @cached_property
    def summary(self) -> dict:
        return json.loads(
            registry.read_s3_text(self.s3, f"{self.execution_dir}/Postprocess/summary/drift-summary.json")
        )

    @cached_property
    def predictions(self) -> list[str]:
        return self.lines(f"{self.execution_dir}/Postprocess/predictions/predictions.csv")

    @cached_property
    def encoded_rows(self) -> list[str]:
        """The rows the transform scored, as the pipeline's Preprocess (the package's feature code) encoded them."""
        bucket, key = registry.split_s3_uri(f"{self.execution_dir}/Preprocess/features/")
        listed = self.s3.list_objects_v2(Bucket=bucket, Prefix=key).get("Contents", [])
        shards = sorted(item["Key"] for item in listed if item["Key"].endswith(".csv"))
        return [line for shard in shards for line in self.lines(f"s3://{bucket}/{shard}")]

    def transform_model_package(self) -> str:
        """The package behind the pipeline's Transform step: its Model's container (fixed in the definition)."""
        from deploy.batch.run import pinned_package

        return pinned_package(self.sagemaker, self.options.pipeline_name)


class Reporter(suite_report.Reporter):
    def results(self, options) -> dict:
        return {
            "execution_arn": options.execution_arn,
            "pipeline_name": options.pipeline_name,
            "endpoint_name": options.endpoint_name,
            "model_package_arn": options.model_package_arn,
            "sample_uri": options.sample_uri,
            "sample_rows": options.sample_rows,
        }


def pytest_configure(config):
    config.pluginmanager.register(Reporter(config), "batch-staging-reporter")


@pytest.fixture(scope="session")
def batch(pytestconfig) -> BatchRun:
    return BatchRun(pytestconfig.option)


@pytest.fixture(scope="session")
def figures(pytestconfig) -> dict:
    return pytestconfig.pluginmanager.get_plugin("batch-staging-reporter").figures
