"""Conformance of every emulated SageMaker operation, in the spirit of moto's own tests.

Each locally answered operation (`local_aws.sagemaker.responses.OPERATIONS`) is called on the wire and its
JSON answer validated against botocore's output shape (member names, types, enums, botocore's required
members). botocore marks few members required, so each operation also lists the members AWS's API
reference says the answer has in that state, and those are checked. Operations the gateway forwards to
moto are compared field by field with plain moto's answers. The AWS CLI is a third-party client here.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import urllib3

from local_aws.sagemaker import responses, shapes


def _helper(name: str):
    # tests/local_aws is no package (its name would shadow local_aws): load the helper by path.
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).parents[1] / f"{name}.py")
        sys.modules[name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules[name])
    return sys.modules[name]


sp = _helper("small_pipeline")
PIPELINE = "conformance"


def wire(url: str, operation: str, request: dict) -> tuple[int, dict]:
    answer = urllib3.request(
        "POST",
        url,
        body=json.dumps(request).encode(),
        headers={
            "X-Amz-Target": f"SageMaker.{operation}",
            "Content-Type": "application/x-amz-json-1.1",
            # moto finds the service and region in the credential scope; nobody checks the signature.
            "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/sagemaker/aws4_request, "
            "SignedHeaders=host, Signature=0",
        },
    )
    return answer.status, answer.json() if answer.data else {}


@pytest.fixture(scope="module")
def world(clients, local_stack, deploy, train, abalone):
    """One finished execution, its jobs, a registered package and an endpoint: something for every operation."""
    sp.create(clients.sagemaker, clients.s3, PIPELINE)
    arn = clients.sagemaker.start_pipeline_execution(
        PipelineName=PIPELINE, ClientRequestToken=sp.token(), PipelineExecutionDescription="conformance run"
    )["PipelineExecutionArn"]
    assert sp.wait(clients.sagemaker, arn)["PipelineExecutionStatus"] == "Succeeded"
    steps = sp.steps(clients.sagemaker, arn)
    features, rings = abalone
    return {
        "execution": arn,
        "training": steps["Train"]["Metadata"]["TrainingJob"]["Arn"].rsplit("/", 1)[1],
        "processing": steps["Preprocess"]["Metadata"]["ProcessingJob"]["Arn"].rsplit("/", 1)[1],
        "package": steps["Register"]["Metadata"]["RegisterModel"]["Arn"],
        "endpoint": deploy("conformance-endpoint", train(features[:200], rings[:200], rounds=3)),
        "gateway": local_stack.env["AWS_ENDPOINT_URL_SAGEMAKER"],
        "moto": local_stack.env["AWS_ENDPOINT_URL"],
    }


# operation -> (request from the world, members AWS's API reference returns in this state; "[]" = each item)
CASES = {
    "CreatePipeline": (
        lambda w: {
            "PipelineName": "conformance-created",
            "PipelineDefinition": sp.definition("conformance-created"),
            "RoleArn": sp.ROLE,
            "ClientRequestToken": sp.token(),
        },
        ["PipelineArn"],
    ),
    "UpdatePipeline": (
        lambda w: {"PipelineName": PIPELINE, "PipelineDescription": "updated by the conformance suite"},
        ["PipelineArn"],
    ),
    "StartPipelineExecution": (
        lambda w: {"PipelineName": PIPELINE, "ClientRequestToken": sp.token()},
        ["PipelineExecutionArn"],
    ),
    "DescribePipelineExecution": (
        lambda w: {"PipelineExecutionArn": w["execution"]},
        [
            "PipelineArn",
            "PipelineExecutionArn",
            "PipelineExecutionDisplayName",
            "PipelineExecutionStatus",
            "PipelineExecutionDescription",
            "PipelineExperimentConfig.ExperimentName",
            "PipelineExperimentConfig.TrialName",
            "CreationTime",
            "LastModifiedTime",
        ],
    ),
    "DescribePipelineDefinitionForExecution": (
        lambda w: {"PipelineExecutionArn": w["execution"]},
        ["PipelineDefinition", "CreationTime"],
    ),
    "ListPipelineExecutions": (
        lambda w: {"PipelineName": PIPELINE},
        [
            "PipelineExecutionSummaries[].PipelineExecutionArn",
            "PipelineExecutionSummaries[].StartTime",
            "PipelineExecutionSummaries[].PipelineExecutionStatus",
            "PipelineExecutionSummaries[].PipelineExecutionDisplayName",
        ],
    ),
    "ListPipelineExecutionSteps": (
        lambda w: {"PipelineExecutionArn": w["execution"]},
        [
            "PipelineExecutionSteps[].StepName",
            "PipelineExecutionSteps[].StartTime",
            "PipelineExecutionSteps[].EndTime",
            "PipelineExecutionSteps[].StepStatus",
            "PipelineExecutionSteps[].Metadata",
            "PipelineExecutionSteps[].AttemptCount",
        ],
    ),
    "ListPipelineParametersForExecution": (lambda w: {"PipelineExecutionArn": w["execution"]}, ["PipelineParameters"]),
    "UpdatePipelineExecution": (
        lambda w: {"PipelineExecutionArn": w["execution"], "PipelineExecutionDescription": "conformance run"},
        ["PipelineExecutionArn"],
    ),
    "DescribeTrainingJob": (
        lambda w: {"TrainingJobName": w["training"]},
        [
            "TrainingJobName",
            "TrainingJobArn",
            "ModelArtifacts.S3ModelArtifacts",
            "TrainingJobStatus",
            "SecondaryStatus",
            "HyperParameters",
            "AlgorithmSpecification.TrainingImage",
            "RoleArn",
            "InputDataConfig",
            "OutputDataConfig",
            "ResourceConfig",
            "StoppingCondition",
            "CreationTime",
            "TrainingStartTime",
            "TrainingEndTime",
            "LastModifiedTime",
            "SecondaryStatusTransitions",
            "FinalMetricDataList",
            "EnableNetworkIsolation",
            "TrainingTimeInSeconds",
            "BillableTimeInSeconds",
        ],
    ),
    "DescribeProcessingJob": (
        lambda w: {"ProcessingJobName": w["processing"]},
        [
            "ProcessingInputs",
            "ProcessingOutputConfig.Outputs",
            "ProcessingJobName",
            "ProcessingResources.ClusterConfig",
            "AppSpecification.ImageUri",
            "RoleArn",
            "ProcessingJobArn",
            "ProcessingJobStatus",
            "ProcessingEndTime",
            "ProcessingStartTime",
            "LastModifiedTime",
            "CreationTime",
        ],
    ),
    "ListTrainingJobs": (
        lambda w: {"NameContains": w["training"]},
        [
            f"TrainingJobSummaries[].{n}"
            for n in ("TrainingJobName", "TrainingJobArn", "CreationTime", "TrainingJobStatus")
        ],
    ),
    "ListProcessingJobs": (
        lambda w: {"NameContains": w["processing"]},
        [
            f"ProcessingJobSummaries[].{n}"
            for n in ("ProcessingJobName", "ProcessingJobArn", "CreationTime", "ProcessingJobStatus")
        ],
    ),
    "ListTransformJobs": (lambda w: {}, ["TransformJobSummaries"]),
    "DescribeEndpoint": (
        lambda w: {"EndpointName": w["endpoint"]},
        ["EndpointName", "EndpointArn", "EndpointConfigName", "EndpointStatus", "CreationTime", "LastModifiedTime"],
    ),
    "CreateModelPackage": (
        lambda w: {
            "ModelPackageGroupName": "abalone",
            "ClientToken": sp.token(),
            "InferenceSpecification": {
                "Containers": [{"Image": sp.XGBOOST_IMAGE, "ModelDataUrl": f"s3://{sp.BUCKET}/c/model.tar.gz"}],
                "SupportedContentTypes": ["text/csv"],
                "SupportedResponseMIMETypes": ["text/csv"],
            },
        },
        ["ModelPackageArn"],
    ),
    "UpdateModelPackage": (
        lambda w: {"ModelPackageArn": w["package"], "ApprovalDescription": "conformance"},
        ["ModelPackageArn"],
    ),
}
# Operations whose success needs a state the world does not have: their error answers are checked instead.
ERROR_CASES = {
    "StopPipelineExecution": (
        {"PipelineExecutionArn": "EXECUTION", "ClientRequestToken": "a" * 32},
        "ValidationException",
    ),
    "RetryPipelineExecution": (
        {"PipelineExecutionArn": "EXECUTION", "ClientRequestToken": "b" * 32},
        "ValidationException",
    ),
    "DescribeTransformJob": ({"TransformJobName": "no-such-transform-job"}, "ValidationException"),
}


def test_every_emulated_operation_has_a_conformance_case():
    assert sorted(CASES.keys() | ERROR_CASES.keys()) == sorted(responses.OPERATIONS)


def _values(document, path: str) -> list:
    head, _, rest = path.partition(".")
    if head.endswith("[]"):
        items = document.get(head[:-2], [])
        assert items, f"{head[:-2]} is empty: nothing to check"
        return [v for item in items for v in (_values(item, rest) if rest else [item])]
    if head not in document:
        return [KeyError(head)]
    return _values(document[head], rest) if rest else [document[head]]


@pytest.mark.parametrize("operation", sorted(CASES))
def test_answer_matches_the_output_shape_and_the_documented_members(operation, world):
    build, documented = CASES[operation]
    status, answer = wire(world["gateway"], operation, build(world))
    assert status == 200, answer
    assert shapes.answer_problems(operation, answer) == []
    missing = [path for path in documented if any(isinstance(v, KeyError) for v in _values(answer, path))]
    assert missing == []


@pytest.mark.parametrize("operation", sorted(ERROR_CASES))
def test_error_answers_are_aws_errors(operation, world):
    request, code = ERROR_CASES[operation]
    request = {k: (world["execution"] if v == "EXECUTION" else v) for k, v in request.items()}
    status, answer = wire(world["gateway"], operation, request)
    assert (status, answer["__type"]) == (400, code)
    assert answer["message"]


@pytest.mark.parametrize("operation", sorted(responses.OPERATIONS))
def test_malformed_input_is_a_validation_error_not_a_500(operation, world):
    status, answer = wire(world["gateway"], operation, {"NoSuchMember": 1})
    assert (status, answer["__type"]) == (400, "ValidationException")


FORWARDED = {
    "DescribePipeline": {"PipelineName": PIPELINE},
    "ListPipelines": {},
    "DescribeModelPackage": {"ModelPackageName": "PACKAGE"},
    "ListModelPackages": {"ModelPackageGroupName": "abalone"},
    "DescribeModelPackageGroup": {"ModelPackageGroupName": "abalone"},
    "DescribeEndpointConfig": {"EndpointConfigName": "conformance-endpoint-config"},
    "DescribeModel": {"ModelName": "conformance-endpoint-model"},
}


@pytest.mark.parametrize("operation", sorted(FORWARDED))
def test_forwarded_operations_answer_as_plain_moto(operation, world):
    assert shapes.operation_model(operation)  # a real SageMaker operation
    assert responses.OPERATIONS.get(operation) is None
    request = {k: (world["package"] if v == "PACKAGE" else v) for k, v in FORWARDED[operation].items()}
    via_gateway = wire(world["gateway"], operation, request)
    from_moto = wire(world["moto"], operation, request)
    assert via_gateway == from_moto


def test_the_aws_cli_reads_executions_and_jobs_and_gets_aws_errors(world, local_stack):
    environment = local_stack.environ()
    aws = [str(Path(sys.executable).with_name("aws")), "sagemaker", "--output", "json"]

    def cli(*arguments: str) -> subprocess.CompletedProcess:
        return subprocess.run([*aws, *arguments], env=environment, capture_output=True, text=True, timeout=60)

    described = cli("describe-pipeline-execution", "--pipeline-execution-arn", world["execution"])
    assert described.returncode == 0, described.stderr
    assert json.loads(described.stdout)["PipelineExecutionStatus"] == "Succeeded"
    job = cli("describe-training-job", "--training-job-name", world["training"])
    assert json.loads(job.stdout)["TrainingJobStatus"] == "Completed"
    # The CLI's paginator follows NextToken one item at a time and sees every step.
    steps = cli("list-pipeline-execution-steps", "--pipeline-execution-arn", world["execution"], "--page-size", "1")
    assert len(json.loads(steps.stdout)["PipelineExecutionSteps"]) == 3
    malformed = cli("describe-pipeline-execution", "--pipeline-execution-arn", "not-an-arn")
    assert malformed.returncode != 0 and "(ValidationException)" in malformed.stderr, malformed.stderr
