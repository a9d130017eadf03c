"""The gateway forwards to moto what it does not answer itself, and answers registered operations locally."""

from __future__ import annotations

import datetime as dt
import json
import socket
import urllib.request
from urllib.parse import urlsplit

import pytest
from botocore.exceptions import ClientError


def test_sagemaker_calls_without_a_local_handler_reach_moto(clients):
    clients.sagemaker.create_model_package_group(
        ModelPackageGroupName="forwarded-group", ModelPackageGroupDescription="created through the gateway"
    )

    stored = clients.moto_sagemaker.describe_model_package_group(ModelPackageGroupName="forwarded-group")
    assert stored["ModelPackageGroupDescription"] == "created through the gateway"
    # moto's errors come back unchanged too
    with pytest.raises(ClientError) as via_gateway:
        clients.sagemaker.describe_model_package_group(ModelPackageGroupName="no-such-group")
    with pytest.raises(ClientError) as from_moto:
        clients.moto_sagemaker.describe_model_package_group(ModelPackageGroupName="no-such-group")
    assert via_gateway.value.response["Error"] == from_moto.value.response["Error"]
    assert via_gateway.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_s3_through_the_gateway_is_moto_s3(local_stack):
    import boto3

    env = local_stack.env
    via_gateway = boto3.client(
        "s3",
        endpoint_url=env["AWS_ENDPOINT_URL_SAGEMAKER"],
        region_name=env["AWS_REGION"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
    )
    direct = local_stack.client("s3")
    body = bytes(range(256)) * 64  # binary, 16 KiB

    via_gateway.put_object(Bucket="sagemaker-local-artifacts", Key="forwarded/blob.bin", Body=body)

    assert direct.get_object(Bucket="sagemaker-local-artifacts", Key="forwarded/blob.bin")["Body"].read() == body
    assert via_gateway.get_object(Bucket="sagemaker-local-artifacts", Key="forwarded/blob.bin")["Body"].read() == body
    head = via_gateway.head_object(Bucket="sagemaker-local-artifacts", Key="forwarded/blob.bin")
    assert head["ContentLength"] == len(body)
    listed = via_gateway.list_objects_v2(Bucket="sagemaker-local-artifacts", Prefix="forwarded/")
    assert [item["Key"] for item in listed["Contents"]] == ["forwarded/blob.bin"]
    with pytest.raises(ClientError) as raised:
        via_gateway.head_object(Bucket="sagemaker-local-artifacts", Key="forwarded/missing")
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_a_registered_operation_is_answered_locally(clients, local_stack):
    answer = clients.sagemaker.describe_domain(DomainId="d-local")

    assert answer["DomainId"] == "d-local"
    assert answer["DomainName"] == "answered locally in us-east-1 for account 123456789012"
    assert answer["HomeEfsFileSystemId"] == local_stack.env["AWS_ENDPOINT_URL"]  # the context's moto URL
    assert answer["CreationTime"] == dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)


def test_a_local_api_error_reaches_the_client_as_an_aws_error(clients):
    with pytest.raises(ClientError) as raised:
        clients.sagemaker.describe_domain(DomainId="d-missing")

    error = raised.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert error["Error"]["Code"] == "ResourceNotFound"
    assert error["Error"]["Message"] == "Domain d-missing does not exist (local override)."


def test_a_broken_handler_is_a_500_naming_the_failure(clients, local_stack):
    with pytest.raises(ClientError) as raised:
        clients.sagemaker.describe_domain(DomainId="d-broken")

    error = raised.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert error["Error"]["Code"] == "InternalFailure"
    assert "RuntimeError: the override itself is broken" in error["Error"]["Message"]
    log = (local_stack.state_dir / "logs" / "server.log").read_text()
    assert "local handler for SageMaker.DescribeDomain failed" in log


def test_health_lists_the_local_operations(local_stack):
    health_url = f"{local_stack.env['AWS_ENDPOINT_URL_SAGEMAKER']}/__local_stack/health"
    with urllib.request.urlopen(health_url) as answer:  # noqa: S310 - the stack's loopback http URL
        health = json.load(answer)

    assert health["status"] == "ready"
    assert {"DescribeDomain", "UpdateModelPackage"} <= set(health["local_operations"])


def test_a_request_the_gateway_cannot_read_is_a_500_and_closes_the_connection(local_stack):
    # The rest of a half-read body must not be parsed as the next request on a kept-alive connection.
    gateway = urlsplit(local_stack.env["AWS_ENDPOINT_URL_SAGEMAKER"])
    request = (
        b"POST / HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"not-a-chunk-size\r\nGET /leftover HTTP/1.1\r\nHost: localhost\r\n\r\n"
    )
    with socket.create_connection((gateway.hostname, gateway.port), timeout=10) as connection:
        connection.sendall(request)
        answer = b""
        while chunk := connection.recv(65536):  # until the gateway closes the connection
            answer += chunk

    assert answer.startswith(b"HTTP/1.1 500 ")
    assert b"InternalFailure" in answer
    assert answer.count(b"HTTP/1.1 ") == 1
