"""The trigger Lambda against moto (Secrets Manager, DynamoDB) and an emulated GitLab API."""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import socket
import traceback
from pathlib import Path

import boto3
import pytest
import requests
import urllib3

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


def foreign_arn(account="123456789012", group="abalone", region=REGION, arn=None) -> dict:
    event = approval_event()
    event["detail"]["ModelPackageArn"] = arn or f"arn:aws:sagemaker:{region}:{account}:model-package/{group}/3"
    return event


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
        # The group field says "abalone"; the ARN, which is what gets deployed, is someone else's.
        (foreign_arn(account="999999999999"), "account '999999999999' is not '123456789012'"),
        (foreign_arn(group="another-team"), "group 'another-team' is not 'abalone'"),
        (foreign_arn(region="eu-west-1"), "region 'eu-west-1' is not 'us-east-1'"),
        (foreign_arn(arn=f"arn:aws:sagemaker:{REGION}:123456789012:model-package-group/abalone"), "not a model"),
        ({**approval_event(), "account": "999999999999"}, "event account '999999999999' is not '123456789012'"),
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


def test_a_429_is_sent_again_after_the_backoff(lambda_env, gitlab_fake, no_backoff):
    # GitLab's rate limiter answers 429 before any work is done: sending again cannot duplicate.
    gitlab_fake.fail_next("POST", "/trigger/pipeline$", 429, times=2)

    assert invoke(approval_event())["status"] == "triggered"

    assert len(gitlab_fake.pipelines) == 1
    assert no_backoff == [0.1, 0.2]


@pytest.mark.parametrize("failure", [500, 502, 503, 504])
def test_a_5xx_is_not_sent_again_it_is_raised_for_lambdas_retry(failure, lambda_env, gitlab_fake, no_backoff):
    # A 5xx may come after GitLab created the pipeline (or from a proxy after GitLab did): never re-sent here.
    gitlab_fake.fail_next("POST", "/trigger/pipeline$", failure, times=20)

    with pytest.raises(handler.TriggerError, match=rf"\({failure}: {failure} injected\) \(GitLab may have started"):
        invoke(approval_event())

    assert gitlab_fake.calls.count(("POST", f"/projects/{lambda_env['project_id']}/trigger/pipeline")) == 1
    assert no_backoff == [] and stored_idempotency_records() == 0  # no record: Lambda's retry runs again


def refused_connection() -> requests.exceptions.ConnectionError:
    """What requests raises when nothing listens on the port: made by urllib3 itself, on a closed port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    try:
        urllib3.PoolManager(retries=0).request("POST", f"http://127.0.0.1:{port}/api/v4/trigger")
    except urllib3.exceptions.MaxRetryError as error:
        return requests.exceptions.ConnectionError(error)  # as requests' HTTPAdapter wraps it
    raise AssertionError(f"port {port} answered")


def test_requests_that_never_left_are_sent_again_then_raised(lambda_env, gitlab_fake, no_backoff):
    gitlab_fake.fail_next("POST", "/trigger/pipeline$", requests.exceptions.ConnectTimeout("timed out"))
    gitlab_fake.fail_next("POST", "/trigger/pipeline$", refused_connection())
    assert invoke(approval_event())["status"] == "triggered"
    assert no_backoff == [0.1, 0.2] and len(gitlab_fake.pipelines) == 1

    gitlab_fake.fail_next("POST", "/trigger/pipeline$", refused_connection(), times=20)
    with pytest.raises(handler.TriggerError, match=r"could not be reached after 5 attempts \(ConnectionError\)"):
        invoke(approval_event())
    assert len(gitlab_fake.pipelines) == 1


@pytest.mark.parametrize(
    "lost",
    [
        requests.exceptions.ReadTimeout("Read timed out. (read timeout=30)"),
        requests.exceptions.ConnectionError(
            urllib3.exceptions.ProtocolError(
                "Connection aborted.", http.client.RemoteDisconnected("Remote end closed connection without response")
            )
        ),
    ],
    ids=["read-timeout", "connection-aborted"],
)
def test_a_request_that_reached_gitlab_is_not_sent_again(lost, lambda_env, gitlab_fake, no_backoff):
    gitlab_fake.fail_next("POST", "/trigger/pipeline$", gitlab_fake.created_then(lost))

    with pytest.raises(handler.TriggerError, match=rf"got the request but gave no answer \({type(lost).__name__}\)"):
        invoke(approval_event())

    assert len(gitlab_fake.pipelines) == 1 and no_backoff == []  # one POST, one pipeline: nothing re-sent
    assert stored_idempotency_records() == 0


def test_an_unseeded_secret_raises_a_clear_configuration_error(lambda_env, monkeypatch):
    monkeypatch.setenv("TRIGGER_SECRET_ARN", create_secret("abalone/unseeded", '{"status": "not seeded yet"}'))

    with pytest.raises(handler.ConfigurationError, match="holds no trigger token yet: seed the projects"):
        invoke(approval_event())


def test_missing_environment_is_named(lambda_env, monkeypatch):
    monkeypatch.delenv("IDEMPOTENCY_TABLE")

    with pytest.raises(handler.ConfigurationError, match="IDEMPOTENCY_TABLE"):
        invoke(approval_event())


@pytest.fixture
def every_record(capfd):
    """Every record of every logger at DEBUG, botocore's response bodies included, with its exception
    text, plus everything printed (Powertools writes its JSON lines to stdout)."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record)

    keep = Keep(level=logging.DEBUG)
    touched = [logging.getLogger(), logging.getLogger("botocore"), logging.getLogger("urllib3"), handler.logger]
    levels = [logger.level for logger in touched]
    for logger in touched:
        logger.setLevel(logging.DEBUG)
    logging.getLogger().addHandler(keep)
    printed: list[str] = []

    def read() -> str:
        captured = capfd.readouterr()
        printed.extend((captured.out, captured.err))
        formatter = logging.Formatter()
        lines = [
            f"{r.name} {r.getMessage()} {r.__dict__} {formatter.formatException(r.exc_info) if r.exc_info else ''}"
            for r in records
        ]
        return "\n".join(lines) + "".join(printed)

    yield read
    logging.getLogger().removeHandler(keep)
    for logger, level in zip(touched, levels, strict=True):
        logger.setLevel(level)


