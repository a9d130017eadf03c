"""The trigger Lambda against moto (Secrets Manager, DynamoDB) and an emulated GitLab API."""

from __future__ import annotations

import json

import boto3
import pytest
import requests

from lambdas.model_trigger import handler

from .cfn_testkit import REGION, LambdaContext, approval_event, create_idempotency_table, create_secret


@pytest.fixture
def deploy_project(gitlab_fake):
    namespace = gitlab_fake.add_namespace("ml-team/abalone")
    project = gitlab_fake.add_project(namespace, "abalone-model-deploy", files={".gitlab-ci.yml": b"stages: [build]\n"})
    project.triggers[1] = {"id": 1, "description": "approval", "token": "glptt-TRIGGERtoken0123456789"}
    return project


@pytest.fixture
def lambda_env(monkeypatch, gitlab_fake, deploy_project):
    secret = {"project_id": deploy_project.id, "ref": "main", "token": "glptt-TRIGGERtoken0123456789"}
    monkeypatch.setenv("GITLAB_URL", gitlab_fake.url)
    monkeypatch.setenv("TRIGGER_SECRET_ARN", create_secret("abalone/gitlab-trigger", json.dumps(secret)))
    monkeypatch.setenv("MODEL_PACKAGE_GROUP_NAME", "abalone")
    monkeypatch.setenv("IDEMPOTENCY_TABLE", create_idempotency_table())
    return secret


def invoke(event):
    return handler.lambda_handler(event, LambdaContext(remaining_ms=60_000))


def stored_idempotency_records() -> int:
    return boto3.client("dynamodb", region_name=REGION).scan(TableName="idempotency")["Count"]


@pytest.mark.parametrize("status", ["Approved", "Rejected"])
def test_a_decision_triggers_the_deploy_pipeline_with_the_model_variables(
    status, lambda_env, gitlab_fake, deploy_project
):
    event = approval_event(status)

    result = invoke(event)

    (pipeline,) = gitlab_fake.pipelines
    assert pipeline["project_id"] == deploy_project.id and pipeline["ref"] == "main"
    assert pipeline["variables"] == {
        "MODEL_PACKAGE_ARN": event["detail"]["ModelPackageArn"],
        "MODEL_PACKAGE_GROUP": "abalone",
        "MODEL_PACKAGE_GROUP_NAME": "abalone",
        "MODEL_APPROVAL_STATUS": status,
        "EVENTBRIDGE_EVENT_ID": event["id"],
    }
    assert result["status"] == "triggered" and result["pipeline_url"] == pipeline["web_url"]
    # Found by id with one call, authenticated by the trigger token alone: no project search, no personal token.
    assert gitlab_fake.calls == [("POST", f"/projects/{deploy_project.id}/trigger/pipeline")]


def test_the_same_event_twice_starts_one_pipeline(lambda_env, gitlab_fake):
    event = approval_event()

    first = invoke(event)
    second = invoke(json.loads(json.dumps(event)))  # a redelivery: equal content, new object

    assert len(gitlab_fake.pipelines) == 1
    assert first["status"] == "triggered" and second["status"] == "duplicate"
    assert second["pipeline_id"] == first["pipeline_id"]
    invoke(approval_event())  # another event for the same model version is a new decision
    assert len(gitlab_fake.pipelines) == 2


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        ("not an event", "malformed event"),
        ({}, "malformed event"),
        ({**approval_event(), "detail": {"ModelPackageGroupName": "abalone"}}, "malformed event: detail.Model"),
        (approval_event(source="aws.ec2"), "source 'aws.ec2' is not aws.sagemaker"),
        (approval_event(source="custom.attacker"), "is not aws.sagemaker"),
        ({**approval_event(), "detail-type": "SageMaker Endpoint State Change"}, "detail-type"),
        (approval_event(group="another-team"), "model package group 'another-team' is not this project's"),
        (approval_event(status="PendingManualApproval"), "approval status 'PendingManualApproval' needs no deployment"),
    ],
)
def test_malformed_and_foreign_events_are_logged_and_ignored(event, reason, lambda_env, gitlab_fake, all_logs):
    result = invoke(event)

    assert result["status"] == "ignored" and reason in result["reason"]
    assert "event ignored" in all_logs() and reason in all_logs()
    assert gitlab_fake.calls == [] and stored_idempotency_records() == 0


