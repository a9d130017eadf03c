"""Provision the SageMaker project stack from your own machine, and seed its GitLab projects.

    scripts/provision-project deploy --stack-name abalone --assets-bucket my-assets \\
        --parameter SageMakerProjectName=abalone --parameter SageMakerProjectId=p-abalone \\
        --parameter GitLabServerUrl=https://gitlab.example.com --parameter GitLabNamespaceId=42 \\
        --parameter GitLabNamespacePath=ml-team/abalone
    scripts/provision-project seed --stack-name abalone     # SeedRepositories=from-workstation
    scripts/provision-project delete --stack-name abalone

deploy: packages the assets (scripts/package-lambdas), uploads them and the template to the assets
bucket under content-addressed keys, creates or updates the stack and waits, printing its events, with
model-deploy's deploy/stack.py (the one create/update/wait of the repo). Parameters not given keep their
values on an update. "No updates" is success; a stack left in ROLLBACK_COMPLETE by a failed first create
is replaced.
seed: does what the stack's custom resource does (same code), with the stack's outputs, from this
machine: for a GitLab that Lambda cannot reach. The token comes from GITLAB_TOKEN or the stack's
GitLabTokenSecretName secret. delete: deletes the stack and waits (the bucket and key are retained).
Credentials and region come from the usual AWS environment.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
from pathlib import Path

import boto3
import botocore.exceptions
import gitlab.exceptions

from deploy import stack as cloudformation_stack
from deploy.errors import DeployError
from lambdas.seed_code.seeding import (
    Seeder,
    SeedError,
    SeedRequest,
    connect,
    personal_token_from_secret,
    read_seed_archive,
)
from project_tools import package_lambdas

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "cloudformation" / "project.yml"

ASSET_PARAMETERS = {
    "SeedFunctionKey": "seed_code",
    "TriggerFunctionKey": "model_trigger",
    "AlertGateFunctionKey": "alert_gate",
    "ModelBuildSeedKey": "model-build",
    "ModelDeploySeedKey": "model-deploy",
}
# The project stack creates a KMS key, roles, an OIDC provider, Lambdas: minutes, rarely an hour.
WAITING = cloudformation_stack.Waiting(poll_seconds=5, timeout_seconds=3600)


class ProvisionError(Exception):
    pass


# -- deploy --------------------------------------------------------------------------------------
def upload_assets(s3, bucket: str, out: Path, offline: bool) -> tuple[dict[str, str], str]:
    """Package and upload; returns (template parameters for the asset keys, template URL)."""
    print("==> packaging")
    manifest = package_lambdas.package(out, offline)
    uploads = {entry["s3_key"]: out / entry["file"] for entry in manifest.values()}
    template_key = f"templates/project-{_sha256(TEMPLATE)[:16]}.yml"
    uploads[template_key] = TEMPLATE
    print(f"==> uploading to s3://{bucket}")
    for key, path in uploads.items():
        try:
            s3.head_object(Bucket=bucket, Key=key)
            print(f"  {key} (already there)")
        except botocore.exceptions.ClientError:
            s3.upload_file(str(path), bucket, key)
            print(f"  {key}")
    parameters = {name: manifest[asset]["s3_key"] for name, asset in ASSET_PARAMETERS.items()}
    region = s3.meta.region_name
    return parameters, f"https://{bucket}.s3.{region}.amazonaws.com/{template_key}"


def deploy(cloudformation, stack_name: str, template_url: str, parameters: dict[str, str]) -> dict:
    """Create or update the project stack and wait; returns its final description."""
    print(f"==> deploying stack {stack_name}")
    outcome = cloudformation_stack.deploy_stack(
        cloudformation,
        stack_name,
        template_url=template_url,
        parameters=dict(sorted(parameters.items())),
        tags=_tags(parameters),
        capabilities=("CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"),
        # As `aws cloudformation deploy` does: a parameter not given keeps its value on an update.
        keep_previous_values=True,
        waiting=WAITING,
    )
    print(f"    stack {outcome.action}")
    return outcome.stack


def _tags(parameters: dict[str, str]) -> dict[str, str]:
    # Both or none: on an update without them the stack keeps its tags (a partial set would drop one).
    name, project_id = parameters.get("SageMakerProjectName"), parameters.get("SageMakerProjectId")
    return {"sagemaker:project-name": name, "sagemaker:project-id": project_id} if name and project_id else {}


def delete(cloudformation, stack_name: str) -> None:
    stack = cloudformation_stack.describe_stack(cloudformation, stack_name)
    if stack is None:
        print(f"==> stack {stack_name} does not exist: nothing to delete")
        return
    cloudformation_stack.delete_and_wait(cloudformation, stack, WAITING)
    print(f"==> stack {stack_name} deleted (the artifact bucket and KMS key are retained)")


# -- seed ----------------------------------------------------------------------------------------
def seed_properties(stack: dict) -> dict[str, str]:
    """The seed custom resource's properties, rebuilt from the stack's parameters and outputs."""
    parameters = {p["ParameterKey"]: p.get("ParameterValue", "") for p in stack.get("Parameters", [])}
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    region = stack["StackId"].split(":")[3]
    return {
        "GitLabUrl": parameters["GitLabServerUrl"],
        "GitLabTokenSecretId": parameters["GitLabTokenSecretName"],
        "NamespaceId": parameters["GitLabNamespaceId"],
        "NamespacePath": parameters["GitLabNamespacePath"],
        "BuildRepoName": outputs["BuildRepositoryName"],
        "DeployRepoName": outputs["DeployRepositoryName"],
        "DefaultBranch": parameters["DefaultBranch"],
        "ProjectName": parameters["SageMakerProjectName"],
        "ProjectId": parameters["SageMakerProjectId"],
        "Region": region,
        "ArtifactBucket": outputs["ArtifactBucketName"],
        "KmsKeyArn": outputs["KmsKeyArn"],
        "ModelPackageGroupName": outputs["ModelPackageGroupName"],
        "PipelineRoleArn": outputs["SageMakerPipelineRoleArn"],
        "ModelExecutionRoleArn": outputs["ModelExecutionRoleArn"],
        "BuildRoleArn": outputs["GitLabBuildRoleArn"],
        "DeployStagingRoleArn": outputs["GitLabDeployStagingRoleArn"],
        "DeployProdRoleArn": outputs["GitLabDeployProdRoleArn"],
        "TriggerSecretArn": outputs["TriggerSecretArn"],
        "AlertTopicArn": outputs.get("AlertTopicArn", ""),  # optional: a stack from before the alert topic
    }


def seed(stack: dict, token: str | None, secrets) -> None:
    properties = seed_properties(stack)
    request = SeedRequest.from_properties(properties)
    if not token:
        secret = secrets.get_secret_value(SecretId=properties["GitLabTokenSecretId"])["SecretString"]
        token = personal_token_from_secret(secret)
    archives = {
        folder: read_seed_archive(package_lambdas.seed_archive(folder), folder)
        for folder in package_lambdas.SEED_FOLDERS
    }
    print(
        f"==> seeding {request.namespace_path}/{request.build_repo} and {request.namespace_path}/{request.deploy_repo}"
    )
    outcome = Seeder(connect(request.gitlab_url, token), request).seed(
        archives["model-build"], archives["model-deploy"]
    )
    secrets.put_secret_value(SecretId=properties["TriggerSecretArn"], SecretString=outcome.trigger_secret())
    for part in (outcome.build, outcome.deploy):
        state = "created" if part.created else "reused"
        seeded = f"seeded on {part.seeded_branch}" if part.seeded_branch else "already seeded"
        print(f"  {part.web_url}  ({state}, {seeded}, {len(part.changed_files)} files committed)")
    print("==> trigger token rotated and stored in the stack's trigger secret")
    for warning in outcome.warnings:
        print(f"warning: {warning}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    deploy_cmd = commands.add_parser("deploy", help="package, upload, create or update the stack, wait")
    deploy_cmd.add_argument("--stack-name", required=True)
    deploy_cmd.add_argument("--assets-bucket", required=True, help="an existing bucket for the template assets")
    deploy_cmd.add_argument("--parameter", action="append", default=[], metavar="KEY=VALUE")
    deploy_cmd.add_argument("--offline", action="store_true", help="install Lambda dependencies from uv's cache")
    seed_cmd = commands.add_parser("seed", help="seed the GitLab projects from this machine")
    seed_cmd.add_argument("--stack-name", required=True)
    delete_cmd = commands.add_parser("delete", help="delete the stack and wait")
    delete_cmd.add_argument("--stack-name", required=True)
    args = parser.parse_args(argv)

    cloudformation = boto3.client("cloudformation")
    started = time.monotonic()
    try:
        if args.command == "deploy":
            parameters = dict(_key_value(item) for item in args.parameter)
            parameters["AssetsBucket"] = args.assets_bucket
            assets, template_url = upload_assets(
                boto3.client("s3"), args.assets_bucket, ROOT / "build" / "assets", args.offline
            )
            stack = deploy(cloudformation, args.stack_name, template_url, {**parameters, **assets})
            print(f"==> {stack['StackName']}: {stack['StackStatus']}")
            for output in stack.get("Outputs", []):
                print(f"  {output['OutputKey']:<28} {output['OutputValue']}")
        elif args.command == "seed":
            stack = cloudformation_stack.describe_stack(cloudformation, args.stack_name)
            if stack is None:
                raise ProvisionError(f"stack {args.stack_name} does not exist: deploy it first")
            seed(stack, os.environ.get("GITLAB_TOKEN"), boto3.client("secretsmanager"))
        else:
            delete(cloudformation, args.stack_name)
    except (ProvisionError, DeployError, SeedError, package_lambdas.PackagingError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except botocore.exceptions.ClientError as error:
        print(f"error: AWS refused the request: {error}", file=sys.stderr)
        return 1
    except botocore.exceptions.BotoCoreError as error:
        print(f"error: {error} (check the AWS credentials and region: AWS_PROFILE, AWS_REGION)", file=sys.stderr)
        return 1
    except gitlab.exceptions.GitlabError as error:
        print(f"error: GitLab refused the request: {error} (check the token and the group)", file=sys.stderr)
        return 1
    print(f"==> done in {time.monotonic() - started:.0f} s")
    return 0


def _key_value(item: str) -> tuple[str, str]:
    key, sep, value = item.partition("=")
    if not sep or not key:
        raise SystemExit(f"error: --parameter {item!r} is not KEY=VALUE")
    return key, value


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


if __name__ == "__main__":
    sys.exit(main())
