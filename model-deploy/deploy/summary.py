"""summary: what each stage serves now, and the staging test figures of the version staging serves."""

from __future__ import annotations

from deploy import aws, deploy_stage, endpoints, naming, registry, stack, staging_results
from deploy.environment import Environment
from deploy.errors import DeployError


def stage_line(environment: Environment, stage: str) -> str:
    stack_name = naming.stack_name(environment.project_name, stage)
    described = stack.describe_stack(aws.client("cloudformation", environment.region), stack_name)
    if described is None:
        return f"  {stage:<8} not serving: no stack {stack_name}"
    try:
        endpoint_name = deploy_stage.outputs_of(described)["EndpointName"]
        served = endpoints.describe(aws.client("sagemaker", environment.region), endpoint_name)
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
