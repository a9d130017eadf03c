"""The SageMaker API answers as AWS does: each test is one finding of the fidelity issue, fixed.

A small real pipeline (tests/local_aws/small_pipeline.py) runs on the session's stack.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from local_aws.sagemaker.executor import faults


def _helper(name: str):
    # tests/local_aws is no package (its name would shadow local_aws): load the helper by path.
    import importlib.util
    import sys

    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(f"{name}.py"))
        sys.modules[name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules[name])
    return sys.modules[name]


sp = _helper("small_pipeline")


def raw_call(local_stack, operation: str, request: dict):
    """A request as a client without botocore's checks sends it (boto3 refuses some before sending)."""
    import urllib3

    return urllib3.request(
        "POST",
        local_stack.env["AWS_ENDPOINT_URL_SAGEMAKER"],
        body=json.dumps(request).encode(),
        headers={"X-Amz-Target": f"SageMaker.{operation}", "Content-Type": "application/x-amz-json-1.1"},
    )


def error_of(call, **kwargs) -> tuple[str, int]:
    with pytest.raises(ClientError) as raised:
        call(**kwargs)
    return raised.value.response["Error"]["Code"], raised.value.response["ResponseMetadata"]["HTTPStatusCode"]


@pytest.fixture(scope="module")
def pipeline(clients):
    return sp.create(clients.sagemaker, clients.s3, "api-fidelity")


@pytest.fixture(scope="module")
def first_run(clients, pipeline):
    arn = clients.sagemaker.start_pipeline_execution(
        PipelineName=pipeline,
        ClientRequestToken=sp.token(),
        PipelineExecutionDescription="the first run",
        ParallelismConfiguration={"MaxParallelExecutionSteps": 2},
    )["PipelineExecutionArn"]
    execution = sp.wait(clients.sagemaker, arn)
    assert execution["PipelineExecutionStatus"] == "Succeeded", execution
    return execution


def test_step_job_arns_point_at_jobs_with_awss_fields(clients, first_run):
    steps = sp.steps(clients.sagemaker, first_run["PipelineExecutionArn"])
    training_arn = steps["Train"]["Metadata"]["TrainingJob"]["Arn"]
    processing_arn = steps["Preprocess"]["Metadata"]["ProcessingJob"]["Arn"]

    training = clients.sagemaker.describe_training_job(TrainingJobName=training_arn.rsplit("/", 1)[1])
    assert training["TrainingJobArn"] == training_arn
    assert training["TrainingJobStatus"] == "Completed" and training["SecondaryStatus"] == "Completed"
    assert training["ModelArtifacts"]["S3ModelArtifacts"].endswith("/output/model.tar.gz")
    clients.s3.head_object(Bucket=sp.BUCKET, Key=training["ModelArtifacts"]["S3ModelArtifacts"].split("/", 3)[3])
    assert training["TrainingStartTime"] <= training["TrainingEndTime"]
    assert training["HyperParameters"]["num_round"] == "5"
    execution_id = first_run["PipelineExecutionArn"].rsplit("/", 1)[1]
    assert training["ExperimentConfig"] == {
        "ExperimentName": "api-fidelity",
        "TrialName": execution_id,
        "TrialComponentDisplayName": "Train",
    }
    processing = clients.sagemaker.describe_processing_job(ProcessingJobName=processing_arn.rsplit("/", 1)[1])
    assert processing["ProcessingJobStatus"] == "Completed"
    output = processing["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"]
    assert output.endswith(f"/out/{execution_id}")  # resolved, not the definition's expression

    listed = clients.sagemaker.list_training_jobs(NameContains=execution_id)["TrainingJobSummaries"]
    assert [j["TrainingJobArn"] for j in listed] == [training_arn]
    listed = clients.sagemaker.list_processing_jobs(NameContains=execution_id)["ProcessingJobSummaries"]
    assert [j["ProcessingJobArn"] for j in listed] == [processing_arn]
    assert error_of(clients.sagemaker.describe_training_job, TrainingJobName="no-such-job")[0] == "ValidationException"


def test_a_failed_job_is_described_with_its_failure_reason(clients):
    name = sp.create(clients.sagemaker, clients.s3, "api-fidelity-failing")
    clients.s3.delete_object(Bucket=sp.BUCKET, Key=f"{name}/code/copy.py")
    clients.s3.put_object(Bucket=sp.BUCKET, Key=f"{name}/code/copy.py", Body=b"raise SystemExit('no data today')")
    arn = clients.sagemaker.start_pipeline_execution(PipelineName=name, ClientRequestToken=sp.token())[
        "PipelineExecutionArn"
    ]
    assert sp.wait(clients.sagemaker, arn)["PipelineExecutionStatus"] == "Failed"
    step = sp.steps(clients.sagemaker, arn)["Preprocess"]
    job = clients.sagemaker.describe_processing_job(
        ProcessingJobName=step["Metadata"]["ProcessingJob"]["Arn"].rsplit("/", 1)[1]
    )
    assert job["ProcessingJobStatus"] == "Failed"
    assert "no data today" in job["FailureReason"]


