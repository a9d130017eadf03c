"""batch-upsert STAGE: put the stage's batch inference pipeline on the release's approved package version.

Everything the pipeline needs about the model is resolved here, once, and fixed in the definition: the package
(re-read: it must still be Approved, its artifacts unchanged), a SageMaker Model made from that exact package ARN,
the package's feature code (its SHA-256 checked against FeatureCodeSha256), its DriftCheckBaselines and the
encoded feature names its explainability config names.

Three parts, so that production-deploy can skip the SDK (a ~3 s import): `plan` (boto3) resolves what both
pipelines are built from, `render` (the SDK) turns a plan into the two definitions, `put` (boto3) uploads the code
and creates or updates the pipelines. batch-staging renders prod's plan too, beside staging's, into
build/prod-batch-rendered.json; production-deploy plans prod itself and puts those definitions when its plan is
the one they were rendered from (the definitions are a function of the plan: same plan, same bytes), and renders
them itself otherwise (for example a variable scoped to the production environment changed a value).
"""

from __future__ import annotations

import base64
import dataclasses
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
RENDERED_AHEAD = "{stage}-batch-rendered.json"  # written by batch-staging for prod, read by production-deploy
INLINE_DEFINITION_LIMIT = 100 * 1024  # the SDK puts larger definitions in S3 first; ours are ~10 KB, so refused


@dataclasses.dataclass(frozen=True)
class Plan:
    """What a stage's two pipelines are built from: their specs and the code they upload (URI -> bytes)."""

    batch: definition.BatchSpec
    quality: quality_definition.QualitySpec
    code: dict[str, bytes]

    def specs(self) -> dict:
        """Both specs as JSON values (what a rendering is checked against)."""
        specs = {"batch": dataclasses.asdict(self.batch), "quality": dataclasses.asdict(self.quality)}
        return json.loads(json.dumps(specs))


@dataclasses.dataclass(frozen=True)
class Rendered:
    """The two pipeline definitions of a plan, and the analysis configs ClarifyCheckStep references (URI -> bytes)."""

    batch_definition: str
    quality_definition: str
    staged: dict[str, bytes]


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


def quality_spec(environment: Environment, stage: str, package: registry.ModelPackage, description: dict, s3):
    """The stage's model-quality pipeline, on the same package and its ModelQuality baseline; the label column is
    the one the package's explainability config names (the build's label)."""
    baselines = quality_baselines(description)
    config_uri = drift_baselines(description)["explainability_config"]
    label = json.loads(registry.read_s3_text(s3, config_uri)).get("label") or quality_definition.LABEL
    return quality_definition.QualitySpec(
        region=environment.region,
        role_arn=environment.execution_role_arn,
        bucket=environment.artifact_bucket,
        project=environment.project_name,
        stage=stage,
        package_arn=package.arn,
        quality_code_uri=code_uri(stage_root(environment, stage), QUALITY.read_bytes(), "quality.py"),
        quality_statistics_uri=baselines["Statistics"],
        quality_constraints_uri=baselines["Constraints"],
        label=label,
    )


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


def tags(environment: Environment, stage: str) -> list[dict]:
    found = [
        {"Key": "sagemaker:project-name", "Value": environment.project_name},
        {"Key": "stage", "Value": stage},
    ]
    if environment.project_id:
        found.append({"Key": "sagemaker:project-id", "Value": environment.project_id})
    return found


def plan(environment: Environment, stage: str, package: registry.ModelPackage, description: dict, s3, settings: dict):
    """Both pipelines' specs for this stage and version, from the package and this repo's code (boto3 only)."""
    baselines = drift_baselines(description)
    postprocess = POSTPROCESS.read_bytes()
    batch = definition.BatchSpec(
        region=environment.region,
        role_arn=environment.execution_role_arn,
        bucket=environment.artifact_bucket,
        project=environment.project_name,
        stage=stage,
        package_arn=package.arn,
        model_name=model_name(environment.project_name, stage, package.version),
        feature_code_uri=feature_code(s3, package),
        postprocess_code_uri=code_uri(stage_root(environment, stage), postprocess, "postprocess.py"),
        data_statistics_uri=baselines["data_statistics"],
        data_constraints_uri=baselines["data_constraints"],
        explainability_constraints_uri=baselines["explainability"],
        feature_headers=feature_headers(s3, baselines["explainability_config"]),
        transform_instances=int(settings.get("TransformInstanceCount", 2)),
    )
    quality = quality_spec(environment, stage, package, description, s3)
    code = {batch.postprocess_code_uri: postprocess, quality.quality_code_uri: QUALITY.read_bytes()}
    return Plan(batch, quality, code)


