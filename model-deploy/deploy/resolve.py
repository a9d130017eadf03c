"""Build step: pick the model package to deploy and write each stage's CloudFormation inputs.

The package is the one the approval trigger names (MODEL_PACKAGE_ARN), checked to be Approved and
in this project's group, or, on a run by hand, the newest Approved version. Never "whatever is
latest" when a version was named: a second approval in between must not change what ships.

Writes to the build folder (a CI artifact): `<stage>-params.json` and `<stage>-tags.json` in the
`aws cloudformation create-stack --parameters/--tags file://` format, and `deploy.env`, a dotenv
report for the later jobs.
"""

from __future__ import annotations

import json
from pathlib import Path

from deploy import registry, settings
from deploy.registry import ModelPackage
from deploy.settings import Settings

LINEAGE_KEYS = ("GitCommit", "GitLabPipelineUrl", registry.METADATA_TEST_DATA)


def resolve_package(sagemaker, config: Settings) -> tuple[ModelPackage, str]:
    """The package to deploy and why it was chosen."""
    if config.model_package_arn:
        package = registry.describe(sagemaker, config.model_package_arn)
        registry.require_deployable(package, config.model_package_group)
        return package, "named by MODEL_PACKAGE_ARN"
    package = registry.latest_approved(sagemaker, config.model_package_group)
    return package, "latest Approved version (no MODEL_PACKAGE_ARN given)"


def stage_parameters(config: Settings, package: ModelPackage, stage_config: dict) -> dict[str, str]:
    """Template parameters: the stage's config file, then what only the project and the package know."""
    parameters = {key: str(value) for key, value in stage_config["Parameters"].items()}
    parameters.update(
        SageMakerProjectName=config.project_name,
        SageMakerProjectId=config.project_id,
        ModelPackageArn=package.arn,
        ModelExecutionRoleArn=config.execution_role_arn,
        ArtifactBucket=config.artifact_bucket,
        KmsKeyArn=config.kms_key_arn,
    )
    return parameters


def write_stage_files(config: Settings, package: ModelPackage, stage: str) -> list[Path]:
    stage_config = settings.load_stage_config(stage)
    parameters = stage_parameters(config, package, stage_config)
    tags = {key: str(value) for key, value in stage_config.get("Tags", {}).items()}
    config.build_dir.mkdir(parents=True, exist_ok=True)
    params_path = config.build_dir / f"{stage}-params.json"
    tags_path = config.build_dir / f"{stage}-tags.json"
    params_path.write_text(
        json.dumps([{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()], indent=2) + "\n"
    )
    tags_path.write_text(json.dumps([{"Key": k, "Value": v} for k, v in tags.items()], indent=2) + "\n")
    return [params_path, tags_path]


def report(config: Settings, package: ModelPackage) -> dict[str, str]:
    """The dotenv report: what later jobs (and the summary) need to know about this build."""
    return {
        "RESOLVED_MODEL_PACKAGE_ARN": package.arn,
        "RESOLVED_MODEL_PACKAGE_VERSION": str(package.version),
        "RESOLVED_MODEL_PACKAGE_GROUP": package.group,
        "STAGING_STACK_NAME": config.stack_name("staging"),
        "STAGING_ENDPOINT_NAME": config.endpoint_name("staging"),
        "PROD_STACK_NAME": config.stack_name("prod"),
        "PROD_ENDPOINT_NAME": config.endpoint_name("prod"),
    }


def run(config: Settings) -> int:
    package, reason = resolve_package(config.client("sagemaker"), config)
    print(f"Resolved {package.arn} ({reason})")
    details = {
        "version": f"{package.label}, {package.approval_status}",
        "image": package.image or "(none)",
        "model data": package.model_data_url or "(none)",
        **{key: package.metadata[key] for key in LINEAGE_KEYS if key in package.metadata},
    }
    for key, value in details.items():
        print(f"  {key:<18} {value}")
    written = [path for stage in settings.STAGES for path in write_stage_files(config, package, stage)]
    dotenv_path = config.build_dir / settings.DOTENV_NAME
    settings.write_dotenv(dotenv_path, report(config, package))
    written.append(dotenv_path)
    print(f"Wrote {', '.join(path.name for path in written)} to {config.build_dir}")
    return 0
