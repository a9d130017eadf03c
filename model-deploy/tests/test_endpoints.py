"""What an endpoint serves: a missing endpoint is named as missing, other refusals keep AWS's own words."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from deploy import endpoints
from deploy.errors import DeployError


@pytest.fixture
def sagemaker():
    client = boto3.client(
        "sagemaker",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # noqa: S106
    )
    with Stubber(client) as stubber:
        yield client, stubber


def test_a_missing_endpoint_is_reported_as_not_found(sagemaker):
    client, stubber = sagemaker
    stubber.add_client_error("describe_endpoint", "ValidationException", 'Could not find endpoint "abalone-staging".')
    with pytest.raises(DeployError, match="endpoint abalone-staging not found: Could not find endpoint"):
        endpoints.describe(client, "abalone-staging")


def test_access_denied_is_not_mistaken_for_a_missing_endpoint(sagemaker):
    client, stubber = sagemaker
    stubber.add_client_error("describe_endpoint", "AccessDeniedException", "not authorized to perform DescribeEndpoint")
    with pytest.raises(ClientError, match="not authorized"):
        endpoints.describe(client, "abalone-staging")
