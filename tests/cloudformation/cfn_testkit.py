"""Helpers shared by the template's Lambda tests: events, a Lambda context, moto resources."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import boto3

REGION = "us-east-1"
PERSONAL_TOKEN = "glpat-PERSONALsecret0123456789"  # the seeding token: must never reach a log


@dataclass
class LambdaContext:
    remaining_ms: int = 300_000
    function_name: str = "test-function"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:test-function"
    aws_request_id: str = "request-1"
    log_stream_name: str = "2026/11/23/[$LATEST]test"

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


CFN_RESPONSE_URL = "https://cloudformation-custom-resource-response-useast1.s3.amazonaws.com/arn%3Aaws/response"


def custom_resource_event(request_type: str, properties: dict, physical_id: str | None = None, old: dict | None = None):
    event = {
        "RequestType": request_type,
        "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:seed",
        "ResponseURL": CFN_RESPONSE_URL + "?X-Amz-Signature=presigned",
        "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/abalone/guid",
        "RequestId": str(uuid.uuid4()),
        "LogicalResourceId": "SeedRepositories",
        "ResourceType": "Custom::GitLabSeed",
        "ResourceProperties": properties,
    }
    if physical_id:
        event["PhysicalResourceId"] = physical_id
    if request_type == "Update":  # CloudFormation always sends the previous properties with an Update
        event["OldResourceProperties"] = properties if old is None else old
    return event


def approval_event(status: str = "Approved", group: str = "abalone", event_id: str | None = None, **overrides) -> dict:
    """A "SageMaker Model Package State Change" event as EventBridge delivers it."""
    arn = f"arn:aws:sagemaker:{REGION}:123456789012:model-package/{group}/3"
    event = {
        "version": "0",
        "id": event_id or str(uuid.uuid4()),
        "detail-type": "SageMaker Model Package State Change",
        "source": "aws.sagemaker",
        "account": "123456789012",
        "time": "2026-11-23T10:00:00Z",
        "region": REGION,
        "resources": [arn],
        "detail": {
            "ModelPackageGroupName": group,
            "ModelPackageVersion": 3,
            "ModelPackageArn": arn,
            "ModelApprovalStatus": status,
            "CreationTime": "2026-11-23T09:00:00Z",
            "UpdatedModelPackageFields": ["ModelApprovalStatus"],
        },
    }
    event.update(overrides)
    return event


def create_secret(name: str, value: str) -> str:
    return boto3.client("secretsmanager", region_name=REGION).create_secret(Name=name, SecretString=value)["ARN"]


def create_idempotency_table(name: str = "idempotency") -> str:
    boto3.client("dynamodb", region_name=REGION).create_table(
        TableName=name,
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return name
