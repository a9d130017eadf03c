"""What an endpoint really serves: endpoint -> endpoint config -> models -> model packages."""

from __future__ import annotations

from dataclasses import dataclass

from botocore.exceptions import ClientError

from deploy.errors import DeployError


@dataclass(frozen=True)
class ServedEndpoint:
    name: str
    status: str
    config_name: str
    model_names: list[str]
    package_arns: list[str]


def describe(sagemaker, endpoint_name: str) -> ServedEndpoint:
    """Follow the endpoint's current config down to the package ARNs of its containers."""
    try:
        endpoint = sagemaker.describe_endpoint(EndpointName=endpoint_name)
    except ClientError as error:
        # Only SageMaker's "Could not find endpoint" means missing; AccessDenied or throttling keep their own words.
        if error.response["Error"]["Code"] != "ValidationException":
            raise
        raise DeployError(f"endpoint {endpoint_name} not found: {error.response['Error']['Message']}") from None
    config = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    model_names = [variant["ModelName"] for variant in config["ProductionVariants"]]
    package_arns = []
    for model_name in model_names:
        model = sagemaker.describe_model(ModelName=model_name)
        containers = [model["PrimaryContainer"]] if model.get("PrimaryContainer") else model.get("Containers", [])
        package_arns.extend(c["ModelPackageName"] for c in containers if c.get("ModelPackageName"))
    return ServedEndpoint(
        name=endpoint_name,
        status=endpoint["EndpointStatus"],
        config_name=endpoint["EndpointConfigName"],
        model_names=model_names,
        package_arns=package_arns,
    )


def require_serving(sagemaker, endpoint_name: str, package_arn: str) -> ServedEndpoint:
    """Raise unless the endpoint is InService and serves exactly `package_arn` (and nothing else)."""
    served = describe(sagemaker, endpoint_name)
    if served.status != "InService":
        raise DeployError(f"endpoint {endpoint_name} is {served.status}, not InService")
    if served.package_arns != [package_arn]:
        raise DeployError(
            f"endpoint {endpoint_name} serves {served.package_arns or 'no model package'}, expected [{package_arn}]: "
            "another deploy may have run in between; re-run the pipeline"
        )
    return served