def render(planned: Plan) -> Rendered:
    """The two definitions, built with the SageMaker SDK (imported here, and only here)."""
    batch_definition = definition.get_pipeline(planned.batch).definition()
    staged = sdk_env.staged_files()  # the batch pipeline's Clarify configs, before the next build clears them
    quality_definition_text = quality_definition.get_pipeline(planned.quality).definition()
    return Rendered(batch_definition, quality_definition_text, staged)


def write_rendered(build_dir: Path, planned: Plan, rendered: Rendered) -> Path:
    build_dir.mkdir(parents=True, exist_ok=True)
    path = build_dir / RENDERED_AHEAD.format(stage=planned.batch.stage)
    document = {
        "plan": planned.specs(),
        "batch_definition": rendered.batch_definition,
        "quality_definition": rendered.quality_definition,
        "staged": {uri: base64.b64encode(body).decode() for uri, body in rendered.staged.items()},
    }
    path.write_text(json.dumps(document, indent=2) + "\n")
    return path


def rendered_ahead(build_dir: Path, planned: Plan) -> Rendered | None:
    """The definitions batch-staging rendered for this plan (build/<stage>-batch-rendered.json); None, saying why,
    when there are none or they were rendered from another plan. A file that claims this plan but whose definitions
    do not reference it is refused."""
    path = build_dir / RENDERED_AHEAD.format(stage=planned.batch.stage)
    if not path.is_file():
        return None
    document = json.loads(path.read_text())
    if document.get("plan") != planned.specs():
        changed = sorted(
            f"{kind}.{key}"
            for kind, spec in planned.specs().items()
            for key, value in spec.items()
            if (document.get("plan") or {}).get(kind, {}).get(key) != value
        )
        print(f"{path.name} was rendered from another plan ({', '.join(changed)} differ): rendering here", flush=True)
        return None
    staged = {uri: base64.b64decode(body) for uri, body in document["staged"].items()}
    expected = [planned.batch.model_name, planned.batch.feature_code_uri, planned.batch.postprocess_code_uri]
    expected_quality = [planned.quality.quality_code_uri, planned.quality.quality_statistics_uri]
    unreferenced = [text for text in expected if text not in document["batch_definition"]]
    unreferenced += [text for text in expected_quality if text not in document["quality_definition"]]
    # The Clarify configs are content-addressed (sdk_env.stage_clarify_configs): each body must hash to its URI.
    unreferenced += [uri for uri, body in staged.items() if hashlib.sha256(body).hexdigest()[:16] not in uri]
    if unreferenced:
        raise DeployError(
            f"{path} names this plan but its definitions do not reference {', '.join(unreferenced)}: it was edited "
            "after batch-staging wrote it; run the deploy pipeline again"
        )
    return Rendered(document["batch_definition"], document["quality_definition"], staged)


def put_pipeline(sagemaker, name: str, document: str, role_arn: str, description: str, tags_: list[dict]) -> None:
    """Create the pipeline, or update it if it exists, as the SDK's Pipeline.upsert does (3.27.*): CreatePipeline;
    on "already exists", UpdatePipeline and AddTags with the existing tags kept. The same calls, so the deploy roles'
    policies stay the SDK's."""
    if len(document.encode()) >= INLINE_DEFINITION_LIMIT:
        raise DeployError(f"the definition of {name} is {len(document.encode())} bytes: over CreatePipeline's limit")
    arguments = {"PipelineName": name, "RoleArn": role_arn, "PipelineDefinition": document}
    arguments["PipelineDescription"] = description
    try:
        sagemaker.create_pipeline(**arguments, Tags=tags_)
        return
    except ClientError as error:
        if not _already_exists(error):
            raise
    arn = sagemaker.update_pipeline(**arguments)["PipelineArn"]
    kept = [tag for tag in sagemaker.list_tags(ResourceArn=arn)["Tags"] if tag["Key"] not in {t["Key"] for t in tags_}]
    sagemaker.add_tags(ResourceArn=arn, Tags=[*tags_, *kept])


def _already_exists(error: ClientError) -> bool:
    # The SDK's own test (sagemaker.core.common_utils._is_resource_already_exists_error), not importable here.
    answer = error.response.get("Error", {})
    return answer.get("Code") in ("ValidationException", "ResourceInUse") and any(
        pattern in answer.get("Message", "")
        for pattern in ("Cannot create already existing", "already exists", "must be unique within an AWS account")
    )


