"""Approval: scripts/approve-model updates the registry without losing a field, and the local
stack emits exactly one "SageMaker Model Package State Change" event of the documented shape."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from local_aws.events.bus import read_events

REPO_ROOT = Path(__file__).resolve().parents[2]
APPROVE_MODEL = REPO_ROOT / "scripts" / "approve-model"
DETAIL_TYPE = "SageMaker Model Package State Change"
ISO_SECONDS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
METADATA = {
    "GitCommit": "0123456789abcdef",
    "GitLabPipelineUrl": "https://gitlab.example.com/ml/abalone-build/-/pipelines/42",
    "InputDataUrl": "s3://sagemaker-local-artifacts/data/abalone/abalone.csv",
    "TestDataUrl": "s3://sagemaker-local-artifacts/abalone/exec-1/Preprocess/test",
}
# What the update is allowed to change; every other field must come back exactly as it was.
CHANGED_BY_APPROVAL = {"ModelApprovalStatus", "ApprovalDescription", "LastModifiedTime", "LastModifiedBy"}


@pytest.fixture
def package(clients):
    """A freshly registered version, as the pipeline's RegisterModel step creates it."""
    answer = clients.sagemaker.create_model_package(
        ModelPackageGroupName="abalone",
        ModelPackageDescription="registered by the tests",
        InferenceSpecification={
            "Containers": [
                {
                    "Image": "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1",
                    "ModelDataUrl": "s3://sagemaker-local-artifacts/abalone/models/job-1/output/model.tar.gz",
                }
            ],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["text/csv"],
            "SupportedRealtimeInferenceInstanceTypes": ["ml.t2.medium", "ml.m5.large"],
            "SupportedTransformInstanceTypes": ["ml.m5.large"],
        },
        ModelMetrics={
            "ModelQuality": {
                "Statistics": {
                    "ContentType": "application/json",
                    "S3Uri": "s3://sagemaker-local-artifacts/abalone/exec-1/Evaluate/evaluation/evaluation.json",
                }
            }
        },
        MetadataProperties={
            "GeneratedBy": "arn:aws:sagemaker:us-east-1:123456789012:pipeline/abalone/execution/exec-1"
        },
        CustomerMetadataProperties=METADATA,
        ModelApprovalStatus="PendingManualApproval",
    )
    return answer["ModelPackageArn"]


def describe(clients, arn: str) -> dict:
    found = clients.moto_sagemaker.describe_model_package(ModelPackageName=arn)  # what moto really holds
    found.pop("ResponseMetadata")
    return found


