"""The model-quality pipeline's definition (SageMaker SDK v3): late labels against a batch run's predictions.

    JoinLabels (GroundTruthUrl's label files + the labelled batch runs' predictions)
      -> ModelQualityCheck (QualityCheck MODEL_QUALITY, Regression, vs the package's ModelQuality baseline, record only)
      -> QualitySummary: metrics beside the baseline, the violations (quality-summary.json)

Pinned like the batch pipeline: the package ARN and its DriftCheckBaselines.ModelQuality URIs (Supplied*) are fixed
in the definition. GroundTruthUrl is the one parameter: a single batch run's label folder
(`.../ground-truth/<batch-execution-id>/`) or the whole ground-truth prefix (every labelled run scored with this
version, what the S3 rule passes).
"""

from __future__ import annotations

from dataclasses import dataclass

from deploy.batch import sdk_env

LABEL = "rings"  # the build's label column (its explainability config's "label")


@dataclass(frozen=True)
class QualitySpec:
    region: str
    role_arn: str
    bucket: str
    project: str
    stage: str
    package_arn: str
    quality_code_uri: str  # this repo's quality.py, content-addressed
    quality_statistics_uri: str  # the package's DriftCheckBaselines.ModelQuality
    quality_constraints_uri: str
    label: str = LABEL

    @property
    def pipeline_name(self) -> str:
        return pipeline_name(self.project, self.stage)

    @property
    def batch_root(self) -> str:
        return f"s3://{self.bucket}/batch-inference/{self.project}/{self.stage}"

    @property
    def root(self) -> str:
        return f"{self.batch_root}/model-quality"


def pipeline_name(project: str, stage: str) -> str:
    return f"{project}-model-quality-{stage}"


def ground_truth_root(bucket: str, project: str, stage: str) -> str:
    return f"s3://{bucket}/batch-inference/{project}/{stage}/ground-truth/"


def get_pipeline(spec: QualitySpec):
    session = sdk_env.pipeline_session(spec.region, spec.bucket)

    from sagemaker.core.model_monitor import DatasetFormat
    from sagemaker.core.workflow.execution_variables import ExecutionVariables
    from sagemaker.core.workflow.parameters import ParameterString
    from sagemaker.mlops.workflow.check_job_config import CheckJobConfig
    from sagemaker.mlops.workflow.pipeline import Pipeline
    from sagemaker.mlops.workflow.quality_check_step import ModelQualityCheckConfig, QualityCheckStep
    from sagemaker.mlops.workflow.steps import ProcessingStep

    from deploy.batch import step_io  # the SDK, after sdk_env's settings

    sdk_env.quiet()
    ground_truth = ParameterString(
        "GroundTruthUrl", default_value=ground_truth_root(spec.bucket, spec.project, spec.stage)
    )
    processing_instance = ParameterString("ProcessingInstanceType", default_value="ml.m5.xlarge")

    def execution_path(*parts: str):
        return step_io.execution_path(spec.root, *parts)

    def output(step: str, name: str):
        return step_io.output(spec.root, step, name)

    s3_input = step_io.s3_input

    processor = step_io.sklearn_processor(
        spec.region, spec.role_arn, session, processing_instance, f"{spec.project}-quality"
    )
    join = ProcessingStep(
        name="JoinLabels",
        step_args=processor.run(
            code=spec.quality_code_uri,
            inputs=[s3_input("ground_truth", ground_truth, "/opt/ml/processing/input/ground_truth")],
            outputs=[output("JoinLabels", name) for name in ("joined", "report")],
            arguments=[
                "join",
                "--ground-truth-url",
                ground_truth,
                "--batch-root",
                spec.batch_root,
                "--model-package-arn",
                spec.package_arn,
                "--label",
                spec.label,
            ],
        ),
    )
    joined = join.properties.ProcessingOutputConfig.Outputs["joined"].S3Output.S3Uri
    check = QualityCheckStep(
        name="ModelQualityCheck",
        quality_check_config=ModelQualityCheckConfig(
            baseline_dataset=joined,
            dataset_format=DatasetFormat.csv(header=True),
            output_s3_uri=execution_path("ModelQualityCheck"),
            problem_type="Regression",
            inference_attribute="prediction",
            ground_truth_attribute=spec.label,
        ),
        check_job_config=CheckJobConfig(
            role=spec.role_arn,
            instance_count=1,
            instance_type="ml.m5.xlarge",
            sagemaker_session=session,
            base_job_name=f"{spec.project}-quality-check",
        ),
        supplied_baseline_statistics=spec.quality_statistics_uri,
        supplied_baseline_constraints=spec.quality_constraints_uri,
        # Violations are recorded, never fail the run: the summary reports them.
        skip_check=False,
        register_new_baseline=False,
        fail_on_violation=False,
    )
    summary = ProcessingStep(
        name="QualitySummary",
        depends_on=[check],
        step_args=processor.run(
            code=spec.quality_code_uri,
            inputs=[
                s3_input(
                    "join",
                    join.properties.ProcessingOutputConfig.Outputs["report"].S3Output.S3Uri,
                    "/opt/ml/processing/input/join",
                ),
                s3_input("check", execution_path("ModelQualityCheck"), "/opt/ml/processing/input/check"),
                s3_input(
                    "baseline_statistics", spec.quality_statistics_uri, "/opt/ml/processing/input/baseline_statistics"
                ),
                s3_input(
                    "baseline_constraints",
                    spec.quality_constraints_uri,
                    "/opt/ml/processing/input/baseline_constraints",
                ),
            ],
            outputs=[output("QualitySummary", "summary")],
            arguments=["summarize", "--execution-id", ExecutionVariables.PIPELINE_EXECUTION_ID],
        ),
    )
    return Pipeline(
        name=spec.pipeline_name,
        parameters=[ground_truth, processing_instance],
        steps=[join, check, summary],
        sagemaker_session=session,
    )
