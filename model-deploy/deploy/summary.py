"""Summary: what each stage serves now, and the last staging test figures."""

from __future__ import annotations

import json

from deploy import endpoints, settings, stack, staging
from deploy.errors import DeployError
from deploy.settings import Settings


def stage_line(config: Settings, stage: str) -> str:
    described = stack.describe_stack(config.client("cloudformation"), config.stack_name(stage))
    if described is None:
        return f"  {stage:<8} not deployed (no stack {config.stack_name(stage)})"
    try:
        endpoint_name = stack.outputs_of(described)["EndpointName"]
        served = endpoints.describe(config.client("sagemaker"), endpoint_name)
    except DeployError as error:
        return f"  {stage:<8} stack {described['StackStatus']}: {error}"
    packages = ", ".join(arn.split("model-package/")[-1] for arn in served.package_arns) or "no package"
    return f"  {stage:<8} endpoint {served.name} {served.status}, serves {packages} (stack {described['StackStatus']})"


def run(config: Settings) -> int:
    print(f"Deployments of SageMaker project {config.project_name} ({config.region})")
    for stage in settings.STAGES:
        print(stage_line(config, stage))
    results_path = config.build_dir / staging.RESULTS_JSON
    if results_path.is_file():
        print(staging.summary_line(results_path))
        for key, value in json.loads(results_path.read_text())["figures"].items():
            print(f"  {key:<24} {value}")
    else:
        print(f"No staging test results yet ({results_path})")
    return 0