def test_the_debug_capture_sees_botocore_print_the_secret_without_the_guard(
    lambda_env, every_record, monkeypatch, no_backoff
):
    # Proof that the next test can fail: botocore's DEBUG output does carry the GetSecretValue body.
    monkeypatch.setattr(handler, "_no_debug_records", contextlib.nullcontext)
    invoke(approval_event())
    logs = every_record()
    assert "botocore.parsers" in logs and lambda_env["token"] in logs


def test_the_trigger_token_is_in_no_log_record_and_no_exception_at_any_level(
    lambda_env, gitlab_fake, every_record, no_backoff
):
    token = lambda_env["token"]

    def echo_the_request(request):  # a GitLab or proxy error page that quotes what it was sent
        return 400, {}, json.dumps({"message": f"bad request: {request.body.decode()}"})

    failures = [
        401,
        500,
        echo_the_request,
        gitlab_fake.created_then(requests.exceptions.ReadTimeout("Read timed out.")),
        refused_connection(),
    ]
    event = approval_event()
    assert invoke(event)["status"] == "triggered"
    assert invoke(event)["status"] == "duplicate"
    raised = []
    for failure in failures:
        gitlab_fake.fail_next("POST", "/trigger/pipeline$", failure, times=20 if isinstance(failure, Exception) else 1)
        with pytest.raises(handler.TriggerError) as caught:
            invoke(approval_event())
        raised.append("".join(traceback.format_exception(caught.value)))  # with any chained cause

    logs = every_record()
    assert "botocore.parsers" in logs and "deploy pipeline triggered" in logs  # DEBUG records were captured
    assert token not in logs
    assert all(token not in text for text in raised), raised
    echoed = raised[2]
    assert "bad request:" in echoed and handler.REDACTED in echoed  # the body is kept, the token is not


