"""The ground-truth trigger of batch-schedule-template.yml: its S3 rule, decided by EventBridge's own matcher on
S3's "Object Created" event, and its role, which may start the stage's model-quality pipeline and nothing else."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from local_aws.cloudformation.template import load, resolve
from local_aws.events.responses import matches

TEMPLATE = Path(__file__).resolve().parents[1] / "model-deploy" / "batch-schedule-template.yml"
BUCKET = "sagemaker-local-artifacts"
LABELS = "batch-inference/abalone/staging/ground-truth/oi6h7naga9ti/labels.csv"
REFERENCES = {
    "ProjectName": "abalone",
    "StageName": "staging",
    "InputBucket": BUCKET,
    "AWS::Partition": "aws",
    "AWS::Region": "us-east-1",
    "AWS::AccountId": "123456789012",
    "QualityEventsRole.Arn": "arn:aws:iam::123456789012:role/quality-events",
    "PermissionsBoundaryArn": "arn:aws:iam::123456789012:policy/abalone-batch-staging-boundary",
}
# The event S3 sends to EventBridge for a PutObject ("Amazon S3 event notifications with EventBridge", detail v0).
OBJECT_CREATED = {
    "version": "0",
    "id": "17793124-05d4-b198-2fde-7ededc63b103",
    "detail-type": "Object Created",
    "source": "aws.s3",
    "account": "123456789012",
    "time": "2026-12-02T01:00:00Z",
    "region": "us-east-1",
    "resources": [f"arn:aws:s3:::{BUCKET}"],
    "detail": {
        "version": "0",
        "bucket": {"name": BUCKET},
        "object": {"key": "", "size": 5, "etag": "b1946ac92492d2347c6235b4d2611184", "sequencer": "00617F08299329D189"},
        "request-id": "N4N7GDK58NMKJ12R",
        "requester": "123456789012",
        "source-ip-address": "1.2.3.4",
        "reason": "PutObject",
    },
}


@pytest.fixture(scope="module")
def resources() -> dict:
    return load(TEMPLATE)["Resources"]


def event(key: str, bucket: str = BUCKET, detail_type: str = "Object Created") -> dict:
    sample = copy.deepcopy(OBJECT_CREATED)
    sample["detail"]["object"]["key"], sample["detail"]["bucket"]["name"] = key, bucket
    sample["detail-type"] = detail_type
    return sample


@pytest.mark.parametrize(
    ("key", "bucket", "detail_type", "started"),
    [
        (LABELS, BUCKET, "Object Created", True),
        ("batch-inference/abalone/staging/ground-truth/oi6h7naga9ti/part-2.csv", BUCKET, "Object Created", True),
        ("batch-inference/abalone/staging/ground-truth/labels.csv", BUCKET, "Object Created", False),  # no run folder
        ("batch-inference/abalone/staging/ground-truth/oi6h7naga9ti/notes.txt", BUCKET, "Object Created", False),
        ("batch-inference/abalone/prod/ground-truth/oi6h7naga9ti/labels.csv", BUCKET, "Object Created", False),
        ("batch-inference/abalone/staging/input/day-1/batch.csv", BUCKET, "Object Created", False),
        (LABELS, "other-bucket", "Object Created", False),
        (LABELS, BUCKET, "Object Deleted", False),
    ],
)
def test_the_ground_truth_rule_fires_for_a_label_file_of_a_batch_run_only(resources, key, bucket, detail_type, started):
    pattern = resolve(resources["GroundTruthRule"]["Properties"]["EventPattern"], REFERENCES)
    assert matches(json.dumps(pattern), event(key, bucket, detail_type)) is started


def test_the_ground_truth_rule_starts_the_model_quality_pipeline_over_the_ground_truth_prefix(resources):
    (target,) = resolve(resources["GroundTruthRule"]["Properties"]["Targets"], REFERENCES)
    assert target["Arn"] == "arn:aws:sagemaker:us-east-1:123456789012:pipeline/abalone-model-quality-staging"
    assert target["RoleArn"] == REFERENCES["QualityEventsRole.Arn"]
    assert target["SageMakerPipelineParameters"]["PipelineParameterList"] == [
        {"Name": "GroundTruthUrl", "Value": f"s3://{BUCKET}/batch-inference/abalone/staging/ground-truth/"}
    ]


def test_the_quality_role_may_only_start_that_pipeline_and_only_eventbridge_of_this_account_may_assume_it(resources):
    role = resolve(resources["QualityEventsRole"]["Properties"], REFERENCES)
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "events.amazonaws.com"} and trust["Action"] == "sts:AssumeRole"
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"}}
    (statement,) = [s for policy in role["Policies"] for s in policy["PolicyDocument"]["Statement"]]
    assert statement == {
        "Effect": "Allow",
        "Action": "sagemaker:StartPipelineExecution",
        "Resource": "arn:aws:sagemaker:us-east-1:123456789012:pipeline/abalone-model-quality-staging",
    }
    # The rule's role is its own: the batch pipeline's roles cannot start the quality pipeline, nor this one theirs.
    others = [resolve(resources[name]["Properties"], {**REFERENCES, "PipelineName": "x"}) for name in ("EventsRole",)]
    assert all("model-quality" not in json.dumps(other["Policies"]) for other in others)
