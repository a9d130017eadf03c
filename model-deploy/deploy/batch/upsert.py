"""batch-upsert STAGE: put the stage's batch inference pipeline on the release's approved package version.

Everything the pipeline needs about the model is resolved here, once, and fixed in the definition: the package
(re-read: it must still be Approved, its artifacts unchanged), a SageMaker Model made from that exact package ARN,
the package's feature code (its SHA-256 checked against FeatureCodeSha256), its DriftCheckBaselines and the
encoded feature names its explainability config names. The only command that imports the SageMaker SDK.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from botocore.exceptions import ClientError

from deploy import artifacts, aws, registry, release
from deploy.batch import definition, quality_definition, sdk_env
from deploy.environment import Environment
from deploy.errors import DeployError

METADATA_FEATURE_CODE = "FeatureCodeUrl"
METADATA_FEATURE_CODE_DIGEST = "FeatureCodeSha256"
POSTPROCESS = Path(definition.HERE / "postprocess.py")
QUALITY = Path(definition.HERE / "quality.py")


def model_name(project: str, stage: str, version: int) -> str:
    return f"{project}-batch-{stage}-v{version}"


def feature_code(s3, package: registry.ModelPackage) -> str:
    """The package's feature code URI, refused unless the object is the one registered (SHA-256)."""
    uri, digest = package.metadata.get(METADATA_FEATURE_CODE), package.metadata.get(METADATA_FEATURE_CODE_DIGEST)
    if not uri or not digest:
        raise DeployError(
            f"model package {package.label} has no {METADATA_FEATURE_CODE}/{METADATA_FEATURE_CODE_DIGEST} metadata: "
            "it was registered before the build recorded its feature encoding; batch inference needs the exact "
            "encoding the model was trained with, so register a new version with the current model-build pipeline"
        )
    actual = artifacts.sha256_of(s3, uri)
    if actual != digest:
        raise DeployError(
            f"refusing batch inference for {package.label}: its feature code {uri} changed since registration "
            f"(SHA-256 {actual}, registered {digest}). Restore the registered object version."
        )
    return uri


def drift_baselines(description: dict) -> dict[str, str]:
    baselines = description.get("DriftCheckBaselines") or {}
    found = {
        "data_statistics": baselines.get("ModelDataQuality", {}).get("Statistics", {}).get("S3Uri"),
        "data_constraints": baselines.get("ModelDataQuality", {}).get("Constraints", {}).get("S3Uri"),
        "explainability": baselines.get("Explainability", {}).get("Constraints", {}).get("S3Uri"),
        "explainability_config": baselines.get("Explainability", {}).get("ConfigFile", {}).get("S3Uri"),
    }
    missing = [name for name, uri in found.items() if not uri]
    if missing:
        raise DeployError(
            f"model package {description['ModelPackageArn']} has no DriftCheckBaselines for {', '.join(missing)}: "
            "the drift checks have nothing to compare against"
        )
    return found


def quality_baselines(description: dict) -> dict[str, str]:
    """The package's DriftCheckBaselines.ModelQuality: what the model-quality pipeline checks late labels against."""
    member = (description.get("DriftCheckBaselines") or {}).get("ModelQuality", {})
    found = {kind: member.get(kind, {}).get("S3Uri") for kind in ("Statistics", "Constraints")}
    missing = [kind for kind, uri in found.items() if not uri]
    if missing:
        raise DeployError(
            f"model package {description['ModelPackageArn']} has no DriftCheckBaselines.ModelQuality "
            f"{' and '.join(missing)}: the model-quality pipeline has no baseline to check labels against; register "
            "a new version with the current model-build pipeline (its ModelQualityCheck step computes it)"
        )
    return found


def stage_root(environment: Environment, stage: str) -> str:
    """Each stage's code under its own prefix: the staging role (any branch) never writes what prod runs."""
    return f"s3://{environment.artifact_bucket}/batch-inference/{environment.project_name}/{stage}"


def code_uri(root: str, body: bytes, name: str) -> str:
    return f"{root}/code/{hashlib.sha256(body).hexdigest()[:16]}/{name}"


def upsert_quality(environment: Environment, stage: str, package: registry.ModelPackage, description: dict, s3):
    """The stage's model-quality pipeline, on the same package and its ModelQuality baseline; the label column is
    the one the package's explainability config names (the build's label)."""
    baselines = quality_baselines(description)
    config_uri = drift_baselines(description)["explainability_config"]
    label = json.loads(registry.read_s3_text(s3, config_uri)).get("label") or quality_definition.LABEL
    body = QUALITY.read_bytes()
    uri = code_uri(stage_root(environment, stage), body, "quality.py")
    spec = quality_definition.QualitySpec(
        region=environment.region,
        role_arn=environment.execution_role_arn,
        bucket=environment.artifact_bucket,
        project=environment.project_name,
        stage=stage,
        package_arn=package.arn,
        quality_code_uri=uri,
        quality_statistics_uri=baselines["Statistics"],
        quality_constraints_uri=baselines["Constraints"],
        label=label,
    )
    pipeline = quality_definition.get_pipeline(spec)
    document = pipeline.definition()
    upload(s3, uri, body)
    pipeline.upsert(
        role_arn=environment.execution_role_arn,
        description=f"Model quality ({stage}) of {package.label} with late labels",
        tags=quality_tags(environment, stage),
    )
    print(f"Upserted {spec.pipeline_name} with {package.label} (labels under {spec.batch_root}/ground-truth/)")
    return {
        "PipelineName": spec.pipeline_name,
        "GroundTruthUrl": quality_definition.ground_truth_root(spec.bucket, spec.project, stage),
        "ModelQualityBaseline": baselines,
        "DefinitionSha256": hashlib.sha256(document.encode()).hexdigest(),
    }


