"""`run_pipeline run` against a moto server, and step following with botocore's Stubber."""

from __future__ import annotations

import io
import json
import re
import time
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from pipelines import execution, run_pipeline, s3_input
from pipelines.abalone.pipeline import step_code

ROLE = "arn:aws:iam::123456789012:role/pipeline"


@pytest.fixture
def bucket(aws_env):
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="artifacts")
    # The pipeline's default InputDataUrl: run checks that it exists before starting anything.
    s3.put_object(Bucket="artifacts", Key="data/abalone/abalone.csv", Body=b"sex,length\n")
    return "artifacts"


def test_run_uploads_code_upserts_with_tags_and_starts_with_parameters(aws_env, bucket, monkeypatch, capsys):
    monkeypatch.setenv("CI_COMMIT_SHA", "0123abcd")
    monkeypatch.setenv("CI_PIPELINE_URL", "https://gitlab.example.com/ml/build/-/pipelines/7")
    args = ["run", "--no-wait", "--role-arn", ROLE, "--bucket", bucket, "--project-name", "abalone"]
    args += ["--project-id", "p-123", "-p", "MseThreshold=7.5"]
    assert run_pipeline.main(args) == 0
    printed = capsys.readouterr().out
    assert "Started arn:aws:sagemaker" in printed
    assert "no Approved package with baselines in abalone: skipping the checks" in printed

    sagemaker = boto3.client("sagemaker")
    pipeline = sagemaker.describe_pipeline(PipelineName="abalone-build")
    stored = json.loads(pipeline["PipelineDefinition"])
    assert [s["Name"] for s in stored["Steps"]][:2] == ["Preprocess", "DataQualityCheck"]
    assert pipeline["RoleArn"] == ROLE
    tags = {t["Key"]: t["Value"] for t in sagemaker.list_tags(ResourceArn=pipeline["PipelineArn"])["Tags"]}
    assert tags == {"sagemaker:project-name": "abalone", "sagemaker:project-id": "p-123", "GitCommit": "0123abcd"}

    executions = sagemaker.list_pipeline_executions(PipelineName="abalone-build")["PipelineExecutionSummaries"]
    assert len(executions) == 1
    parameters = sagemaker.list_pipeline_parameters_for_execution(
        PipelineExecutionArn=executions[0]["PipelineExecutionArn"]
    )["PipelineParameters"]
    # No Approved package yet: every check is skipped and registers its first baseline, and the run says so.
    first_run = {f"{flag}": "true" for check in ("DataQuality", "ModelQuality", "ModelExplainability")
                 for flag in (f"Skip{check}Check", f"RegisterNew{check}Baseline")}  # fmt: skip
    assert {p["Name"]: p["Value"] for p in parameters} == {
        "MseThreshold": "7.5",
        "GitCommit": "0123abcd",
        "GitLabPipelineUrl": "https://gitlab.example.com/ml/build/-/pipelines/7",
        **first_run,
    }
    s3 = boto3.client("s3")
    for path, uri in step_code("abalone-build", bucket).items():
        key = uri.split("/", 3)[3]
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == Path(path).read_bytes()
    clarify = next(s for s in stored["Steps"] if s["Type"] == "ClarifyCheck")
    config_uri = clarify["Arguments"]["ProcessingInputs"][0]["S3Input"]["S3Uri"]
    assert json.loads(s3.get_object(Bucket=bucket, Key=config_uri.split("/", 3)[3])["Body"].read())["methods"]["shap"]

    # A second run updates the same pipeline instead of failing on the name.
    assert run_pipeline.main(args) == 0
    assert len(sagemaker.list_pipeline_executions(PipelineName="abalone-build")["PipelineExecutionSummaries"]) == 2


def test_missing_settings_and_bad_parameters_are_named(aws_env, bucket):
    with pytest.raises(SystemExit, match="SAGEMAKER_PIPELINE_ROLE_ARN"):
        run_pipeline.main(["run", "--bucket", bucket])
    with pytest.raises(SystemExit, match="not NAME=VALUE"):
        run_pipeline.main(["run", "--role-arn", ROLE, "--bucket", bucket, "-p", "MseThreshold"])
    with pytest.raises(SystemExit, match="unknown pipeline parameter.*Threshold"):
        run_pipeline.main(["run", "--role-arn", ROLE, "--bucket", bucket, "-p", "Threshold=3"])


