"""summary: what each stage serves now, and the staging test figures of the version staging serves.

Each stage is read in its own account: a stage whose config names an account is read with credentials of
that account (the ambient ones when they are, else its deploy role, `<STAGE>_DEPLOY_ROLE_ARN`, assumed
from them), never with another account's, where its stack would look missing.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import boto3

from deploy import accounts, aws, deploy_stage, endpoints, naming, registry, stack, stage_config, staging_results
from deploy.environment import Environment
from deploy.errors import DeployError

Clients = Callable[[str], object]  # service name -> boto3 client of the stage's account and region


def stage_clients(environment: Environment, stage: str) -> Clients:
    """Clients for reading the stage where it lives; raise DeployError when no credentials of its account exist."""
    account_id, region = accounts.of_stage(stage_config.load(stage), stage)
    region = region or environment.region
    if not account_id:  # the project's account: the ambient credentials, no STS call (unchanged)
        return lambda service: aws.client(service, region)
    sts = aws.client("sts", region)
    if sts.get_caller_identity()["Account"] == account_id:
        return lambda service: aws.client(service, region)
    role_variable = f"{stage.upper()}_DEPLOY_ROLE_ARN"
    role_arn = os.environ.get(role_variable, "")
    if accounts.arn_account(role_arn) != account_id:
        raise DeployError(
            f"{stage} is in account {account_id} and these credentials are not: set {role_variable} to its deploy "
            f"role there (found {role_arn or 'nothing'}), or run summary with that account's credentials"
        )
    # The same role the stage's deploy runs as; assumed from the ambient credentials (on AWS: a principal the
    # role's trust admits; in CI the deploy job assumes it with its OIDC token instead).
    credentials = sts.assume_role(RoleArn=role_arn, RoleSessionName=f"{stage}-summary")["Credentials"]
    session = boto3.session.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=region,
    )
    return lambda service: session.client(service)


def stage_line(environment: Environment, stage: str) -> str:
    stack_name = naming.stack_name(environment.project_name, stage)
    try:
        client = stage_clients(environment, stage)
    except DeployError as error:
        return f"  {stage:<8} not read: {error}"
    described = stack.describe_stack(client("cloudformation"), stack_name)
    if described is None:
        return f"  {stage:<8} not serving: no stack {stack_name}"
    try:
        endpoint_name = deploy_stage.outputs_of(described)["EndpointName"]
        served = endpoints.describe(client("sagemaker"), endpoint_name)
    except DeployError as error:
        return f"  {stage:<8} stack {described['StackStatus']}: {error}"
    packages = ", ".join(arn.split("model-package/")[-1] for arn in served.package_arns) or "no package"
    return f"  {stage:<8} endpoint {served.name} {served.status}, serves {packages} (stack {described['StackStatus']})"


def staging_figures(environment: Environment) -> list[str]:
    """The staging test results of the version the staging stack was given, from the artifact bucket."""
    cloudformation = aws.client("cloudformation", environment.region)
    package_arn = deploy_stage.deployed_package_arn(cloudformation, environment, "staging")
    if package_arn is None:
        return ["No staging test results: staging has no deployment"]
    package = registry.describe(aws.client("sagemaker", environment.region), package_arn)
    results = staging_results.fetch(aws.client("s3", environment.region), environment, package.version)
    if results is None:
        return [
            f"No staging test results yet for {package.label} ({staging_results.uri(environment, package.version)})"
        ]
    lines = [f"{staging_results.summary_line(results)} ({package.label})"]
    lines += [f"  {key:<24} {value}" for key, value in results["figures"].items()]
    return lines


def run(environment: Environment) -> int:
    print(f"Deployments of SageMaker project {environment.project_name} ({environment.region})")
    for stage in naming.STAGES:
        print(stage_line(environment, stage))
    for line in staging_figures(environment):
        print(line)
    return 0
