"""build: pick the model package to deploy and write the release (`build/release.json`).

The package is the one the approval trigger names (MODEL_PACKAGE_ARN), checked to be Approved and
in this project's group, or, on a run by hand, the newest Approved version. Never "whatever is
latest" when a version was named: a second approval in between must not change what ships.
First of all it records the approval event (`approval_event.py`): a second pipeline for the same
event stops here, before anything is resolved or deployed.
"""

from __future__ import annotations

from pathlib import Path

from deploy import accounts, approval_event, aws, baselines, registry, release, stage_config
from deploy.environment import Environment
from deploy.naming import STAGES
from deploy.registry import ModelPackage
from deploy.release import Release, StageInputs

LINEAGE_KEYS = ("GitCommit", "GitLabPipelineUrl", registry.METADATA_TEST_DATA)


def resolve_package(sagemaker, environment: Environment) -> tuple[ModelPackage, str]:
    """The package to deploy and why it was chosen."""
    if environment.model_package_arn:
        package = registry.describe(sagemaker, environment.model_package_arn)
        registry.require_deployable(package, environment.model_package_group)
        return package, "named by MODEL_PACKAGE_ARN"
    package = registry.latest_approved(sagemaker, environment.model_package_group)
    return package, "latest Approved version (no MODEL_PACKAGE_ARN given)"


def stage_inputs(
    environment: Environment, package: ModelPackage, stage: str, monitoring: dict[str, str] | None = None
) -> StageInputs:
    """Template parameters and tags: the stage's config file, then what only the project and the package know."""
    config = stage_config.load(stage)
    account_id, region = accounts.of_stage(config, stage)
    parameters = {key: str(value) for key, value in config["Parameters"].items()}
    parameters.update(
        SageMakerProjectName=environment.project_name,
        SageMakerProjectId=environment.project_id,
        ModelPackageArn=package.arn,  # in the tooling account's registry, wherever the stage is
        **(monitoring or {}),
    )
    if not account_id:
        # The project's account: the execution role, bucket and key are the project's variables.
        parameters.update(
            ModelExecutionRoleArn=environment.execution_role_arn,
            ArtifactBucket=environment.artifact_bucket,
            KmsKeyArn=environment.kms_key_arn,
            AlertTopicArn=environment.alert_topic_arn,  # a prod account of its own names its own topic
        )
    accounts.require_package_region(stage, region, package.arn)
    tags = {key: str(value) for key, value in config.get("Tags", {}).items()}
    return StageInputs(parameters=parameters, tags=tags, account_id=account_id, region=region)


def release_of(
    environment: Environment,
    package: ModelPackage,
    stages: tuple[str, ...] = STAGES,
    monitoring: dict[str, str] | None = None,
) -> Release:
    return Release(
        package_arn=package.arn,
        package_group=package.group,
        package_version=package.version,
        approval_status=package.approval_status,
        stages={stage: stage_inputs(environment, package, stage, monitoring) for stage in stages},
    )


def run(environment: Environment, build_dir: Path) -> int:
    print(approval_event.record(aws.client("s3", environment.region), environment))
    package, reason = resolve_package(aws.client("sagemaker", environment.region), environment)
    print(f"Resolved {package.arn} ({reason})")
    details = {
        "version": f"{package.label}, {package.approval_status}",
        "image": package.image or "(none)",
        "model data": package.model_data_url or "(none)",
        **{key: package.metadata[key] for key in LINEAGE_KEYS if key in package.metadata},
    }
    for key, value in details.items():
        print(f"  {key:<18} {value}")
    monitoring, warnings = baselines.monitoring_parameters(aws.client("s3", environment.region), package)
    for warning in warnings:
        print(warning)
    if monitoring:
        pinned = f"{monitoring['DataQualityBaselineConstraints']} (id {monitoring['MonitoringBaselineId']})"
        print(f"  {'monitor baseline':<18} {pinned}")
    path = release.write(release_of(environment, package, monitoring=monitoring), build_dir)
    print(f"Wrote {path}")
    return 0
