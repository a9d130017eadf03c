"""boto3 clients, made the same way for every job."""

import boto3


def client(service: str, region: str):
    # No endpoint_url: botocore reads AWS_ENDPOINT_URL(_<SERVICE>) itself, so the same code talks to
    # AWS or to the local stack; credentials come from the default chain (OIDC web identity in CI).
    return boto3.client(service, region_name=region)
