"""Model registry look-ups: one package version, the approved versions in order, and what a package points to."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from urllib.parse import urlparse

from botocore.exceptions import ClientError

from deploy.errors import DeployError

APPROVED = "Approved"
# Lineage metadata written by the model-build pipeline's register step.
METADATA_TEST_DATA = "TestDataUrl"
TEST_FILE = "test.csv"


@dataclass(frozen=True)
class ModelPackage:
    arn: str
    group: str
    version: int
    approval_status: str
    image: str = ""
    model_data_url: str = ""
    metrics_uri: str = ""
    metadata: dict = field(default_factory=dict)
    approval_description: str = ""
    changed_by: str = ""  # who last changed the package (LastModifiedBy), as far as the registry knows
    drift_check_baselines: dict = field(default_factory=dict)  # the baselines its endpoint monitors check against

    @classmethod
    def from_description(cls, description: dict) -> ModelPackage:
        containers = description.get("InferenceSpecification", {}).get("Containers") or [{}]
        statistics = description.get("ModelMetrics", {}).get("ModelQuality", {}).get("Statistics", {})
        return cls(
            arn=description["ModelPackageArn"],
            group=description.get("ModelPackageGroupName", ""),
            version=int(description.get("ModelPackageVersion") or 0),
            # AWS defaults a missing status to PendingManualApproval; so do we.
            approval_status=description.get("ModelApprovalStatus") or "PendingManualApproval",
            image=containers[0].get("Image", ""),
            model_data_url=containers[0].get("ModelDataUrl", ""),
            metrics_uri=statistics.get("S3Uri", ""),
            metadata=description.get("CustomerMetadataProperties") or {},
            approval_description=description.get("ApprovalDescription", ""),
            changed_by=modifier(description.get("LastModifiedBy") or {}),
            drift_check_baselines=description.get("DriftCheckBaselines") or {},
        )

    @property
    def label(self) -> str:
        return f"{self.group}/{self.version}"


def modifier(last_modified_by: dict) -> str:
    """A readable name for SageMaker's LastModifiedBy: the IAM identity, else the Studio user profile."""
    identity = last_modified_by.get("IamIdentity") or {}
    return identity.get("Arn") or last_modified_by.get("UserProfileName") or ""


def describe(sagemaker, arn: str) -> ModelPackage:
    try:
        return ModelPackage.from_description(sagemaker.describe_model_package(ModelPackageName=arn))
    except ClientError as error:
        if error.response["Error"]["Code"] in ("ValidationException", "ResourceNotFound"):
            raise DeployError(
                f"model package {arn} was not found: {error.response['Error']['Message']}. "
                "Check MODEL_PACKAGE_ARN (and the region) against the model registry."
            ) from None
        raise


def require_deployable(package: ModelPackage, group: str) -> None:
    """Refuse a package from another group or one that is not Approved."""
    if package.group != group:
        raise DeployError(
            f"model package {package.arn} belongs to group {package.group!r}, not to this project's group {group!r}: "
            "the deploy pipeline only serves its own project's models"
        )
    if package.approval_status != APPROVED:
        raise DeployError(
            f"model package {package.arn} is {package.approval_status}, not {APPROVED}: approve it in the model "
            "registry first (or run the pipeline without MODEL_PACKAGE_ARN to deploy the latest approved version)"
        )


def require_still_approved(sagemaker, arn: str) -> ModelPackage:
    """Read the package's status again, right before a stack changes: a version rejected since build never serves.

    build checked it once, but a person may reject the version while the pipeline waits at the prod button.
    """
    package = describe(sagemaker, arn)
    if package.approval_status != APPROVED:
        who = package.changed_by or "(the registry does not say who)"
        why = f', reason: "{package.approval_description}"' if package.approval_description else ""
        raise DeployError(
            f"refusing to deploy model package {package.label} ({arn}): it is {package.approval_status} now, "
            f"not {APPROVED} (changed by {who}{why}). Nothing was changed. Approve it again in the model registry "
            "if that was a mistake; otherwise the rejection has started a rollback pipeline."
        )
    return package


def approved_versions(sagemaker, group: str) -> list[dict]:
    """Approved version summaries of the group, newest first (explicit sort, never the API's default order)."""
    summaries = []
    paginator = sagemaker.get_paginator("list_model_packages")
    pages = paginator.paginate(
        ModelPackageGroupName=group,
        ModelApprovalStatus=APPROVED,
        SortBy="CreationTime",
        SortOrder="Descending",
    )
    for page in pages:
        summaries.extend(page["ModelPackageSummaryList"])
    # Versions grow with creation time; sorting by version as well makes the order unambiguous.
    summaries.sort(key=lambda summary: (summary.get("ModelPackageVersion", 0), summary["CreationTime"]), reverse=True)
    return summaries


def latest_approved(sagemaker, group: str) -> ModelPackage:
    summaries = approved_versions(sagemaker, group)
    if not summaries:
        raise DeployError(
            f"model package group {group!r} has no Approved version: approve one in the model registry, "
            "which also triggers this pipeline"
        )
    return describe(sagemaker, summaries[0]["ModelPackageArn"])


def previous_approved(sagemaker, group: str, before_version: int) -> ModelPackage | None:
    """The newest Approved version older than `before_version`, or None."""
    for summary in approved_versions(sagemaker, group):
        if summary.get("ModelPackageVersion", 0) < before_version:
            return describe(sagemaker, summary["ModelPackageArn"])
    return None


def split_s3_uri(uri: str) -> tuple[str, str]:
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise DeployError(f"{uri!r} is not an s3://bucket/key URI")
    return parsed.netloc, parsed.path.lstrip("/")


def read_s3_text(s3, uri: str) -> str:
    bucket, key = split_s3_uri(uri)
    try:
        return s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8")
    except ClientError as error:
        raise DeployError(f"cannot read {uri}: {error.response['Error']['Message']}") from None


def registered_rmse(s3, package: ModelPackage) -> float:
    """The RMSE the model-build pipeline registered (evaluation.json behind ModelMetrics.ModelQuality)."""
    if not package.metrics_uri:
        raise DeployError(f"model package {package.arn} has no ModelMetrics.ModelQuality.Statistics report")
    report = json.loads(read_s3_text(s3, package.metrics_uri))
    metrics = report.get("regression_metrics", {})
    if "rmse" in metrics:
        return float(metrics["rmse"]["value"])
    if "mse" in metrics:
        return math.sqrt(float(metrics["mse"]["value"]))
    raise DeployError(f"{package.metrics_uri} has neither regression_metrics.rmse nor regression_metrics.mse")


def test_data_uri(package: ModelPackage) -> str:
    """The held-out test split of the package's own training run (a prefix holding test.csv, or the file)."""
    url = package.metadata.get(METADATA_TEST_DATA, "")
    if not url:
        raise DeployError(
            f"model package {package.arn} has no {METADATA_TEST_DATA} metadata: register it with the "
            "model-build pipeline, which records where its test split is"
        )
    return url if url.endswith(".csv") else f"{url.rstrip('/')}/{TEST_FILE}"
