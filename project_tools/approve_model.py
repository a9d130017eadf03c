"""Approve or reject a model version in the SageMaker model registry.

    scripts/approve-model approve --version 3 --description "RMSE 2.2, checked by Ana"
    scripts/approve-model reject  --arn arn:aws:sagemaker:...:model-package/abalone/3 --description "drift"
    scripts/approve-model approve --version latest           # the newest version of the group
    scripts/approve-model pin --arn arn:...:model-package/abalone/2   # record its artifacts' SHA-256 (older packages)
    scripts/approve-model show --version latest      # the champion comparison, as a table, and the report

The group is --group, else $MODEL_PACKAGE_GROUP_NAME. Works the same against AWS (credentials and
region from the usual AWS environment) and against the local stack (eval "$(scripts/local-stack env)").
Approval makes SageMaker send the "SageMaker Model Package State Change" event that starts the
deployment; on the local stack the gateway sends it.

The update carries the package's full set of updatable fields (status, description, metadata):
AWS keeps fields a request leaves out, moto's emulation erases them.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys

import boto3
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

STATUS = {"approve": "Approved", "reject": "Rejected"}
PIN = "pin"  # not a decision: records the artifacts' digests, which deploy requires (pipelines/pinning.py)
SHOW = "show"  # not a decision: what an approver reads first
# The champion gate's figures in the package's metadata (model-build's pipeline.GATE_METADATA), in table order.
GATE_ROWS = {
    "GateChampion": "champion",
    "GateRmse": "rmse",
    "GateMae": "mae",
    "GateR2": "r2",
    "GateLabelShift": "label shift (L-inf)",
    "GateTrainingSize": "training rows",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="approve-model", description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "decision", choices=[*sorted(STATUS), PIN, SHOW], help="approve, reject, pin the artifacts, or show"
    )
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--arn", help="the model package ARN")
    which.add_argument("--version", help="version number in the group, or 'latest'")
    parser.add_argument("--group", default=os.environ.get("MODEL_PACKAGE_GROUP_NAME"), help="model package group")
    parser.add_argument("--description", help="why (kept as the package's ApprovalDescription)")
    parser.add_argument("--region", default=None, help="AWS region (default: the AWS environment's)")
    args = parser.parse_args(argv)
    if args.version and not args.group:
        parser.error("--version needs --group or MODEL_PACKAGE_GROUP_NAME")
    if args.version and args.version != "latest" and not args.version.isdigit():
        parser.error(f"--version must be a number or 'latest', not {args.version!r}")
    command = {PIN: pin, SHOW: show}.get(args.decision, decide)
    # One place for what AWS (or a missing version) answers, whichever command asked.
    try:
        return command(args)
    except (NoCredentialsError, NoRegionError) as error:
        print(
            f'error: {str(error).rstrip(".")}. Against the local stack: eval "$(scripts/local-stack env)"; '
            "against AWS: configure credentials and AWS_REGION.",
            file=sys.stderr,
        )
        return 2
    except LookupError as error:
        print(f"error: {error.args[0]}", file=sys.stderr)
        return 2
    except (ClientError, BotoCoreError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


def decide(args: argparse.Namespace) -> int:
    """Approve or reject: the package's full set of updatable fields, then a check that the registry kept them."""
    status = STATUS[args.decision]
    description = args.description or f"{status} by {getpass.getuser()} with approve-model"
    sagemaker = boto3.session.Session(region_name=args.region).client("sagemaker")
    arn = args.arn or find_version(sagemaker, args.group, args.version)
    before = describe(sagemaker, arn)
    if before.get("ModelApprovalStatus") == status:
        print(f"{arn} is already {status}: nothing to change")
        print_package(before)
        return 0
    update = {
        "ModelPackageArn": arn,
        "ModelApprovalStatus": status,
        "ApprovalDescription": description,
    }
    if before.get("CustomerMetadataProperties"):
        update["CustomerMetadataProperties"] = before["CustomerMetadataProperties"]
    sagemaker.update_model_package(**update)
    after = describe(sagemaker, arn)

    lost = [
        name
        for name in ("CustomerMetadataProperties", "ModelMetrics", "InferenceSpecification")
        if before.get(name) != after.get(name)
    ]
    if after.get("ModelApprovalStatus") != status or lost:
        print(
            f"error: the registry did not keep the update: status {after.get('ModelApprovalStatus')}, changed {lost}",
            file=sys.stderr,
        )
        return 1
    print(f"{arn}: {before.get('ModelApprovalStatus', 'no status')} -> {status}")
    print_package(after)
    return 0


