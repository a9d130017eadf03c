"""deploy-stage STAGE: deploy the release to one stage's stack, then prove the endpoint serves it.

The stack is created or updated from `endpoint-config-template.yml` with the stage's parameters and
tags from the release (deploy/stack.py does the CloudFormation part). Names come from the stack
Outputs (emulators ignore name properties), and the endpoint must be InService and serve exactly the
package in the parameters. `build/<stage>-outputs.json` records the outcome for people.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from deploy import accounts, artifacts, aws, baselines, endpoints, naming, registry, release, stack
from deploy.environment import Environment
from deploy.errors import DeployError
from deploy.paths import TEMPLATE_PATH
from deploy.release import StageInputs

REQUIRED_OUTPUTS = ("EndpointName", "EndpointConfigName", "ModelName")


def waiting() -> stack.Waiting:
    return stack.Waiting(
        poll_seconds=float(os.environ.get("DEPLOY_POLL_SECONDS", "15")),
        timeout_seconds=float(os.environ.get("DEPLOY_TIMEOUT_SECONDS", "5400")),
    )


def outputs_of(described: dict) -> dict:
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs") or []}
    missing = [key for key in REQUIRED_OUTPUTS if key not in outputs]
    if missing:
        # A failed or rolled-back stack has no outputs either: its status tells which case this is.
        raise DeployError(
            f"stack {described['StackName']} ({described['StackStatus']}) has no output(s) {', '.join(missing)}: "
            "deploy the stage again if it failed, otherwise check the template's Outputs"
        )
    return outputs


def deployed_package_arn(cloudformation, environment: Environment, stage: str) -> str | None:
    """The package the stage's stack was given; None when the stage has no stack."""
    name = naming.stack_name(environment.project_name, stage)
    current = stack.describe_stack(cloudformation, name)
    if current is None:
        return None
    parameters = {p["ParameterKey"]: p.get("ParameterValue", "") for p in current.get("Parameters", [])}
    if not parameters.get("ModelPackageArn"):
        raise DeployError(f"stack {name} has no ModelPackageArn parameter: not a deploy stack")
    return parameters["ModelPackageArn"]


def deploy(environment: Environment, stage: str, inputs: StageInputs, build_dir: Path, batch: bool = False) -> str:
    """Create or update the stage's stack with these inputs, verify the endpoint; returns the action taken.

    With `batch`, the stage's batch inference pipeline and its triggers follow the endpoint (deploy/batch/promote).
    """
    if inputs.parameters.get("StageName") != stage:
        raise DeployError(f"the inputs for {stage} are for stage {inputs.parameters.get('StageName')!r}")
    package_arn = inputs.parameters["ModelPackageArn"]
    name = naming.stack_name(environment.project_name, stage)
    started = time.monotonic()
    region = inputs.region or environment.region
    if inputs.account_id:  # a stage in its own account: never deploy it with another account's credentials
        caller = accounts.require_credentials_for(aws.client("sts", region), stage, inputs.account_id)
        print(f"{stage} is in account {inputs.account_id}: deploying as {caller}", flush=True)
    sagemaker = aws.client("sagemaker", region)
    # Checked again before every stack change, not only at build: the version may have been rejected since.
    package = registry.require_still_approved(sagemaker, package_arn)
    artifacts.require_unchanged(aws.client("s3", region), package)
    baselines.require_unchanged(aws.client("s3", region), inputs.parameters)
    print(f"Deploying {package_arn} to {stage}: stack {name}", flush=True)
    outcome = stack.deploy_stack(
        aws.client("cloudformation", region),
        name,
        template_body=TEMPLATE_PATH.read_text(),
        parameters=inputs.parameters,
        tags=inputs.tags,
        role_arn=environment.cloudformation_role_arn,
        waiting=waiting(),
    )
    outputs = outputs_of(outcome.stack)
    # Proof, not trust: the endpoint must serve exactly the package this stack was given.
    served = endpoints.require_serving(sagemaker, outputs["EndpointName"], package_arn)
    status = outcome.stack["StackStatus"]
    build_dir.mkdir(parents=True, exist_ok=True)
    record = {**outputs, "StackName": name, "StackStatus": status, "Action": outcome.action}
    (build_dir / f"{stage}-outputs.json").write_text(json.dumps(record, indent=2) + "\n")
    print(f"{stage}: stack {name} {outcome.action} ({status}) in {time.monotonic() - started:.0f} s")
    print(f"  endpoint  {served.name} ({served.status})")
    print(f"  config    {served.config_name}")
    print(f"  model     {', '.join(served.model_names)}")
    print(f"  package   {package_arn}")
    if batch and inputs.account_id:
        # Its pipeline, outputs and triggers would belong in that account's bucket and roles: not built yet.
        print(f"warning: {stage} is in account {inputs.account_id}: its batch inference is not deployed there (yet)")
    elif batch:
        from deploy.batch import promote  # boto3; the SageMaker SDK only once a package can run batch inference

        role = inputs.parameters.get("ModelExecutionRoleArn", "")
        print(f"{stage}: batch inference {promote.promote(environment, stage, package_arn, build_dir, role)}")
    return outcome.action


def run(environment: Environment, stage: str, build_dir: Path) -> int:
    # Production promotes its batch inference with the endpoint; staging's is batch-staging-test's (after the tests).
    deploy(environment, stage, release.read(build_dir).stage(stage), build_dir, batch=stage == "prod")
    return 0