@pytest.fixture
def sdk_environment(local_stack, monkeypatch):
    """The SDK finds the stack as user code does: through the environment `local-stack env` prints."""
    for name, value in local_stack.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SAGEMAKER_VALIDATE_ROLE", "false")
    return local_stack.env


def test_sdk_v3_pipeline_execution_result_describes_the_training_job(clients, first_run, sdk_environment):
    from sagemaker.core.helper.session_helper import Session
    from sagemaker.mlops.workflow.pipeline import PipelineExecution

    execution = PipelineExecution(
        arn=first_run["PipelineExecutionArn"], sagemaker_session=Session(sagemaker_client=clients.sagemaker)
    )
    # result() waits, lists the steps and describes the step's training job (before the fix: ClientError
    # "Could not find training job"). Then it reads AlgorithmSpecification.ContainerEntrypoint, which a
    # built-in algorithm's job has on AWS neither: SDK 3.27's own KeyError for a step that is no @step function.
    with pytest.raises(KeyError, match="ContainerEntrypoint"):
        execution.result("Train")


def test_definition_for_execution_is_the_one_it_ran(clients, pipeline, first_run):
    ran = clients.sagemaker.describe_pipeline_definition_for_execution(
        PipelineExecutionArn=first_run["PipelineExecutionArn"]
    )
    assert json.loads(ran["PipelineDefinition"]) == json.loads(sp.definition(pipeline))
    assert ran["CreationTime"] == first_run["CreationTime"]


def test_description_and_parallelism_are_kept_and_checked(clients, pipeline, first_run, local_stack):
    assert first_run["PipelineExecutionDescription"] == "the first run"
    assert first_run["ParallelismConfiguration"] == {"MaxParallelExecutionSteps": 2}
    request = {
        "PipelineName": pipeline,
        "ClientRequestToken": sp.token(),
        "ParallelismConfiguration": {"MaxParallelExecutionSteps": 0},
    }
    answer = raw_call(local_stack, "StartPipelineExecution", request)
    assert (answer.status, answer.json()["__type"]) == (400, "ValidationException")
    assert "'parallelismConfiguration.maxParallelExecutionSteps' failed to satisfy" in answer.json()["message"]
    clients.sagemaker.update_pipeline_execution(
        PipelineExecutionArn=first_run["PipelineExecutionArn"],
        PipelineExecutionDescription="renamed",
        PipelineExecutionDisplayName="renamed-run",
    )
    now = clients.sagemaker.describe_pipeline_execution(PipelineExecutionArn=first_run["PipelineExecutionArn"])
    assert (now["PipelineExecutionDescription"], now["PipelineExecutionDisplayName"]) == ("renamed", "renamed-run")
    assert now["PipelineExecutionStatus"] == "Succeeded"


def test_the_same_client_request_token_starts_one_execution(clients):
    name = sp.create(clients.sagemaker, clients.s3, "api-fidelity-token")
    token = sp.token()
    first = clients.sagemaker.start_pipeline_execution(PipelineName=name, ClientRequestToken=token)
    again = clients.sagemaker.start_pipeline_execution(PipelineName=name, ClientRequestToken=token)
    assert first["PipelineExecutionArn"] == again["PipelineExecutionArn"]
    sp.wait(clients.sagemaker, first["PipelineExecutionArn"])
    assert len(clients.sagemaker.list_pipeline_executions(PipelineName=name)["PipelineExecutionSummaries"]) == 1