def pin(args: argparse.Namespace) -> int:
    """Pin a package registered before run_pipeline pinned packages: check its artifacts first, that is the point."""
    from pipelines import pinning  # model-build's: the same digests run_pipeline records

    session = boto3.session.Session(region_name=args.region)
    sagemaker, s3 = session.client("sagemaker"), session.client("s3")
    arn = args.arn or find_version(sagemaker, args.group, args.version)
    digests = pinning.pin(sagemaker, s3, arn)
    print(f"{arn}: pinned")
    for key, digest in sorted(digests.items()):
        print(f"  {key} = {digest}")
    return 0


def show(args: argparse.Namespace) -> int:
    """The package, its champion comparison as a table (new vs champion, bound) and where its report is."""
    sagemaker = boto3.session.Session(region_name=args.region).client("sagemaker")
    package = describe(sagemaker, args.arn or find_version(sagemaker, args.group, args.version))
    print(package["ModelPackageArn"])
    print_package(package)
    print(comparison_table(package.get("CustomerMetadataProperties") or {}))
    return 0


def comparison_table(metadata: dict) -> str:
    if "GateResult" not in metadata:
        return "Champion comparison: none recorded (registered before the champion gate)"
    lines = [f"Champion comparison: {metadata['GateResult']}", f"  {'check':<20} new vs champion (bound)"]
    lines += [f"  {label:<20} {metadata.get(key, '-')}" for key, label in GATE_ROWS.items()]
    lines.append(f"Report: {metadata.get('Report', 'none recorded (see the train job artifacts)')}")
    return "\n".join(lines)


def find_version(sagemaker, group: str, version: str) -> str:
    """ARN of `version` ('latest' or a number) of `group`; LookupError names what exists."""
    packages = []
    for page in sagemaker.get_paginator("list_model_packages").paginate(
        ModelPackageGroupName=group, SortBy="CreationTime", SortOrder="Descending"
    ):
        packages += page["ModelPackageSummaryList"]
    if not packages:
        raise LookupError(f"model package group {group} has no versions (or does not exist)")
    if version == "latest":
        return packages[0]["ModelPackageArn"]
    for package in packages:
        if package.get("ModelPackageVersion") == int(version):
            return package["ModelPackageArn"]
    versions = sorted(package.get("ModelPackageVersion", 0) for package in packages)
    raise LookupError(f"model package group {group} has no version {version} (versions: {versions})")


def describe(sagemaker, arn: str) -> dict:
    package = sagemaker.describe_model_package(ModelPackageName=arn)
    package.pop("ResponseMetadata", None)
    return package


def print_package(package: dict) -> None:
    print(f"  group {package.get('ModelPackageGroupName')}, version {package.get('ModelPackageVersion')}")
    print(f"  status {package.get('ModelApprovalStatus')}: {package.get('ApprovalDescription', '')}")
    metrics = package.get("ModelMetrics", {}).get("ModelQuality", {}).get("Statistics", {}).get("S3Uri")
    if metrics:
        print(f"  metrics {metrics}")
    for name, value in sorted(package.get("CustomerMetadataProperties", {}).items()):
        print(f"  {name} = {value}")


if __name__ == "__main__":
    sys.exit(main())
