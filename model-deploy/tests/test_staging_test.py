"""The staging test suite, run as CI runs it (`python -m deploy staging-test`, its own process), against
a moto-backed staging deployment and an InvokeEndpoint test double that serves the real model; its results
in the artifact bucket, which `summary` reads."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from deploy import staging_test
from deploy.errors import DeployError

from .conftest import REPO_DIR

# moto skips the prod-only alarms and autoscaling resources (test_template.py checks them instead).
pytestmark = pytest.mark.filterwarnings("ignore:Tried to parse AWS:UserWarning")

SUITE = {
    "test_endpoint_is_in_service",
    "test_endpoint_serves_the_approved_package",
    "test_rmse_on_held_out_test_split_within_tolerance",
    "test_latency_p95_within_budget",
    "test_malformed_payload_gets_an_error_answer",
}


def deploy_to_staging(project, monkeypatch, arn: str) -> None:
    monkeypatch.setenv("MODEL_PACKAGE_ARN", arn)
    assert project.run("build") == 0
    assert project.run("deploy-stage", "staging") == 0


def run_staging_tests(project, runtime_double):
    return project.run_subprocess(
        "staging-test",
        env={"AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": runtime_double.url, "STAGING_LATENCY_REQUESTS": "10"},
    )


def junit_cases(project) -> dict[str, str]:
    """Test name -> outcome, from the JUnit XML GitLab would show."""
    root = ET.parse(project.build_dir / "staging-test-report.xml").getroot()  # noqa: S314 - our own report
    cases = {}
    for case in root.iter("testcase"):
        failed = case.find("failure") is not None or case.find("error") is not None
        cases[case.get("name")] = "failed" if failed else "passed"
    return cases


def stored_results(project, version: int) -> dict:
    """The results object staging-test put in the artifact bucket for that package version."""
    key = f"staging-tests/{project.name}/{version}/staging-test-results.json"
    return project.s3.get_object(Bucket=project.bucket, Key=key)


def results(project) -> dict:
    return json.loads((project.build_dir / "staging-test-results.json").read_text())


def test_staging_tests_pass_on_the_approved_model_and_the_summary_shows_them(
    project, monkeypatch, runtime_double, capsys
):
    arn = project.register(model="good")
    deploy_to_staging(project, monkeypatch, arn)

    run = run_staging_tests(project, runtime_double)

    assert run.returncode == 0, run.stdout + run.stderr
    assert junit_cases(project) == dict.fromkeys(SUITE, "passed")
    report = results(project)
    assert report["passed"] is True
    assert report["model_package_arn"] == arn
    figures = report["figures"]
    assert figures["test_rows"] == project.abalone.rows
    # The double serves the very model that was registered: the RMSE matches the registered one.
    assert figures["rmse"] == pytest.approx(project.abalone.good_rmse, abs=1e-3)
    assert figures["latency_requests"] == 10
    assert 0 < figures["latency_p50_ms"] <= figures["latency_p95_ms"] <= figures["latency_max_ms"]
    assert (figures["malformed_error_code"], figures["malformed_http_status"]) == ("ModelError", 424)
    assert "Staging tests PASSED: 5/5 passed" in run.stdout

    # The results are also in the artifact bucket, encrypted, under the project and the package version.
    stored = stored_results(project, 1)
    assert stored["ServerSideEncryption"] == "aws:kms"
    assert json.loads(stored["Body"].read()) == report

    # Promoted: the summary shows both endpoints serving the version, and the staging figures, read from
    # the bucket (the job's build folder is elsewhere, as under GitLab or gitlab-ci-local).
    assert project.run("deploy-stage", "prod") == 0
    (project.build_dir / "staging-test-results.json").unlink()
    capsys.readouterr()
    assert project.run("summary") == 0
    out = capsys.readouterr().out
    version = arn.split("model-package/")[1]
    for stage in ("staging", "prod"):
        endpoint = project.outputs(stage)["EndpointName"]
        assert f"{stage:<8} endpoint {endpoint} InService, serves {version}" in out
    assert "Staging tests PASSED: 5/5 passed; RMSE" in out
    assert "latency_p95_ms" in out


def test_summary_says_when_the_staged_version_has_no_staging_results(project, monkeypatch, capsys):
    deploy_to_staging(project, monkeypatch, project.register())
    capsys.readouterr()

    assert project.run("summary") == 0

    out = capsys.readouterr().out
    assert f"No staging test results yet for {project.group}/1 (s3://{project.bucket}/staging-tests/" in out
    assert "prod     not serving: no stack" in out


def test_staging_tests_fail_when_predictions_are_wrong(project, monkeypatch, runtime_double):
    # Registered with the good model's metrics, but its artifact only ever predicts the mean.
    arn = project.register(model="constant")
    deploy_to_staging(project, monkeypatch, arn)

    run = run_staging_tests(project, runtime_double)

    assert run.returncode == 1
    cases = junit_cases(project)
    assert cases["test_rmse_on_held_out_test_split_within_tolerance"] == "failed"
    assert cases["test_endpoint_is_in_service"] == "passed"
    report = results(project)
    assert report["passed"] is False
    assert report["figures"]["rmse"] > report["figures"]["rmse_limit"]
    rmse_test = report["tests"]["test_rmse_on_held_out_test_split_within_tolerance"]
    assert "does not reproduce the approved model" in rmse_test["message"]
    assert "Staging tests FAILED" in run.stdout
    # A failure is recorded in the bucket too: the summary must not show an older success for this version.
    assert json.loads(stored_results(project, 1)["Body"].read())["passed"] is False


def test_staging_tests_fail_when_the_endpoint_is_missing(project, monkeypatch, runtime_double):
    deploy_to_staging(project, monkeypatch, project.register())
    project.sagemaker.delete_endpoint(EndpointName=project.outputs("staging")["EndpointName"])

    run = run_staging_tests(project, runtime_double)

    assert run.returncode == 1
    cases = junit_cases(project)
    assert set(cases) == SUITE and set(cases.values()) == {"failed"}
    message = results(project)["tests"]["test_endpoint_is_in_service"]["message"]
    assert "not found" in message


def test_staging_tests_fail_when_staging_serves_another_version(project, monkeypatch, runtime_double):
    deploy_to_staging(project, monkeypatch, project.register())
    # A later build resolved another version, but staging was not redeployed (e.g. an interleaved run).
    monkeypatch.setenv("MODEL_PACKAGE_ARN", project.register())
    assert project.run("build") == 0

    run = run_staging_tests(project, runtime_double)

    assert run.returncode == 1
    assert junit_cases(project)["test_endpoint_serves_the_approved_package"] == "failed"


@pytest.mark.parametrize(
    ("variable", "value", "problem"),
    [
        ("STAGING_LATENCY_REQUESTS", "0", "must be at least 1"),
        ("STAGING_BATCH_ROWS", "0", "must be at least 1"),
        ("STAGING_RMSE_TOLERANCE", "-0.5", "must be at least 0.0"),
        ("STAGING_LATENCY_P95_BUDGET_MS", "fast", "must be a number"),
    ],
)
def test_budgets_that_cannot_work_are_refused_by_name(monkeypatch, variable, value, problem):
    monkeypatch.setenv(variable, value)
    with pytest.raises(DeployError, match=f"{variable}/StagingTests.* {problem}"):
        staging_test.budgets()


def test_budgets_come_from_staging_config_and_the_environment_overrides_them(monkeypatch):
    for variable, *_ in staging_test.BUDGETS.values():
        monkeypatch.delenv(variable, raising=False)
    configured = json.loads((REPO_DIR / "staging-config.json").read_text())["StagingTests"]
    assert staging_test.budgets() == configured
    monkeypatch.setenv("STAGING_LATENCY_REQUESTS", "7")
    assert staging_test.budgets()["LatencyRequests"] == 7


def test_batch_staging_skips_a_version_without_batch_inputs_and_reports_why(project, monkeypatch, capsys):
    # A version registered before batch inference (no feature code, no drift baselines): the endpoint deploys,
    # batch inference does not move, and the job's report says why instead of failing the deployment.
    monkeypatch.setenv("MODEL_PACKAGE_ARN", project.register())
    assert project.run("build") == 0

    assert project.run("batch-staging-test") == 0

    results = json.loads((project.build_dir / "batch-staging-results.json").read_text())
    assert results["passed"] and "FeatureCodeUrl" in results["skipped"]
    suite = ET.parse(project.build_dir / "batch-staging-report.xml").getroot()  # noqa: S314 - our own report
    assert suite.get("skipped") == "1" and suite.find("testcase/skipped") is not None
    assert "warning: staging batch inference skipped" in capsys.readouterr().out