def test_the_same_client_token_registers_one_version(clients):
    clients.sagemaker.create_model_package_group(ModelPackageGroupName="api-fidelity-token-group")
    request = {
        "ModelPackageGroupName": "api-fidelity-token-group",
        "ClientToken": sp.token(),
        "InferenceSpecification": {
            "Containers": [{"Image": sp.XGBOOST_IMAGE, "ModelDataUrl": f"s3://{sp.BUCKET}/x/model.tar.gz"}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["text/csv"],
        },
    }
    first = clients.sagemaker.create_model_package(**request)
    again = clients.sagemaker.create_model_package(**request)
    assert first["ModelPackageArn"] == again["ModelPackageArn"]
    listed = clients.sagemaker.list_model_packages(ModelPackageGroupName="api-fidelity-token-group")
    assert len(listed["ModelPackageSummaryList"]) == 1
    package = clients.sagemaker.describe_model_package(ModelPackageName=first["ModelPackageArn"])
    assert package["ModelApprovalStatus"] == "PendingManualApproval"  # AWS's default for a version


def test_pagination_time_filters_and_bad_tokens(clients):
    name = sp.create(clients.sagemaker, clients.s3, "api-fidelity-pages")
    arns, boundary = [], None
    for number in range(3):
        if number == 1:  # clients send timestamps in whole seconds: a boundary more than a second from each run
            time.sleep(1.1)
            boundary = dt.datetime.now(dt.UTC)
            time.sleep(1.1)
        arn = clients.sagemaker.start_pipeline_execution(PipelineName=name, ClientRequestToken=sp.token())
        arns.append(arn["PipelineExecutionArn"])
        sp.wait(clients.sagemaker, arns[-1])
    pages, token = [], None
    while True:
        extra = {"NextToken": token} if token else {}
        page = clients.sagemaker.list_pipeline_executions(PipelineName=name, MaxResults=2, **extra)
        pages.append([s["PipelineExecutionArn"] for s in page["PipelineExecutionSummaries"]])
        token = page.get("NextToken")
        if not token:
            break
    assert pages == [arns[::-1][:2], arns[::-1][2:]]  # newest first, two to a page
    after = clients.sagemaker.list_pipeline_executions(PipelineName=name, CreatedAfter=boundary, SortOrder="Ascending")
    assert [s["PipelineExecutionArn"] for s in after["PipelineExecutionSummaries"]] == arns[1:]
    before = clients.sagemaker.list_pipeline_executions(PipelineName=name, CreatedBefore=boundary)
    assert [s["PipelineExecutionArn"] for s in before["PipelineExecutionSummaries"]] == arns[:1]
    for call, arguments in (
        (clients.sagemaker.list_pipeline_executions, {"PipelineName": name}),
        (clients.sagemaker.list_pipeline_execution_steps, {"PipelineExecutionArn": arns[0]}),
        (clients.sagemaker.list_training_jobs, {}),
    ):
        assert error_of(call, NextToken="bogus", **arguments) == ("ValidationException", 400)
    steps = clients.sagemaker.list_pipeline_execution_steps(PipelineExecutionArn=arns[0], MaxResults=1)
    assert len(steps["PipelineExecutionSteps"]) == 1 and steps["NextToken"]


def test_malformed_arns_and_unknown_executions_are_validation_errors(clients, local_stack):
    for arn in ("not-an-arn", "arn:aws:sagemaker:us-east-1:123456789012:pipeline/x"):
        assert error_of(clients.sagemaker.describe_pipeline_execution, PipelineExecutionArn=arn) == (
            "ValidationException",
            400,
        )
    missing = "arn:aws:sagemaker:us-east-1:123456789012:pipeline/api-fidelity/execution/nothere00000"
    for call in (
        clients.sagemaker.describe_pipeline_execution,
        clients.sagemaker.update_pipeline_execution,
        clients.sagemaker.describe_pipeline_definition_for_execution,
    ):
        assert error_of(call, PipelineExecutionArn=missing)[0] == "ResourceNotFound"
    assert (
        error_of(
            clients.sagemaker.retry_pipeline_execution, PipelineExecutionArn=missing, ClientRequestToken=sp.token()
        )[0]
        == "ResourceNotFound"
    )
    # A raw client that leaves out a required member gets AWS's message, not a handler's KeyError.
    answer = raw_call(local_stack, "RetryPipelineExecution", {})
    assert answer.status == 400
    assert answer.json()["__type"] == "ValidationException"
    assert "'pipelineExecutionArn' failed to satisfy constraint: Member must not be null" in answer.json()["message"]


def test_a_pipeline_created_from_an_s3_definition_runs(clients):
    name = "api-fidelity-s3"
    sp.upload_inputs(clients.s3, name)
    clients.s3.put_object(Bucket=sp.BUCKET, Key=f"{name}/definition.json", Body=sp.definition(name).encode())
    clients.sagemaker.create_pipeline(
        PipelineName=name,
        PipelineDefinitionS3Location={"Bucket": sp.BUCKET, "ObjectKey": f"{name}/definition.json"},
        RoleArn=sp.ROLE,
        ClientRequestToken=sp.token(),
    )
    stored = clients.sagemaker.describe_pipeline(PipelineName=name)["PipelineDefinition"]
    assert json.loads(stored) == json.loads(sp.definition(name))
    arn = clients.sagemaker.start_pipeline_execution(PipelineName=name, ClientRequestToken=sp.token())
    assert sp.wait(clients.sagemaker, arn["PipelineExecutionArn"])["PipelineExecutionStatus"] == "Succeeded"
    code = error_of(
        clients.sagemaker.create_pipeline,
        PipelineName=f"{name}-missing",
        PipelineDefinitionS3Location={"Bucket": sp.BUCKET, "ObjectKey": "no/such/definition.json"},
        RoleArn=sp.ROLE,
        ClientRequestToken=sp.token(),
    )
    assert code == ("ValidationException", 400)


def test_selective_execution_runs_the_selected_steps_on_the_references_outputs(clients, pipeline, first_run):
    reference = first_run["PipelineExecutionArn"]
    arn = clients.sagemaker.start_pipeline_execution(
        PipelineName=pipeline,
        ClientRequestToken=sp.token(),
        SelectiveExecutionConfig={"SourcePipelineExecutionArn": reference, "SelectedSteps": [{"StepName": "Train"}]},
    )["PipelineExecutionArn"]
    execution = sp.wait(clients.sagemaker, arn)
    assert execution["PipelineExecutionStatus"] == "Succeeded"
    assert execution["SelectiveExecutionConfig"]["SourcePipelineExecutionArn"] == reference
    steps = sp.steps(clients.sagemaker, arn)
    assert set(steps) == {"Preprocess", "Train"}  # Register depends on Train but was not selected
    assert steps["Preprocess"]["SelectiveExecutionResult"] == {"SourcePipelineExecutionArn": reference}
    training = clients.sagemaker.describe_training_job(
        TrainingJobName=steps["Train"]["Metadata"]["TrainingJob"]["Arn"].rsplit("/", 1)[1]
    )
    channel = training["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"]
    assert channel.endswith(reference.rsplit("/", 1)[1])  # the reference's Preprocess output
    code = error_of(
        clients.sagemaker.start_pipeline_execution,
        PipelineName=pipeline,
        ClientRequestToken=sp.token(),
        SelectiveExecutionConfig={"SourcePipelineExecutionArn": reference, "SelectedSteps": [{"StepName": "Nope"}]},
    )
    assert code == ("ValidationException", 400)


def test_retry_policies_retry_the_error_types_sagemaker_retries(clients, local_stack):
    policy = {"ExceptionType": ["SageMaker.CAPACITY_ERROR"], "IntervalSeconds": 1, "BackoffRate": 1.0, "MaxAttempts": 2}
    name = sp.create(clients.sagemaker, clients.s3, "api-fidelity-retry", retry_policies=[policy])
    faults.inject(local_stack.state_dir, "Preprocess", ["SageMaker.CAPACITY_ERROR"] * 2)
    arn = clients.sagemaker.start_pipeline_execution(PipelineName=name, ClientRequestToken=sp.token())
    assert sp.wait(clients.sagemaker, arn["PipelineExecutionArn"])["PipelineExecutionStatus"] == "Succeeded"
    assert sp.steps(clients.sagemaker, arn["PipelineExecutionArn"])["Preprocess"]["AttemptCount"] == 3

    # Past MaxAttempts, or an error type no policy names, the step fails.
    faults.inject(local_stack.state_dir, "Preprocess", ["SageMaker.CAPACITY_ERROR"] * 3)
    arn = clients.sagemaker.start_pipeline_execution(PipelineName=name, ClientRequestToken=sp.token())
    assert sp.wait(clients.sagemaker, arn["PipelineExecutionArn"])["PipelineExecutionStatus"] == "Failed"
    step = sp.steps(clients.sagemaker, arn["PipelineExecutionArn"])["Preprocess"]
    assert step["AttemptCount"] == 3 and step["FailureReason"].startswith("CapacityError")
    faults.inject(local_stack.state_dir, "Preprocess", ["Step.THROTTLING"])
    arn = clients.sagemaker.start_pipeline_execution(PipelineName=name, ClientRequestToken=sp.token())
    assert sp.wait(clients.sagemaker, arn["PipelineExecutionArn"])["PipelineExecutionStatus"] == "Failed"
    assert sp.steps(clients.sagemaker, arn["PipelineExecutionArn"])["Preprocess"]["AttemptCount"] == 1


def test_retry_pipeline_execution_reruns_from_the_failed_step(clients, local_stack):
    name = sp.create(clients.sagemaker, clients.s3, "api-fidelity-retry-execution")
    faults.inject(local_stack.state_dir, "Train", ["SageMaker.JOB_INTERNAL_ERROR"])
    arn = clients.sagemaker.start_pipeline_execution(PipelineName=name, ClientRequestToken=sp.token())[
        "PipelineExecutionArn"
    ]
    assert sp.wait(clients.sagemaker, arn)["PipelineExecutionStatus"] == "Failed"
    preprocess = sp.steps(clients.sagemaker, arn)["Preprocess"]
    token = sp.token()
    retried = clients.sagemaker.retry_pipeline_execution(PipelineExecutionArn=arn, ClientRequestToken=token)
    again = clients.sagemaker.retry_pipeline_execution(PipelineExecutionArn=arn, ClientRequestToken=token)
    assert retried["PipelineExecutionArn"] == again["PipelineExecutionArn"] == arn  # same token: one retry
    execution = sp.wait(clients.sagemaker, arn)
    assert execution["PipelineExecutionStatus"] == "Succeeded" and "FailureReason" not in execution
    steps = sp.steps(clients.sagemaker, arn)
    assert steps["Preprocess"] == preprocess  # kept, not run again
    assert steps["Train"]["StepStatus"] == steps["Register"]["StepStatus"] == "Succeeded"
    code = error_of(clients.sagemaker.retry_pipeline_execution, PipelineExecutionArn=arn, ClientRequestToken=sp.token())
    assert code == ("ValidationException", 400)  # a Succeeded execution cannot be retried


def test_registered_packages_name_their_execution_and_their_creation_is_an_event(clients, first_run, local_stack):
    steps = sp.steps(clients.sagemaker, first_run["PipelineExecutionArn"])
    package_arn = steps["Register"]["Metadata"]["RegisterModel"]["Arn"]
    package = clients.sagemaker.describe_model_package(ModelPackageName=package_arn)
    assert package["MetadataProperties"]["GeneratedBy"] == first_run["PipelineExecutionArn"]
    events = [json.loads(line) for line in (local_stack.state_dir / "events.jsonl").read_text().splitlines()]
    created = [e for e in events if e["resources"] == [package_arn]]
    assert len(created) == 1
    assert created[0]["detail"]["ModelApprovalStatus"] == "PendingManualApproval"
    assert "UpdatedModelPackageFields" not in created[0]["detail"]
    # The project's approval rule (Approved/Rejected only) does not match it: no deploy starts.
    pattern = approval_rule_pattern(group=package["ModelPackageGroupName"])
    events_client = local_stack.client("events")
    assert not events_client.test_event_pattern(EventPattern=json.dumps(pattern), Event=json.dumps(created[0]))[
        "Result"
    ]
    approved = {**created[0], "detail": {**created[0]["detail"], "ModelApprovalStatus": "Approved"}}
    assert events_client.test_event_pattern(EventPattern=json.dumps(pattern), Event=json.dumps(approved))["Result"]


def approval_rule_pattern(group: str) -> dict:
    """The EventPattern of the project template's approval rule, its !Ref resolved to `group`."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: group if suffix == "Ref" else None)
    template = yaml.load((sp.REPO_ROOT / "cloudformation" / "project.yml").read_text(), Loader=Loader)  # noqa: S506 - a SafeLoader
    rules = [r for r in template["Resources"].values() if r["Type"] == "AWS::Events::Rule"]
    patterns = [r["Properties"]["EventPattern"] for r in rules if "EventPattern" in r["Properties"]]
    return next(p for p in patterns if p.get("detail-type") == ["SageMaker Model Package State Change"])


def test_sdk_v3_endpoint_get_and_invoke_and_libsvm(clients, deploy, train, abalone, sdk_environment):
    import boto3

    features, rings = abalone
    name = deploy("api-fidelity-endpoint", train(features[:500], rings[:500], rounds=5))
    from sagemaker.core.resources import Endpoint

    session = boto3.session.Session(region_name=sdk_environment["AWS_REGION"])
    endpoint = Endpoint.get(endpoint_name=name, session=session, region=sdk_environment["AWS_REGION"])
    assert endpoint.endpoint_name == name and endpoint.endpoint_status == "InService"
    rows = features[:3]
    csv = "\n".join(",".join(str(float(v)) for v in row) for row in rows).encode()
    libsvm = "\n".join(" ".join(f"{i}:{float(v)}" for i, v in enumerate(row)) for row in rows).encode()
    by_csv = clients.runtime.invoke_endpoint(EndpointName=name, ContentType="text/csv", Body=csv)["Body"].read()
    by_libsvm = clients.runtime.invoke_endpoint(EndpointName=name, ContentType="text/libsvm", Body=libsvm)
    assert by_libsvm["Body"].read() == by_csv
    invoked = endpoint.invoke(body=csv, content_type="text/csv")
    assert invoked.body.read() == by_csv