def test_aws_errors_are_reported_not_raised(aws_env, bucket, capsys):
    # The artifact bucket does not exist (the input does): uploading the step code fails with AWS's error.
    data = ["-p", f"InputDataUrl=s3://{bucket}/data/abalone/abalone.csv"]
    assert run_pipeline.main(["run", "--role-arn", ROLE, "--bucket", "no-such-bucket", "--no-wait", *data]) == 2
    assert "NoSuchBucket" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("s3://no-such-bucket/data/abalone.csv", "bucket no-such-bucket does not exist"),
        ("s3://", "'s3://' names no bucket: give s3://BUCKET/KEY"),
        ("s3:///abalone.csv", "names no bucket"),
        ("s3://artifacts", "names no object"),
        ("s3://artifacts/data/missing.csv", "no object s3://artifacts/data/missing.csv and nothing under that prefix"),
        ("/tmp/abalone.csv", "is not an S3 URI"),
    ],
)
def test_a_bad_input_uri_stops_the_run_before_anything_is_uploaded_or_started(aws_env, bucket, uri, expected):
    name = f"bad-input-{abs(hash(uri))}"  # the moto server lives for the session: a pipeline of its own
    with pytest.raises(SystemExit, match=re.escape(expected)) as stopped:
        run_pipeline.main(
            ["run", "--role-arn", ROLE, "--bucket", bucket, "--pipeline-name", name, "-p", f"InputDataUrl={uri}"]
        )
    assert str(stopped.value).startswith("error: InputDataUrl ")
    with pytest.raises(ClientError, match="Could not find pipeline"):
        boto3.client("sagemaker").describe_pipeline(PipelineName=name)
    assert boto3.client("s3").list_objects_v2(Bucket=bucket, Prefix=f"{name}/")["KeyCount"] == 0


def test_the_input_check_is_three_calls_at_most_and_accepts_a_prefix(aws_env, bucket):
    s3 = boto3.client("s3")
    calls = []
    s3.meta.events.register("before-call.s3.*", lambda model, **_: calls.append(model.name))
    started = time.monotonic()

    s3_input.check(s3, f"s3://{bucket}/data/abalone/abalone.csv")  # the object
    s3_input.check(s3, f"s3://{bucket}/data/abalone/")  # a folder: SageMaker's S3Prefix input
    with pytest.raises(s3_input.InputError):
        s3_input.check(s3, "s3://no-such-bucket/x.csv")

    assert time.monotonic() - started < 10  # the defect waited 16 s for S3 retries; a shared machine jitters
    assert calls == ["HeadBucket", "HeadObject", "HeadBucket", "HeadObject", "ListObjectsV2", "HeadBucket"]


def test_losing_the_endpoint_while_following_is_one_line_not_a_traceback(monkeypatch, aws_env, capsys):
    # The stack dies after the execution started: the job says so in one line.
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://{host}:{port}")
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="artifacts")
    s3.put_object(Bucket="artifacts", Key="data/abalone/abalone.csv", Body=b"sex\n")
    real_follow = execution.follow

    def stack_dies_then_follow(*args, **kwargs):
        server.stop()
        return real_follow(*args, **kwargs)

    monkeypatch.setattr(execution, "follow", stack_dies_then_follow)

    assert run_pipeline.main(["run", "--role-arn", ROLE, "--bucket", "artifacts", "--poll-seconds", "0"]) == 2

    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "Traceback" not in error
    assert f'Could not connect to the endpoint URL: "http://{host}:{port}/"' in error
    assert "lost AWS while following arn:aws:sagemaker:" in error and "scripts/local-stack status" in error


ARN = "arn:aws:sagemaker:us-east-1:123456789012:pipeline/abalone-build/execution/abc"
T0 = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)


def at(seconds: int) -> datetime:
    return T0.replace(second=seconds)


def stub_poll(stubber: Stubber, status: str, steps: list[dict], failure: str = "") -> None:
    described = {"PipelineExecutionArn": ARN, "PipelineExecutionStatus": status}
    if failure:
        described["FailureReason"] = failure
    stubber.add_response("describe_pipeline_execution", described, {"PipelineExecutionArn": ARN})
    stubber.add_response(
        "list_pipeline_execution_steps",
        {"PipelineExecutionSteps": list(reversed(steps))},  # the API returns newest first unless asked
        {"PipelineExecutionArn": ARN, "SortOrder": "Ascending"},
    )