def quality_tags(environment: Environment, stage: str) -> list[dict]:
    found = [
        {"Key": "sagemaker:project-name", "Value": environment.project_name},
        {"Key": "stage", "Value": stage},
    ]
    if environment.project_id:
        found.append({"Key": "sagemaker:project-id", "Value": environment.project_id})
    return found


def feature_headers(s3, config_uri: str) -> tuple[str, ...]:
    """The encoded feature names, in column order, from the analysis config the build registered (minus the label)."""
    config = json.loads(registry.read_s3_text(s3, config_uri))
    return tuple(name for name in config["headers"] if name != config.get("label"))


def ensure_model(sagemaker, environment: Environment, stage: str, package: registry.ModelPackage) -> str:
    """A Model whose container is the package itself: the exact approved version, never "latest" at run time."""
    name = model_name(environment.project_name, stage, package.version)
    try:
        existing = sagemaker.describe_model(ModelName=name)
    except ClientError:
        sagemaker.create_model(
            ModelName=name,
            PrimaryContainer={"ModelPackageName": package.arn},
            ExecutionRoleArn=environment.execution_role_arn,
            EnableNetworkIsolation=True,
            Tags=[
                {"Key": "sagemaker:project-name", "Value": environment.project_name},
                {"Key": "stage", "Value": stage},
                {"Key": "ModelPackageArn", "Value": package.arn},
            ],
        )
        return name
    container = existing.get("PrimaryContainer") or (existing.get("Containers") or [{}])[0]
    if container.get("ModelPackageName") != package.arn:
        raise DeployError(f"model {name} exists but serves {container.get('ModelPackageName')}, not {package.arn}")
    return name


def upload(s3, uri: str, body: bytes) -> None:
    bucket, key = registry.split_s3_uri(uri)
    s3.put_object(Bucket=bucket, Key=key, Body=body)


def upsert(environment: Environment, stage: str, package_arn: str, build_dir: Path, settings: dict) -> dict:
    sagemaker = aws.client("sagemaker", environment.region)
    s3 = aws.client("s3", environment.region)
    package = registry.require_still_approved(sagemaker, package_arn)
    registry.require_deployable(package, environment.model_package_group)
    artifacts.require_unchanged(s3, package)
    description = sagemaker.describe_model_package(ModelPackageName=package.arn)
    baselines = drift_baselines(description)
    quality_baselines(description)  # refused before anything is upserted
    body = POSTPROCESS.read_bytes()
    postprocess_uri = code_uri(stage_root(environment, stage), body, "postprocess.py")
    spec = definition.BatchSpec(
        region=environment.region,
        role_arn=environment.execution_role_arn,
        bucket=environment.artifact_bucket,
        project=environment.project_name,
        stage=stage,
        package_arn=package.arn,
        model_name=ensure_model(sagemaker, environment, stage, package),
        feature_code_uri=feature_code(s3, package),
        postprocess_code_uri=postprocess_uri,
        data_statistics_uri=baselines["data_statistics"],
        data_constraints_uri=baselines["data_constraints"],
        explainability_constraints_uri=baselines["explainability"],
        feature_headers=feature_headers(s3, baselines["explainability_config"]),
        transform_instances=int(settings.get("TransformInstanceCount", 2)),
    )
    pipeline = definition.get_pipeline(spec)
    document = pipeline.definition()
    upload(s3, postprocess_uri, body)
    for uri, staged in sdk_env.staged_files().items():
        upload(s3, uri, staged)
    tags = [
        {"Key": "sagemaker:project-name", "Value": environment.project_name},
        {"Key": "stage", "Value": stage},
    ]
    if environment.project_id:
        tags.append({"Key": "sagemaker:project-id", "Value": environment.project_id})
    pipeline.upsert(
        role_arn=environment.execution_role_arn,
        description=f"Batch inference ({stage}) with {package.label}",
        tags=tags,
    )
    record = {
        "PipelineName": spec.pipeline_name,
        "ModelPackageArn": package.arn,
        "ModelPackageVersion": package.version,
        "ModelName": spec.model_name,
        "FeatureCodeUrl": spec.feature_code_uri,
        "DefinitionSha256": hashlib.sha256(document.encode()).hexdigest(),
        "OutputRoot": spec.root,
    }
    print(f"Upserted {spec.pipeline_name} with {package.label} (model {spec.model_name})", flush=True)
    record["ModelQuality"] = upsert_quality(environment, stage, package, description, s3)
    build_dir.mkdir(parents=True, exist_ok=True)
    (build_dir / f"{stage}-batch.json").write_text(json.dumps(record, indent=2) + "\n")
    return record


def run(environment: Environment, stage: str, build_dir: Path, settings: dict) -> int:
    upsert(environment, stage, release.read(build_dir).package_arn, build_dir, settings)
    return 0
