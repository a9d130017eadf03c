"""The local stack's approval path: event -> trigger Lambda handler -> loopback GitLab receiver -> callback."""

from __future__ import annotations

import datetime as dt
import json

import boto3
import pytest
import requests
from moto.server import ThreadedMotoServer

from local_aws.awslambda.invoke import deliver_approval_event
from local_aws.sagemaker.registry import state_change_event
from local_gitlab.receiver import GitLabReceiver


@pytest.fixture
def moto_server(monkeypatch):
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://{host}:{port}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    yield f"http://{host}:{port}"
    server.stop()


def approval(status: str = "Approved", group: str = "abalone") -> dict:
    """The event the local stack emits, built by its own emitter from a described package."""
    package = {
        "ModelPackageGroupName": group,
        "ModelPackageVersion": 1,
        "ModelPackageArn": f"arn:aws:sagemaker:us-east-1:123456789012:model-package/{group}/1",
        "CreationTime": dt.datetime(2026, 11, 23, 9, tzinfo=dt.UTC),
        "ModelApprovalStatus": status,
    }
    return state_change_event(package, ["ModelApprovalStatus"])


def test_an_approval_runs_the_deploy_callback_once_with_the_model_variables(moto_server):
    deployed = []
    with GitLabReceiver(on_pipeline=lambda p: deployed.append(dict(p.variables)), project_id=7) as receiver:
        event = approval()

        result = deliver_approval_event(event, receiver, model_package_group="abalone")
        again = deliver_approval_event(event, receiver, model_package_group="abalone")
        ignored = deliver_approval_event(approval(group="other"), receiver, model_package_group="abalone")
        (pipeline,) = receiver.wait(timeout=30)

    assert result["status"] == "triggered" and again["status"] == "duplicate"
    assert ignored["status"] == "ignored"
    assert pipeline.status == "success" and pipeline.ref == "main" and pipeline.project_id == 7
    assert deployed == [
        {
            "MODEL_PACKAGE_ARN": event["detail"]["ModelPackageArn"],
            "MODEL_PACKAGE_GROUP": "abalone",
            "MODEL_PACKAGE_GROUP_NAME": "abalone",
            "MODEL_APPROVAL_STATUS": "Approved",
            "EVENTBRIDGE_EVENT_ID": event["id"],
        }
    ]
    # The trigger token lives in the moto server's Secrets Manager, as the seed step stores it on AWS.
    secret = boto3.client("secretsmanager").get_secret_value(SecretId="local/abalone/gitlab-trigger")
    assert json.loads(secret["SecretString"])["token"] == receiver.trigger_token


def test_a_failing_deploy_marks_the_pipeline_failed(moto_server):
    def broken_deploy(_pipeline):
        raise RuntimeError("staging endpoint never became InService")

    with GitLabReceiver(on_pipeline=broken_deploy) as receiver:
        deliver_approval_event(approval("Rejected"), receiver, model_package_group="abalone")
        (pipeline,) = receiver.wait(timeout=30)

    assert pipeline.status == "failed" and "never became InService" in pipeline.error
    assert pipeline.variables["MODEL_APPROVAL_STATUS"] == "Rejected"


def test_the_receiver_answers_like_gitlab():
    with GitLabReceiver(project_id=3, trigger_token="glptt-right") as receiver:
        url = f"{receiver.url}/api/v4/projects/3/trigger/pipeline"
        curl_style = requests.post(url, data={"token": "glptt-right", "ref": "main", "variables[A]": "1"}, timeout=5)
        wrong_token = requests.post(url, json={"token": "glptt-wrong", "ref": "main"}, timeout=5)
        wrong_ref = requests.post(url, json={"token": "glptt-right", "ref": "dev"}, timeout=5)
        wrong_project = requests.post(
            url.replace("/3/", "/4/"), json={"token": "glptt-right", "ref": "main"}, timeout=5
        )
        other_route = requests.post(f"{receiver.url}/api/v4/projects", json={}, timeout=5)
        receiver.wait(timeout=10)

    assert curl_style.status_code == 201 and curl_style.json()["status"] == "created"
    assert [p.variables for p in receiver.pipelines] == [{"A": "1"}]
    assert (wrong_token.status_code, wrong_ref.status_code, wrong_project.status_code) == (404, 400, 404)
    assert other_route.status_code == 404 and "no route POST /api/v4/projects" in other_route.json()["message"]
