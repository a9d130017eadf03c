"""The batch inference pipeline's definition (SageMaker SDK v3), pinned to one approved model package version.

    Preprocess (the package's own feature code) -> DataDriftCheck (data quality vs the package's baselines)
                                                -> Transform (the version's Model, N instances)
                                                -> AttributionDriftCheck (SHAP nDCG vs the package's baseline)
    all three -> Postprocess: predictions, drift summary, run history, the retraining rule (and its event)

Everything that identifies the model is fixed in the definition, never looked up at run time: the Model made
from the exact package ARN, the feature code URI (checked against its SHA-256 by upsert), and the baseline URIs
(Supplied*, so a later approval cannot change what this version is checked against). Parameters are the
operational knobs a schedule or a person sets per run. Nothing is cached: every run scores new data.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from deploy.batch import sdk_env

HERE = Path(__file__).parent
TRANSFORM_INSTANCE = "ml.m5.large"  # one of the package's transform_instances
MAX_PAYLOAD_MB = 6  # the InvokeEndpoint limit: a mini-batch the endpoint would take, the staging comparison holds
SHAP_SAMPLES = 100  # as the build's explainability baseline, so the attributions are comparable
SHAP_SEED = 123


@dataclass(frozen=True)
class BatchSpec:
    region: str
    role_arn: str
    bucket: str
    project: str
    stage: str
    package_arn: str
    model_name: str  # a SageMaker Model whose container is package_arn (made by upsert)
    feature_code_uri: str  # the package's FeatureCodeUrl, its digest checked
    postprocess_code_uri: str  # this repo's postprocess.py, content-addressed
    data_statistics_uri: str  # the package's DriftCheckBaselines
    data_constraints_uri: str
    explainability_constraints_uri: str
    feature_headers: tuple[str, ...]  # the encoded feature names, from the package's explainability config
    # Not a pipeline parameter: the SDK's TransformResources takes a plain int only (pydantic, 3.27): a stage setting.
    transform_instances: int = 2
    event_bus: str = "default"

    @property
    def pipeline_name(self) -> str:
        return pipeline_name(self.project, self.stage)

    @property
    def root(self) -> str:
        return f"s3://{self.bucket}/batch-inference/{self.project}/{self.stage}"


def pipeline_name(project: str, stage: str) -> str:
    return f"{project}-batch-inference-{stage}"


def get_pipeline(spec: BatchSpec):
    session = sdk_env.pipeline_session(spec.region, spec.bucket)
    sdk_env.stage_clarify_configs(f"{spec.root}/check-config")

    from sagemaker.core.clarify import DataConfig, ModelConfig, SHAPConfig
    from sagemaker.core.model_monitor import DatasetFormat
    from sagemaker.core.transformer import Transformer
    from sagemaker.core.workflow.execution_variables import ExecutionVariables
    from sagemaker.core.workflow.parameters import ParameterFloat, ParameterInteger, ParameterString
    from sagemaker.mlops.workflow.check_job_config import CheckJobConfig
    from sagemaker.mlops.workflow.clarify_check_step import ClarifyCheckStep, ModelExplainabilityCheckConfig
    from sagemaker.mlops.workflow.pipeline import Pipeline
    from sagemaker.mlops.workflow.quality_check_step import DataQualityCheckConfig, QualityCheckStep
    from sagemaker.mlops.workflow.steps import ProcessingStep, TransformStep

    from deploy.batch import step_io  # the SDK, after sdk_env's settings

    sdk_env.quiet()
    input_data = ParameterString("InputDataUrl", default_value=f"{spec.root}/input/")
    shards = ParameterInteger("ShardCount", default_value=4)
    processing_instance = ParameterString("ProcessingInstanceType", default_value="ml.m5.xlarge")
    distance_threshold = ParameterFloat("RetrainDistanceThreshold", default_value=0.2)
    ndcg_threshold = ParameterFloat("RetrainNdcgThreshold", default_value=0.9)
    breaches = ParameterInteger("RetrainBreaches", default_value=2)
    window = ParameterInteger("RetrainWindow", default_value=3)

    def execution_path(*parts: str):
        return step_io.execution_path(spec.root, *parts)

    def output(step: str, name: str):
        return step_io.output(spec.root, step, name)

    s3_input = step_io.s3_input

    def processor(job: str):
        return step_io.sklearn_processor(
            spec.region, spec.role_arn, session, processing_instance, f"{spec.project}-batch-{job}"
        )

    preprocess = ProcessingStep(
        name="Preprocess",
        step_args=processor("preprocess").run(
            code=spec.feature_code_uri,  # the build's own preprocess.py: the encoding travels with the model
            inputs=[s3_input("raw", input_data, "/opt/ml/processing/input/data")],
            outputs=[output("Preprocess", name) for name in ("features", "drift", "explain")],
            arguments=[
                "--mode",
                "batch",
                "--shards",
                shards.to_string(),
                "--input-dir",
                "/opt/ml/processing/input/data",
                "--output-dir",
                "/opt/ml/processing",
            ],
        ),
    )
    produced = {
        name: preprocess.properties.ProcessingOutputConfig.Outputs[name].S3Output.S3Uri
        for name in ("features", "drift", "explain")
    }
    check_job = CheckJobConfig(
        role=spec.role_arn,
        instance_count=1,
        instance_type="ml.m5.xlarge",
        sagemaker_session=session,
        base_job_name=f"{spec.project}-batch-check",
    )
    # Drift checks record violations and never fail the run: the retraining rule in Postprocess decides.
    record_only = {"skip_check": False, "register_new_baseline": False, "fail_on_violation": False}
    data_drift = QualityCheckStep(
        name="DataDriftCheck",
        quality_check_config=DataQualityCheckConfig(
            baseline_dataset=produced["drift"],
            dataset_format=DatasetFormat.csv(header=True),
            output_s3_uri=execution_path("DataDriftCheck"),
        ),
        check_job_config=check_job,
        supplied_baseline_statistics=spec.data_statistics_uri,
        supplied_baseline_constraints=spec.data_constraints_uri,
        **record_only,
    )
    transform = TransformStep(
        name="Transform",
        step_args=Transformer(
            model_name=spec.model_name,
            instance_count=spec.transform_instances,
            instance_type=TRANSFORM_INSTANCE,
            strategy="MultiRecord",
            max_payload=MAX_PAYLOAD_MB,
            assemble_with="Line",
            accept="text/csv",
            output_path=execution_path("Transform"),
            base_transform_job_name=f"{spec.project}-batch-transform",  # else the SDK calls DescribeModel to name it
            sagemaker_session=session,
        ).transform(data=produced["features"], data_type="S3Prefix", content_type="text/csv", split_type="Line"),
    )
    attribution_drift = ClarifyCheckStep(
        name="AttributionDriftCheck",
        clarify_check_config=ModelExplainabilityCheckConfig(
            data_config=DataConfig(
                s3_data_input_path=produced["explain"],
                s3_output_path=execution_path("AttributionDriftCheck"),
                s3_analysis_config_output_path=f"{spec.root}/check-config",  # a plain string (SDK trap 2)
                headers=list(spec.feature_headers),
                dataset_type="text/csv",
            ),
            model_config=ModelConfig(
                model_name=spec.model_name,
                instance_type="ml.m5.xlarge",
                instance_count=1,
                accept_type="text/csv",
                content_type="text/csv",
            ),
            explainability_config=SHAPConfig(
                num_clusters=1, num_samples=SHAP_SAMPLES, agg_method="mean_abs", seed=SHAP_SEED
            ),
        ),
        check_job_config=check_job,
        supplied_baseline_constraints=spec.explainability_constraints_uri,
        **record_only,
    )
    postprocess = ProcessingStep(
        name="Postprocess",
        depends_on=[data_drift, attribution_drift],
        step_args=processor("postprocess").run(
            code=spec.postprocess_code_uri,
            inputs=[
                s3_input(
                    "predictions",
                    transform.properties.TransformOutput.S3OutputPath,
                    "/opt/ml/processing/input/predictions",
                ),
                s3_input("features", produced["features"], "/opt/ml/processing/input/features"),
                s3_input("data_drift", execution_path("DataDriftCheck"), "/opt/ml/processing/input/data_drift"),
                s3_input(
                    "attribution_drift",
                    execution_path("AttributionDriftCheck"),
                    "/opt/ml/processing/input/attribution_drift",
                ),
                s3_input(
                    "baseline_statistics", spec.data_statistics_uri, "/opt/ml/processing/input/baseline_statistics"
                ),
                s3_input(
                    "baseline_explainability",
                    spec.explainability_constraints_uri,
                    "/opt/ml/processing/input/baseline_explainability",
                ),
            ],
            outputs=[output("Postprocess", name) for name in ("predictions", "summary", "report")],
            arguments=[
                "--execution-id",
                ExecutionVariables.PIPELINE_EXECUTION_ID,
                "--execution-arn",
                ExecutionVariables.PIPELINE_EXECUTION_ARN,
                "--history-uri",
                f"{spec.root}/history/",
                "--input-data-url",
                input_data,
                "--project",
                spec.project,
                "--stage",
                spec.stage,
                "--model-package-arn",
                spec.package_arn,
                "--event-bus",
                spec.event_bus,
                "--distance-threshold",
                distance_threshold.to_string(),
                "--ndcg-threshold",
                ndcg_threshold.to_string(),
                "--breaches",
                breaches.to_string(),
                "--window",
                window.to_string(),
            ],
        ),
    )
    return Pipeline(
        name=spec.pipeline_name,
        parameters=[input_data, shards, processing_instance, distance_threshold, ndcg_threshold, breaches, window],
        steps=[preprocess, data_drift, transform, attribution_drift, postprocess],
        sagemaker_session=session,
    )