def test_follow_prints_each_change_and_summarises_a_failure():
    client = boto3.client("sagemaker", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y")
    with Stubber(client) as stubber:
        preprocess_running = {"StepName": "Preprocess", "StepStatus": "Executing", "StartTime": at(0)}
        preprocess_done = {**preprocess_running, "StepStatus": "Succeeded", "EndTime": at(20)}
        train_failed = {
            "StepName": "Train",
            "StepStatus": "Failed",
            "StartTime": at(21),
            "EndTime": at(30),
            "FailureReason": "AlgorithmError: num_round must be positive",
        }
        stub_poll(stubber, "Executing", [preprocess_running])
        stub_poll(stubber, "Executing", [preprocess_running])
        stub_poll(stubber, "Failed", [train_failed, preprocess_done], failure="Step failure: One or multiple steps")
        out = io.StringIO()
        result = execution.follow(client, ARN, poll_seconds=0, out=out)
        stubber.assert_no_pending_responses()

    lines = out.getvalue().splitlines()
    assert [line.split("] ")[1].split() for line in lines] == [
        ["Preprocess", "Executing"],
        ["Preprocess", "Succeeded"],
        ["Train", "Failed"],
    ]
    assert result.status == "Failed"
    text = execution.summary(result)
    assert "Step Train failed: AlgorithmError: num_round must be positive" in text
    assert "Preprocess" in text and "20.0s" in text


def test_a_fail_step_is_summarised_with_its_error_message():
    client = boto3.client("sagemaker", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y")
    message = "Model MSE 7.1 is above the threshold MseThreshold = 6.0"
    fail_step = {
        "StepName": "FailOnMse",
        "StepStatus": "Failed",
        "StartTime": at(40),
        "EndTime": at(41),
        "Metadata": {"Fail": {"ErrorMessage": message}},  # no FailureReason on the step itself
    }
    with Stubber(client) as stubber:
        stub_poll(stubber, "Failed", [fail_step], failure="Step failure: One or multiple steps failed.")
        result = execution.follow(client, ARN, poll_seconds=0, out=io.StringIO())
    assert f"Step FailOnMse failed: {message}" in execution.summary(result)


def test_summary_of_a_success_names_the_registered_package():
    package = "arn:aws:sagemaker:us-east-1:123456789012:model-package/abalone/3"
    result = execution.ExecutionResult(
        ARN,
        "Succeeded",
        "",
        [
            execution.StepRecord("Preprocess", "Succeeded", 0.0, 5.0, cache_hit=True),
            execution.StepRecord("RegisterModel", "Succeeded", 6.0, 7.0, metadata={"RegisterModel": {"Arn": package}}),
        ],
    )
    text = execution.summary(result)
    assert f"Registered model package: {package}" in text
    assert "cached" in text.splitlines()[1]


def test_pin_records_the_sha256_of_the_model_and_the_evaluation(aws_env, bucket):
    import hashlib

    from pipelines import pinning

    s3, sagemaker = boto3.client("s3"), boto3.client("sagemaker")
    s3.put_object(Bucket=bucket, Key="run/model.tar.gz", Body=b"model bytes")
    s3.put_object(Bucket=bucket, Key="run/evaluation.json", Body=b'{"regression_metrics": {}}')
    sagemaker.create_model_package_group(ModelPackageGroupName="pinned")
    arn = sagemaker.create_model_package(
        ModelPackageGroupName="pinned",
        InferenceSpecification={
            "Containers": [{"Image": "xgboost:1.7-1", "ModelDataUrl": f"s3://{bucket}/run/model.tar.gz"}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["text/csv"],
        },
        ModelMetrics={
            "ModelQuality": {
                "Statistics": {"ContentType": "application/json", "S3Uri": f"s3://{bucket}/run/evaluation.json"}
            }
        },
        CustomerMetadataProperties={"GitCommit": "0123abc"},
    )["ModelPackageArn"]

    digests = pinning.pin(sagemaker, s3, arn)

    expected = {
        "ModelDataSha256": hashlib.sha256(b"model bytes").hexdigest(),
        "EvaluationSha256": hashlib.sha256(b'{"regression_metrics": {}}').hexdigest(),
    }
    assert digests == expected
    metadata = sagemaker.describe_model_package(ModelPackageName=arn)["CustomerMetadataProperties"]
    assert metadata == {"GitCommit": "0123abc", **expected}