def put(environment: Environment, planned: Plan, rendered: Rendered, package: registry.ModelPackage, sagemaker, s3):
    """The Model, the code and Clarify configs in S3, then both pipelines; returns the batch record."""
    batch, quality, stage = planned.batch, planned.quality, planned.batch.stage
    ensure_model(sagemaker, environment, stage, package)
    for uri, body in {**planned.code, **rendered.staged}.items():
        upload(s3, uri, body)
    put_pipeline(
        sagemaker,
        batch.pipeline_name,
        rendered.batch_definition,
        environment.execution_role_arn,
        f"Batch inference ({stage}) with {package.label}",
        tags(environment, stage),
    )
    print(f"Upserted {batch.pipeline_name} with {package.label} (model {batch.model_name})", flush=True)
    put_pipeline(
        sagemaker,
        quality.pipeline_name,
        rendered.quality_definition,
        environment.execution_role_arn,
        f"Model quality ({stage}) of {package.label} with late labels",
        tags(environment, stage),
    )
    print(f"Upserted {quality.pipeline_name} with {package.label} (labels under {quality.batch_root}/ground-truth/)")
    return {
        "PipelineName": batch.pipeline_name,
        "ModelPackageArn": package.arn,
        "ModelPackageVersion": package.version,
        "ModelName": batch.model_name,
        "FeatureCodeUrl": batch.feature_code_uri,
        "DefinitionSha256": hashlib.sha256(rendered.batch_definition.encode()).hexdigest(),
        "OutputRoot": batch.root,
        "ModelQuality": {
            "PipelineName": quality.pipeline_name,
            "GroundTruthUrl": quality_definition.ground_truth_root(quality.bucket, quality.project, stage),
            "ModelQualityBaseline": {
                "Statistics": quality.quality_statistics_uri,
                "Constraints": quality.quality_constraints_uri,
            },
            "DefinitionSha256": hashlib.sha256(rendered.quality_definition.encode()).hexdigest(),
        },
    }


def checked_plan(environment: Environment, stage: str, package_arn: str, settings: dict):
    """The package re-read (still Approved, deployable, artifacts unchanged) and the stage's plan for it."""
    sagemaker = aws.client("sagemaker", environment.region)
    s3 = aws.client("s3", environment.region)
    package = registry.require_still_approved(sagemaker, package_arn)
    registry.require_deployable(package, environment.model_package_group)
    artifacts.require_unchanged(s3, package)
    description = sagemaker.describe_model_package(ModelPackageName=package.arn)
    quality_baselines(description)  # refused before anything is upserted
    return package, plan(environment, stage, package, description, s3, settings)


def upsert(environment: Environment, stage: str, package_arn: str, build_dir: Path, settings: dict) -> dict:
    """Put the stage's two pipelines on the version: with the definitions batch-staging rendered for this very
    plan when build/ has them (no SDK), else rendered here."""
    package, planned = checked_plan(environment, stage, package_arn, settings)
    rendered = rendered_ahead(build_dir, planned)
    if rendered is None:
        rendered = render(planned)
    else:
        print(f"{stage}: the batch definitions batch-staging rendered for {package.label} (no SDK import)", flush=True)
    sagemaker = aws.client("sagemaker", environment.region)
    record = put(environment, planned, rendered, package, sagemaker, aws.client("s3", environment.region))
    build_dir.mkdir(parents=True, exist_ok=True)
    (build_dir / f"{stage}-batch.json").write_text(json.dumps(record, indent=2) + "\n")
    return record


def render_ahead(environment: Environment, stage: str, package_arn: str, build_dir: Path, settings: dict) -> Path:
    """Render another stage's definitions now (batch-staging, for prod), for its deploy job to put without the SDK.

    Planned without `checked_plan`'s checks: batch-staging's own upsert has just made them (the model artifact's
    SHA-256 among them, a whole download), and the deploy job makes them again before it puts anything."""
    sagemaker, s3 = aws.client("sagemaker", environment.region), aws.client("s3", environment.region)
    description = sagemaker.describe_model_package(ModelPackageName=package_arn)
    package = registry.ModelPackage.from_description(description)
    planned = plan(environment, stage, package, description, s3, settings)
    return write_rendered(build_dir, planned, render(planned))


def run(environment: Environment, stage: str, build_dir: Path, settings: dict) -> int:
    upsert(environment, stage, release.read(build_dir).package_arn, build_dir, settings)
    return 0