def test_gitlab_401_raises_so_lambda_retries_and_the_retry_can_succeed(lambda_env, gitlab_fake):
    event = approval_event()
    gitlab_fake.fail_next("POST", "/trigger/pipeline$", 401)

    with pytest.raises(handler.TriggerError, match=r"rejected the trigger token \(401\)"):
        invoke(event)
    assert gitlab_fake.pipelines == [] and stored_idempotency_records() == 0  # no record blocks the retry

    assert invoke(event)["status"] == "triggered"
    assert len(gitlab_fake.pipelines) == 1


def test_a_wrong_trigger_token_404_raises(lambda_env, gitlab_fake, monkeypatch):
    secret = {**lambda_env, "token": "glptt-revoked"}
    monkeypatch.setenv("TRIGGER_SECRET_ARN", create_secret("abalone/old-trigger", json.dumps(secret)))

    with pytest.raises(handler.TriggerError, match=r"refused the pipeline trigger .*\(404: 404 Not Found\)"):
        invoke(approval_event())
    assert gitlab_fake.pipelines == []


def test_a_deleted_project_404_raises(lambda_env, gitlab_fake, deploy_project):
    del gitlab_fake.projects[deploy_project.id]

    with pytest.raises(handler.TriggerError, match=rf"project {deploy_project.id} on 'main' \(404"):
        invoke(approval_event())


@pytest.mark.parametrize("failure", [500, 502, 503, 429])
def test_transient_gitlab_errors_are_retried_with_backoff(failure, lambda_env, gitlab_fake, no_backoff):
    gitlab_fake.fail_next("POST", "/trigger/pipeline$", failure, times=2)

    assert invoke(approval_event())["status"] == "triggered"

    assert len(gitlab_fake.pipelines) == 1
    assert no_backoff == [0.1, 0.2]


def test_gitlab_500_that_persists_raises_after_the_retries(lambda_env, gitlab_fake, no_backoff):
    gitlab_fake.fail_next("POST", "/trigger/pipeline$", 500, times=20)

    with pytest.raises(handler.TriggerError, match=r"\(500: 500 injected\)"):
        invoke(approval_event())

    assert no_backoff == [0.1, 0.2, 0.4, 0.8]  # GITLAB_MAX_RETRIES, exponential
    assert gitlab_fake.calls.count(("POST", f"/projects/{lambda_env['project_id']}/trigger/pipeline")) == 5
    assert stored_idempotency_records() == 0


def test_gitlab_timeouts_are_retried_then_raised(lambda_env, gitlab_fake, no_backoff):
    gitlab_fake.fail_next("POST", "/trigger/pipeline$", requests.exceptions.ConnectTimeout("timed out"), times=2)
    assert invoke(approval_event())["status"] == "triggered"

    gitlab_fake.fail_next("POST", "/trigger/pipeline$", requests.exceptions.ReadTimeout("timed out"), times=20)
    with pytest.raises(handler.TriggerError, match="did not answer after retries .ReadTimeout"):
        invoke(approval_event())
    assert len(gitlab_fake.pipelines) == 1


def test_an_unseeded_secret_raises_a_clear_configuration_error(lambda_env, monkeypatch):
    monkeypatch.setenv("TRIGGER_SECRET_ARN", create_secret("abalone/unseeded", '{"status": "not seeded yet"}'))

    with pytest.raises(handler.ConfigurationError, match="holds no trigger token yet: seed the projects"):
        invoke(approval_event())


def test_missing_environment_is_named(lambda_env, monkeypatch):
    monkeypatch.delenv("IDEMPOTENCY_TABLE")

    with pytest.raises(handler.ConfigurationError, match="IDEMPOTENCY_TABLE"):
        invoke(approval_event())


def test_the_trigger_token_never_reaches_the_logs(lambda_env, gitlab_fake, all_logs, no_backoff):
    event = approval_event()
    invoke(event)
    invoke(event)
    gitlab_fake.fail_next("POST", "/trigger/pipeline$", 401)
    with pytest.raises(handler.TriggerError):
        invoke(approval_event())
    gitlab_fake.fail_next("POST", "/trigger/pipeline$", 500, times=20)
    with pytest.raises(handler.TriggerError):
        invoke(approval_event())

    logs = all_logs()
    assert "deploy pipeline triggered" in logs and "duplicate event" in logs  # the logs were captured
    assert lambda_env["token"] not in logs