# -- one deployment per approval: the trigger, GitLab's pipelines and each pipeline's build job ---------------
@pytest.fixture
def deploy_build(aws, lambda_env, monkeypatch, tmp_path):
    """Runs model-deploy's first job, `python -m deploy build`, in each pipeline the fake GitLab created,
    with that pipeline's variables, against the same moto account; returns how many went on to deploy."""
    from deploy.__main__ import main as deploy_main

    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="abalone-artifacts")
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    sagemaker.create_model_package_group(ModelPackageGroupName="abalone")
    package_arn = sagemaker.create_model_package(
        ModelPackageGroupName="abalone",
        ModelApprovalStatus="Approved",
        InferenceSpecification={
            "Containers": [{"Image": "xgboost:1.7-1", "ModelDataUrl": "s3://abalone-artifacts/model.tar.gz"}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["text/csv"],
        },
    )["ModelPackageArn"]
    project = {
        "SAGEMAKER_PROJECT_NAME": "abalone",
        "SAGEMAKER_PROJECT_ID": "p-abalone",
        "ARTIFACT_BUCKET": "abalone-artifacts",
        "MODEL_EXECUTION_ROLE_ARN": "arn:aws:iam::123456789012:role/abalone-model-execution",
    }
    for key, value in project.items():
        monkeypatch.setenv(key, value)

    def run_builds(pipelines: list[dict]) -> int:
        proceeded = 0
        for pipeline in pipelines:
            with monkeypatch.context() as job:
                for key, value in pipeline["variables"].items():
                    job.setenv(key, value)
                job.setenv("CI_PIPELINE_ID", str(pipeline["id"]))
                job.setenv("CI_PIPELINE_URL", pipeline["web_url"])
                job.setenv("CI_COMMIT_SHA", "0123456789abcdef")
                if deploy_main(["--build-dir", str(tmp_path / str(pipeline["id"])), "build"]) == 0:
                    proceeded += 1
        return proceeded

    run_builds.package_arn = package_arn
    return run_builds


def deliver(event: dict, attempts: int = 3) -> None:
    """EventBridge -> Lambda async invocation: the first attempt and Lambda's two retries, while it raises."""
    for _ in range(attempts):
        try:
            invoke(json.loads(json.dumps(event)))
            return
        except handler.TriggerError:
            continue


def event_for(package_arn: str) -> dict:
    event = approval_event()
    event["detail"]["ModelPackageArn"] = package_arn
    event["resources"] = [package_arn]
    return event


@pytest.mark.parametrize(
    "lost",
    [
        requests.exceptions.ReadTimeout("Read timed out. (read timeout=30)"),  # a slow GitLab
        requests.exceptions.ConnectionError(  # created, but the response was lost
            urllib3.exceptions.ProtocolError("Connection aborted.", ConnectionResetError(104, "Connection reset"))
        ),
    ],
    ids=["slow-gitlab", "response-lost"],
)
@pytest.mark.parametrize("lost_answers", [1, 3])
def test_an_answer_lost_after_gitlab_created_the_pipeline_still_deploys_once(
    lost, lost_answers, gitlab_fake, deploy_build, no_backoff, capsys
):
    gitlab_fake.fail_next("POST", "/trigger/pipeline$", gitlab_fake.created_then(lost), times=lost_answers)

    deliver(event_for(deploy_build.package_arn))

    # One POST per Lambda attempt, never re-sent within one: at most one pipeline per attempt.
    assert len(gitlab_fake.pipelines) == min(lost_answers + 1, 3)
    assert deploy_build(gitlab_fake.pipelines) == 1
    assert capsys.readouterr().err.count("stops here, nothing was deployed") == len(gitlab_fake.pipelines) - 1


def forget_delivered_events() -> None:
    """The trigger's idempotency records gone (expired after a day, or the table emptied)."""
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    for item in dynamodb.scan(TableName="idempotency")["Items"]:
        dynamodb.delete_item(TableName="idempotency", Key={"id": item["id"]})


def test_the_same_event_delivered_three_times_deploys_once(gitlab_fake, deploy_build):
    event = event_for(deploy_build.package_arn)
    for _ in range(3):
        deliver(event)
    assert len(gitlab_fake.pipelines) == 1  # the trigger's idempotency record
    assert deploy_build(gitlab_fake.pipelines) == 1


def test_past_the_triggers_own_record_a_redelivered_event_still_deploys_once(gitlab_fake, deploy_build):
    event = event_for(deploy_build.package_arn)
    for _ in range(3):
        forget_delivered_events()
        deliver(event)
    assert len(gitlab_fake.pipelines) == 3
    assert deploy_build(gitlab_fake.pipelines) == 1


def test_the_staging_role_may_write_only_create_only_event_records_under_the_project_prefix():
    from cfnlint.decode import cfn_yaml

    from deploy import approval_event as deploy_events

    template = cfn_yaml.load(str(Path(__file__).resolve().parents[2] / "cloudformation" / "project.yml"))
    statements = {
        role: [
            s
            for policy in template["Resources"][role]["Properties"]["Policies"]
            for s in policy["PolicyDocument"]["Statement"]
            if "deploy-events" in json.dumps(s)
        ]
        for role in ("GitLabDeployStagingRole", "GitLabDeployProdRole", "GitLabBuildRole")
    }
    (grant,) = statements.pop("GitLabDeployStagingRole")  # build runs as the staging role
    assert statements == {"GitLabDeployProdRole": [], "GitLabBuildRole": []}
    assert grant["Action"] == "s3:PutObject"
    assert grant["Resource"] == {"Fn::Sub": "${ArtifactBucket.Arn}/deploy-events/${SageMakerProjectName}/*"}
    assert grant["Condition"] == {"Null": {"s3:if-none-match": "false"}}  # it can never overwrite a record
    assert deploy_events.marker_key("abalone", "e-1") == "deploy-events/abalone/e-1.json"


# ---------------------------------------------------------------- the retraining decision


def retraining_event(project: str = "abalone", event_id: str = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d") -> dict:
    fixture = Path(__file__).parents[1] / "fixtures" / "eventbridge" / "batch-inference-retraining-recommended.json"
    event = json.loads(fixture.read_text())
    event["id"], event["source"], event["detail"]["project"] = event_id, f"mlops.{project}.batch-inference", project
    return event


@pytest.fixture
def build_project(gitlab_fake, deploy_project, lambda_env, monkeypatch):
    namespace = gitlab_fake.add_namespace("ml-team/abalone-build")
    project = gitlab_fake.add_project(namespace, "abalone-model-build", files={".gitlab-ci.yml": b"stages: [train]\n"})
    project.triggers[2] = {"id": 2, "description": "retraining", "token": "glptt-BUILDtoken012345678901"}
    secret = lambda_env | {"build": {"project_id": project.id, "ref": "main", "token": "glptt-BUILDtoken012345678901"}}
    monkeypatch.setenv("TRIGGER_SECRET_ARN", create_secret("abalone/gitlab-trigger-2", json.dumps(secret)))
    return project


def test_the_retraining_decision_triggers_the_build_project_with_its_own_token(build_project, gitlab_fake):
    event = retraining_event()

    result = invoke(event)

    (pipeline,) = gitlab_fake.pipelines
    assert pipeline["project_id"] == build_project.id and pipeline["ref"] == "main"
    assert pipeline["variables"] == {
        "DRIFT_EXECUTION_ARN": event["detail"]["execution_arn"],
        "DRIFT_STAGE": "staging",
        "DRIFT_MODEL_PACKAGE_ARN": event["detail"]["model_package_arn"],
        "EVENTBRIDGE_EVENT_ID": event["id"],
    }
    assert result["status"] == "triggered" and result["pipeline_url"] == pipeline["web_url"]
    assert gitlab_fake.calls == [("POST", f"/projects/{build_project.id}/trigger/pipeline")]
    assert invoke(event)["status"] == "duplicate" and len(gitlab_fake.pipelines) == 1  # redelivered: one build


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda e: e.update(source="mlops.other.batch-inference"), "source 'mlops.other.batch-inference'"),
        (lambda e: e["detail"].update(project="other"), "project 'other' is not this project's"),
        (lambda e: e.update(account="210987654321"), "event account '210987654321'"),
        (lambda e: e["detail"].pop("execution_arn"), "malformed event: detail.execution_arn"),
    ],
)
def test_foreign_or_malformed_retraining_events_are_ignored(change, reason, build_project, gitlab_fake):
    event = retraining_event()
    change(event)
    result = invoke(event)
    assert result["status"] == "ignored" and reason in result["reason"], result
    assert gitlab_fake.pipelines == []