def approve_model(local_stack, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(APPROVE_MODEL), *args],
        env=local_stack.environ(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def events_for(local_stack, arn: str) -> list[dict]:
    """The package's update events. Its creation sent one too, as on AWS (no UpdatedModelPackageFields):
    test_api_fidelity.py tests that one."""
    events = read_events(local_stack.state_dir, DETAIL_TYPE)
    return [e for e in events if e["resources"] == [arn] and "UpdatedModelPackageFields" in e["detail"]]


def test_approval_keeps_every_field_and_emits_one_documented_event(clients, local_stack, package):
    before = describe(clients, package)
    version = before["ModelPackageVersion"]

    result = approve_model(local_stack, "approve", "--version", str(version), "--description", "RMSE 2.2: good")

    assert result.returncode == 0, result.stderr
    assert f"{package}: PendingManualApproval -> Approved" in result.stdout
    after = describe(clients, package)
    assert after["ModelApprovalStatus"] == "Approved"
    assert after["ApprovalDescription"] == "RMSE 2.2: good"
    assert {name: value for name, value in after.items() if name not in CHANGED_BY_APPROVAL} == {
        name: value for name, value in before.items() if name not in CHANGED_BY_APPROVAL
    }
    assert after["CustomerMetadataProperties"] == METADATA  # spelled out: the field moto used to drop

    [event] = events_for(local_stack, package)
    assert_documented_shape(event, package)
    assert event["detail"]["ModelApprovalStatus"] == "Approved"
    assert event["detail"]["ApprovalDescription"] == "RMSE 2.2: good"
    assert event["detail"]["ModelPackageVersion"] == version
    assert event["detail"]["CustomerMetadataProperties"] == METADATA
    assert event["detail"]["ModelMetrics"] == before["ModelMetrics"]
    assert event["detail"]["InferenceSpecification"] == before["InferenceSpecification"]
    assert set(event["detail"]["UpdatedModelPackageFields"]) == {"ModelApprovalStatus", "ApprovalDescription"}
    assert_delivered_to_subscribers(local_stack, event)


def test_approve_model_alone_keeps_every_field_on_bare_moto(clients, local_stack, package):
    # Straight to moto, without the gateway's AWS semantics: the full update is what saves the fields.
    before = describe(clients, package)
    env = local_stack.environ() | {"AWS_ENDPOINT_URL_SAGEMAKER": local_stack.env["AWS_ENDPOINT_URL"]}

    result = subprocess.run(
        [sys.executable, str(APPROVE_MODEL), "approve", "--arn", package],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    after = describe(clients, package)
    assert after["ModelApprovalStatus"] == "Approved"
    assert after["ApprovalDescription"].startswith("Approved by ")
    assert {name: value for name, value in after.items() if name not in CHANGED_BY_APPROVAL} == {
        name: value for name, value in before.items() if name not in CHANGED_BY_APPROVAL
    }
    assert events_for(local_stack, package) == []  # bare moto emits nothing: the gateway does


def test_rejection_by_arn_emits_a_rejected_event(clients, local_stack, package):
    result = approve_model(local_stack, "reject", "--arn", package, "--description", "drift on sex_I")

    assert result.returncode == 0, result.stderr
    assert describe(clients, package)["ModelApprovalStatus"] == "Rejected"
    [event] = events_for(local_stack, package)
    assert_documented_shape(event, package)
    assert event["detail"]["ModelApprovalStatus"] == "Rejected"
    assert event["detail"]["ApprovalDescription"] == "drift on sex_I"


def test_approving_an_approved_version_changes_nothing_and_emits_nothing(clients, local_stack, package):
    assert approve_model(local_stack, "approve", "--arn", package).returncode == 0
    described = describe(clients, package)

    again = approve_model(local_stack, "approve", "--arn", package, "--description", "once more")

    assert again.returncode == 0
    assert "already Approved: nothing to change" in again.stdout
    assert describe(clients, package) == described
    assert len(events_for(local_stack, package)) == 1


def test_latest_version_is_the_newest(clients, local_stack, package):
    result = approve_model(local_stack, "approve", "--version", "latest")

    assert result.returncode == 0, result.stderr
    assert describe(clients, package)["ModelApprovalStatus"] == "Approved"


def test_a_partial_update_keeps_the_other_fields_as_aws_does(clients, local_stack, package):
    # Any client, not only approve-model: AWS keeps what an update leaves out.
    clients.sagemaker.update_model_package(ModelPackageArn=package, ApprovalDescription="noted, not decided")
    assert events_for(local_stack, package) == []  # the status did not change: no event

    clients.sagemaker.update_model_package(ModelPackageArn=package, ModelApprovalStatus="Approved")

    after = describe(clients, package)
    assert after["ModelApprovalStatus"] == "Approved"
    assert after["ApprovalDescription"] == "noted, not decided"
    assert after["CustomerMetadataProperties"] == METADATA
    [event] = events_for(local_stack, package)
    assert event["detail"]["UpdatedModelPackageFields"] == ["ModelApprovalStatus"]


def test_metadata_updates_merge_and_remove_as_aws_does(clients, package):
    clients.sagemaker.update_model_package(
        ModelPackageArn=package,
        CustomerMetadataProperties={"Reviewer": "ana"},
        CustomerMetadataPropertiesToRemove=["GitLabPipelineUrl"],
    )

    expected = {name: value for name, value in METADATA.items() if name != "GitLabPipelineUrl"} | {"Reviewer": "ana"}
    assert describe(clients, package)["CustomerMetadataProperties"] == expected
    assert describe(clients, package)["ModelApprovalStatus"] == "PendingManualApproval"


def test_removing_metadata_from_a_package_without_any_is_a_no_op(clients):
    # AWS accepts it; moto alone answers 500 (it pops the names from a missing dict).
    arn = clients.sagemaker.create_model_package(
        ModelPackageGroupName="abalone",
        InferenceSpecification={
            "Containers": [{"Image": "xgboost", "ModelDataUrl": "s3://sagemaker-local-artifacts/m/model.tar.gz"}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["text/csv"],
        },
        ModelApprovalStatus="PendingManualApproval",
    )["ModelPackageArn"]

    clients.sagemaker.update_model_package(ModelPackageArn=arn, CustomerMetadataPropertiesToRemove=["GitCommit"])

    after = describe(clients, arn)
    assert after["ModelApprovalStatus"] == "PendingManualApproval"
    assert not after.get("CustomerMetadataProperties")


def test_unknown_version_is_refused_with_the_versions_that_exist(local_stack, package):
    result = approve_model(local_stack, "approve", "--version", "9999")

    assert result.returncode == 2
    assert "model package group abalone has no version 9999 (versions: [" in result.stderr


def test_an_unknown_arn_is_a_clear_error(local_stack):
    result = approve_model(
        local_stack, "approve", "--arn", "arn:aws:sagemaker:us-east-1:123456789012:model-package/abalone/9999"
    )

    assert result.returncode == 1
    assert "model-package/abalone/9999" in result.stderr and "not found" in result.stderr


def assert_documented_shape(event: dict, arn: str) -> None:
    """The envelope and detail of the documented example event (automating-sagemaker-with-eventbridge)."""
    assert set(event) == {"version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail"}
    assert event["version"] == "0"
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", event["id"])
    assert event["detail-type"] == DETAIL_TYPE
    assert event["source"] == "aws.sagemaker"
    assert event["account"] == "123456789012"
    assert event["region"] == "us-east-1"
    assert event["resources"] == [arn]
    assert ISO_SECONDS.match(event["time"])
    detail = event["detail"]
    assert detail["ModelPackageArn"] == arn
    assert detail["ModelPackageGroupName"] == "abalone"
    assert isinstance(detail["ModelPackageVersion"], int)
    assert ISO_SECONDS.match(detail["CreationTime"]) and ISO_SECONDS.match(detail["LastModifiedTime"])
    assert detail["ModelPackageStatus"] == "Completed"
    for field in (
        "InferenceSpecification",
        "ModelPackageStatusDetails",
        "CertifyForMarketplace",
        "ModelApprovalStatus",
    ):
        assert field in detail
    assert "ResponseMetadata" not in detail


def assert_delivered_to_subscribers(local_stack, event: dict) -> None:
    """The test plugin's recording subscriber gets the event although the other subscriber fails on it."""
    received_file = local_stack.state_dir / "received-events.jsonl"
    log_file = local_stack.state_dir / "logs" / "server.log"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        received = received_file.read_text() if received_file.exists() else ""
        if event["id"] in received and event["id"] in log_file.read_text():
            break
        time.sleep(0.05)
    assert event["id"] in received, "the recording subscriber never got the event"
    log = log_file.read_text()
    assert f"failed on event {event['id']}" in log
    assert f"this test subscriber always fails (event {event['id']})" in log  # with its traceback


def test_show_prints_the_champion_comparison_as_a_table_and_changes_nothing(clients, local_stack, package):
    gate = {
        "GateResult": "passed: better than champion version 1",
        "GateChampion": "version 1",
        "GateRmse": "2.01 vs 2.10 (<= 2.31)",
        "GateTrainingSize": "2923 vs 2900 (>= 1450)",
        "Report": "s3://sagemaker-local-artifacts/abalone/exec-1/ChampionGate/report/report.html",
    }
    clients.sagemaker.update_model_package(ModelPackageArn=package, CustomerMetadataProperties=gate)
    before = describe(clients, package)

    result = approve_model(local_stack, "show", "--arn", package)

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == package
    assert "Champion comparison: passed: better than champion version 1" in lines
    assert any(line.split() == ["rmse", "2.01", "vs", "2.10", "(<=", "2.31)"] for line in lines)
    assert any(line.split()[:2] == ["mae", "-"] for line in lines)  # a figure the gate did not record
    assert f"Report: {gate['Report']}" in lines
    assert describe(clients, package) == before  # show reads only


def test_show_of_a_version_registered_before_the_gate_says_so(local_stack, package):
    result = approve_model(local_stack, "show", "--version", "latest")

    assert result.returncode == 0, result.stderr
    assert "Champion comparison: none recorded (registered before the champion gate)" in result.stdout


def test_show_without_credentials_names_the_fix(local_stack, package, tmp_path):
    kept = ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SAGEMAKER")
    env = {name: value for name, value in local_stack.environ().items() if not name.startswith("AWS_") or name in kept}
    env.update(AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"), AWS_CONFIG_FILE=str(tmp_path / "none"))
    result = subprocess.run(
        [sys.executable, str(APPROVE_MODEL), "show", "--arn", package],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 2
    assert result.stderr.startswith("error: Unable to locate credentials. Against the local stack: eval")