def test_without_a_build_trigger_in_the_secret_the_error_says_to_seed_again(lambda_env, gitlab_fake):
    with pytest.raises(handler.ConfigurationError, match="no build project trigger: seed the projects again"):
        invoke(retraining_event())
    assert gitlab_fake.pipelines == []


def test_retraining_target_pipeline_starts_the_build_pipeline_naming_the_drift_run(
    lambda_env, gitlab_fake, monkeypatch
):
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    definition = {"Version": "2020-12-01", "Parameters": [], "Steps": []}
    sagemaker.create_pipeline(
        PipelineName="abalone-build",
        PipelineDefinition=json.dumps(definition),
        RoleArn="arn:aws:iam::123456789012:role/p",
    )
    monkeypatch.setenv("RETRAINING_TARGET", "pipeline")
    event = retraining_event()

    result = invoke(event)

    assert result["status"] == "started" and gitlab_fake.pipelines == []
    execution = sagemaker.describe_pipeline_execution(PipelineExecutionArn=result["execution_arn"])
    assert event["detail"]["execution_arn"] in execution["PipelineExecutionDescription"]
    assert execution["PipelineExecutionDisplayName"] == "retrain-m4nz8q1rtx0p"
    monkeypatch.setenv("RETRAINING_TARGET", "nightly")
    with pytest.raises(handler.ConfigurationError, match="RETRAINING_TARGET 'nightly' is not one of gitlab, pipeline"):
        invoke(retraining_event(event_id="another"))
