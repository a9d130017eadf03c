"""The abalone SageMaker pipeline (SDK v3): preprocess -> baselines and checks -> train -> evaluate -> register.

    Preprocess -> DataQualityCheck
               -> Train -> Evaluate
                        -> CreateModel -> TransformTest -> ModelQualityCheck
                                       -> ModelExplainabilityCheck
    Preprocess, DataQualityCheck, Train -> ChampionGate (against the latest Approved version)
    all of them -> CheckEvaluation -+-> RegisterModel (mse <= MseThreshold and the gate passed)
                                    +-> FailEvaluation (otherwise, naming every failed comparison)

Each check computes a new baseline (statistics/constraints, or SHAP values) and, unless its Skip*Check
parameter says otherwise, checks the new data or model against the baseline of the latest Approved model
(or the Supplied* one). The registered package carries the new baselines as ModelMetrics and, as
DriftCheckBaselines, the ones the next build checks against (RegisterNew*Baseline says which).

ChampionGate (champion_gate.py) re-scores the latest Approved version on the new test split and compares
metrics, the label distribution and the training-set size within the Champion* parameters; it is never
cached (the champion may have changed since), and its figures go into the package's metadata.

`get_pipeline(...)` builds it without touching AWS: step scripts are addressed by their content
hash (`step_code()` lists them; `run_pipeline run` uploads them), so the same code always gives
the same definition bytes, and unchanged steps hit SageMaker's cache.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from pipelines import sdk_env

sdk_env.configure()  # before any sagemaker import: see sdk_env

from sagemaker.core import image_uris  # noqa: E402
from sagemaker.core.clarify import DataConfig, ModelConfig, SHAPConfig  # noqa: E402
from sagemaker.core.drift_check_baselines import DriftCheckBaselines  # noqa: E402
from sagemaker.core.model_metrics import FileSource, MetricsSource, ModelMetrics  # noqa: E402
from sagemaker.core.model_monitor import DatasetFormat  # noqa: E402
from sagemaker.core.processing import ScriptProcessor  # noqa: E402
from sagemaker.core.shapes import (  # noqa: E402
    ProcessingInput,
    ProcessingOutput,
    ProcessingS3Input,
    ProcessingS3Output,
)
from sagemaker.core.transformer import Transformer  # noqa: E402
from sagemaker.core.workflow.conditions import ConditionEquals, ConditionLessThanOrEqualTo  # noqa: E402
from sagemaker.core.workflow.execution_variables import ExecutionVariables  # noqa: E402
from sagemaker.core.workflow.functions import Join, JsonGet  # noqa: E402
from sagemaker.core.workflow.parameters import (  # noqa: E402
    ParameterBoolean,
    ParameterFloat,
    ParameterInteger,
    ParameterString,
)
from sagemaker.core.workflow.properties import PropertyFile  # noqa: E402
from sagemaker.mlops.workflow.check_job_config import CheckJobConfig  # noqa: E402
from sagemaker.mlops.workflow.clarify_check_step import ClarifyCheckStep, ModelExplainabilityCheckConfig  # noqa: E402
from sagemaker.mlops.workflow.condition_step import ConditionStep  # noqa: E402
from sagemaker.mlops.workflow.fail_step import FailStep  # noqa: E402
from sagemaker.mlops.workflow.model_step import ModelStep  # noqa: E402
from sagemaker.mlops.workflow.pipeline import Pipeline  # noqa: E402
from sagemaker.mlops.workflow.quality_check_step import (  # noqa: E402
    DataQualityCheckConfig,
    ModelQualityCheckConfig,
    QualityCheckStep,
)
from sagemaker.mlops.workflow.steps import CacheConfig, ProcessingStep, TrainingStep, TransformStep  # noqa: E402
from sagemaker.serve.model_builder import ModelBuilder  # noqa: E402
from sagemaker.train import ModelTrainer  # noqa: E402
from sagemaker.train.configs import Compute, InputData, OutputDataConfig, StoppingCondition  # noqa: E402

HERE = Path(__file__).parent
SKLEARN_VERSION = "1.2-1"
XGBOOST_VERSION = "1.7-1"
# The SDK does not accept a pipeline parameter here (pydantic int); the default would be 1 hour.
MAX_TRAINING_SECONDS = 3600
CACHE = CacheConfig(enable_caching=True, expire_after="P30D")

# Tunable XGBoost hyperparameters: pipeline parameter name -> (algorithm name, default).
HYPERPARAMETERS = {
    "NumRound": ("num_round", 100),
    "MaxDepth": ("max_depth", 5),
    "Eta": ("eta", 0.2),
    "Gamma": ("gamma", 4.0),
    "MinChildWeight": ("min_child_weight", 6.0),
    "Subsample": ("subsample", 0.7),
}
# Fixed so the algorithm behaves the same in the 1.7-1 container and in newer xgboost releases.
FIXED_HYPERPARAMETERS = {"objective": "reg:squarederror", "tree_method": "hist", "seed": 42}

# Lineage metadata keys on the registered model package; model-deploy reads TestDataUrl.
METADATA_GIT_COMMIT = "GitCommit"
METADATA_PIPELINE_URL = "GitLabPipelineUrl"
METADATA_INPUT_DATA = "InputDataUrl"
METADATA_TEST_DATA = "TestDataUrl"
METADATA_MSE = "Mse"
METADATA_RMSE = "Rmse"
# The champion gate's figures in the package's metadata (champion_gate.SUMMARY_KEYS).
GATE_METADATA = ("GateResult", "GateChampion", "GateRmse", "GateMae", "GateR2", "GateLabelShift", "GateTrainingSize")
# The feature encoding travels with the model: the exact preprocess.py this build ran (content-addressed URI) and
# its SHA-256. The deploy repo's batch inference runs that file (`--mode batch`) after checking the digest.
METADATA_FEATURE_CODE = "FeatureCodeUrl"
METADATA_FEATURE_CODE_DIGEST = "FeatureCodeSha256"

# The check steps, named as in AWS's check-step example: check -> (Skip*, RegisterNew*, Supplied* kinds).
CHECKS = {
    "DataQuality": ("Statistics", "Constraints"),
    "ModelQuality": ("Statistics", "Constraints"),
    "ModelExplainability": ("Constraints",),
}
# The columns of the encoded splits (preprocess.encode): the label first, then the features.
ENCODED_COLUMNS = [
    "rings",
    "length",
    "diameter",
    "height",
    "whole_weight",
    "shucked_weight",
    "viscera_weight",
    "shell_weight",
    "sex_F",
    "sex_I",
    "sex_M",
]
SHAP_SAMPLES = 100
SHAP_SEED = 123


def step_code(pipeline_name: str, default_bucket: str) -> dict[str, str]:
    """Step script path -> content-addressed S3 URI where the pipeline expects it."""
    code = {}
    for script in ("preprocess.py", "evaluate.py", "champion_gate.py"):
        path = HERE / script
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        code[str(path)] = f"s3://{default_bucket}/{pipeline_name}/code/{digest}/{script}"
    return code


def get_pipeline(
    region: str,
    role: str,
    default_bucket: str,
    pipeline_name: str = "abalone",
    model_package_group_name: str = "abalone",
    base_job_prefix: str = "abalone",
) -> Pipeline:
    """Build the pipeline. Nothing is sent to AWS until `upsert()`."""
    session = sdk_env.pipeline_session(region, default_bucket)
    sdk_env.stage_clarify_configs(f"s3://{default_bucket}/{pipeline_name}/check-config")
    code = {Path(path).name: uri for path, uri in step_code(pipeline_name, default_bucket).items()}
    feature_code_digest = hashlib.sha256((HERE / "preprocess.py").read_bytes()).hexdigest()

    input_data = ParameterString("InputDataUrl", default_value=f"s3://{default_bucket}/data/abalone/abalone.csv")
    processing_instance = ParameterString("ProcessingInstanceType", default_value="ml.m5.xlarge")
    training_instance = ParameterString("TrainingInstanceType", default_value="ml.m5.xlarge")
    split_seed = ParameterInteger("SplitSeed", default_value=42)
    mse_threshold = ParameterFloat("MseThreshold", default_value=6.0)
    # The champion gate's bounds: relative metric tolerance, label CDF distance, training-size ratio.
    metric_tolerance = ParameterFloat("ChampionMetricTolerance", default_value=0.05)
    label_shift_bound = ParameterFloat("ChampionLabelShiftBound", default_value=0.1)
    size_ratio = ParameterFloat("ChampionSizeRatio", default_value=1.5)
    approval_status = ParameterString("ModelApprovalStatus", default_value="PendingManualApproval")
    git_commit = ParameterString("GitCommit", default_value="unknown")
    pipeline_url = ParameterString("GitLabPipelineUrl", default_value="none")
    tuning = {name: _parameter(name, default) for name, (_, default) in HYPERPARAMETERS.items()}
    check_parameters = {
        check: {
            "skip": ParameterBoolean(f"Skip{check}Check", default_value=False),
            "register": ParameterBoolean(f"RegisterNew{check}Baseline", default_value=False),
            **{kind: ParameterString(f"SuppliedBaseline{kind}{check}", default_value="") for kind in kinds},
        }
        for check, kinds in CHECKS.items()
    }

    def output(step: str, name: str) -> ProcessingOutput:
        # Execution-scoped output paths never collide; SageMaker leaves outputs out of the cache key.
        uri = Join(
            on="/", values=["s3:/", default_bucket, pipeline_name, ExecutionVariables.PIPELINE_EXECUTION_ID, step, name]
        )
        return ProcessingOutput(
            output_name=name,
            s3_output=ProcessingS3Output(
                s3_uri=uri, local_path=f"/opt/ml/processing/{name}", s3_upload_mode="EndOfJob"
            ),
        )

    def s3_input(name: str, uri, local_path: str) -> ProcessingInput:
        return ProcessingInput(
            input_name=name,
            s3_input=ProcessingS3Input(
                s3_uri=uri, local_path=local_path, s3_data_type="S3Prefix", s3_input_mode="File"
            ),
        )

    def processor(image: str, job: str) -> ScriptProcessor:
        return ScriptProcessor(
            image_uri=image,
            command=["python3"],
            instance_type=processing_instance,
            instance_count=1,
            base_job_name=f"{base_job_prefix}-{job}",
            sagemaker_session=session,
            role=role,
        )

    sklearn_image = image_uris.retrieve(
        framework="sklearn", region=region, version=SKLEARN_VERSION, py_version="py3", instance_type="ml.m5.xlarge"
    )
    xgboost_image = image_uris.retrieve(framework="xgboost", region=region, version=XGBOOST_VERSION)

    preprocess = ProcessingStep(
        name="Preprocess",
        step_args=processor(sklearn_image, "preprocess").run(
            code=code["preprocess.py"],
            # Not /opt/ml/processing/input itself: SageMaker puts the step code in its code/ subfolder.
            inputs=[s3_input("raw", input_data, "/opt/ml/processing/input/data")],
            outputs=[output("Preprocess", name) for name in ("train", "validation", "test", "baseline", "explain")],
            arguments=[
                "--input-dir",
                "/opt/ml/processing/input/data",
                "--output-dir",
                "/opt/ml/processing",
                "--seed",
                split_seed.to_string(),
            ],
        ),
        cache_config=CACHE,
    )
    split_uri = {
        name: preprocess.properties.ProcessingOutputConfig.Outputs[name].S3Output.S3Uri
        for name in ("train", "validation", "test", "baseline", "explain")
    }

    def execution_path(*parts: str):
        return Join(
            on="/", values=["s3:/", default_bucket, pipeline_name, ExecutionVariables.PIPELINE_EXECUTION_ID, *parts]
        )

    check_job = CheckJobConfig(
        role=role,
        instance_count=1,
        instance_type="ml.m5.xlarge",
        sagemaker_session=session,
        base_job_name=f"{base_job_prefix}-check",
    )

    def check_arguments(check: str) -> dict:
        values = check_parameters[check]
        arguments = {
            "skip_check": values["skip"],
            "register_new_baseline": values["register"],
            "check_job_config": check_job,
            "model_package_group_name": model_package_group_name,
            "cache_config": CACHE,
            "supplied_baseline_constraints": values["Constraints"],
        }
        if "Statistics" in values:
            arguments["supplied_baseline_statistics"] = values["Statistics"]
        return arguments

    data_quality = QualityCheckStep(
        name="DataQualityCheck",
        quality_check_config=DataQualityCheckConfig(
            baseline_dataset=split_uri["baseline"],
            dataset_format=DatasetFormat.csv(header=True),
            output_s3_uri=execution_path("DataQualityCheck"),
        ),
        **check_arguments("DataQuality"),
    )

    trainer = ModelTrainer(
        training_image=xgboost_image,
        role=role,
        sagemaker_session=session,
        base_job_name=f"{base_job_prefix}-train",
        compute=Compute(instance_type=training_instance, instance_count=1),
        stopping_condition=StoppingCondition(max_runtime_in_seconds=MAX_TRAINING_SECONDS),
        output_data_config=OutputDataConfig(s3_output_path=f"s3://{default_bucket}/{pipeline_name}/models"),
        hyperparameters={
            **FIXED_HYPERPARAMETERS,
            **{algo_name: tuning[name] for name, (algo_name, _) in HYPERPARAMETERS.items()},
        },
    )
    train = TrainingStep(
        name="Train",
        step_args=trainer.train(
            input_data_config=[
                InputData(channel_name=channel, data_source=split_uri[channel], content_type="text/csv")
                for channel in ("train", "validation")
            ]
        ),
        cache_config=CACHE,
    )
    model_data = train.properties.ModelArtifacts.S3ModelArtifacts

    evaluation_report = PropertyFile(name="EvaluationReport", output_name="evaluation", path="evaluation.json")
    evaluate = ProcessingStep(
        name="Evaluate",
        step_args=processor(xgboost_image, "evaluate").run(
            code=code["evaluate.py"],
            inputs=[
                s3_input("model", model_data, "/opt/ml/processing/model"),
                s3_input("test", split_uri["test"], "/opt/ml/processing/test"),
            ],
            outputs=[output("Evaluate", "evaluation")],
            arguments=[
                "--model-dir",
                "/opt/ml/processing/model",
                "--test-dir",
                "/opt/ml/processing/test",
                "--output-dir",
                "/opt/ml/processing/evaluation",
            ],
        ),
        property_files=[evaluation_report],
        cache_config=CACHE,
    )
    model = ModelStep(
        name="CreateModel",
        step_args=ModelBuilder(
            image_uri=xgboost_image,
            s3_model_data_url=model_data,
            sagemaker_session=session,
            role_arn=role,
            log_level=logging.ERROR,
        ).build(),
    )
    transform = TransformStep(
        name="TransformTest",
        step_args=Transformer(
            model_name=model.properties.ModelName,
            instance_count=1,
            instance_type="ml.m5.xlarge",
            output_path=execution_path("TransformTest"),
            accept="text/csv",
            assemble_with="Line",
            sagemaker_session=session,
        ).transform(
            data=split_uri["test"],
            content_type="text/csv",
            split_type="Line",
            input_filter="$[1:]",  # the features; the label stays in the record ...
            join_source="Input",
            output_filter="$[0,-1]",  # ... and comes out beside the prediction: rings,prediction
        ),
        cache_config=CACHE,
    )
    model_quality = QualityCheckStep(
        name="ModelQualityCheck",
        quality_check_config=ModelQualityCheckConfig(
            baseline_dataset=transform.properties.TransformOutput.S3OutputPath,
            dataset_format=DatasetFormat.csv(header=False),
            output_s3_uri=execution_path("ModelQualityCheck"),
            problem_type="Regression",
            ground_truth_attribute="_c0",
            inference_attribute="_c1",
        ),
        **check_arguments("ModelQuality"),
    )
    explainability = ClarifyCheckStep(
        name="ModelExplainabilityCheck",
        clarify_check_config=ModelExplainabilityCheckConfig(
            data_config=DataConfig(
                s3_data_input_path=split_uri["explain"],
                s3_output_path=execution_path("ModelExplainabilityCheck"),
                # A plain string (trap 2): sdk_env stages the config content-addressed under it.
                s3_analysis_config_output_path=f"s3://{default_bucket}/{pipeline_name}/check-config",
                label="rings",
                headers=ENCODED_COLUMNS,
                dataset_type="text/csv",
            ),
            model_config=ModelConfig(
                model_name=model.properties.ModelName,
                instance_type="ml.m5.xlarge",
                instance_count=1,
                accept_type="text/csv",
                content_type="text/csv",
            ),
            # No fixed baseline row: Clarify takes the K-means centre of the explained rows (their mean).
            explainability_config=SHAPConfig(
                num_clusters=1, num_samples=SHAP_SAMPLES, agg_method="mean_abs", seed=SHAP_SEED
            ),
        ),
        **check_arguments("ModelExplainability"),
    )
    explainability_config = explainability.clarify_check_config.monitoring_analysis_config_uri

    comparison = PropertyFile(name="ChampionComparison", output_name="comparison", path="comparison.json")
    gate = ProcessingStep(
        name="ChampionGate",
        step_args=processor(xgboost_image, "champion-gate").run(
            code=code["champion_gate.py"],
            inputs=[
                s3_input("model", model_data, "/opt/ml/processing/model"),
                s3_input("test", split_uri["test"], "/opt/ml/processing/test"),
                s3_input(
                    "statistics", data_quality.properties.CalculatedBaselineStatistics, "/opt/ml/processing/statistics"
                ),
            ],
            outputs=[output("ChampionGate", "comparison")],
            arguments=[
                "--group",
                model_package_group_name,
                "--tolerance",
                metric_tolerance.to_string(),
                "--label-bound",
                label_shift_bound.to_string(),
                "--size-ratio",
                size_ratio.to_string(),
            ],
        ),
        property_files=[comparison],
        # No cache_config: a cached answer would speak for a champion that may have changed since.
    )
    gate_passed = JsonGet(step_name=gate.name, property_file=comparison, json_path="passed")
    gate_message = JsonGet(step_name=gate.name, property_file=comparison, json_path="message")

    evaluation_uri = evaluate.properties.ProcessingOutputConfig.Outputs["evaluation"].S3Output.S3Uri
    mse = JsonGet(step_name=evaluate.name, property_file=evaluation_report, json_path="regression_metrics.mse.value")
    # Rounded for people (metadata, the approval message, the failure message); the condition uses the exact value.
    mse_shown, rmse_shown = (
        JsonGet(step_name=evaluate.name, property_file=evaluation_report, json_path=f"summary.{name}")
        for name in ("mse", "rmse")
    )

    register = ModelStep(
        name="RegisterModel",
        step_args=ModelBuilder(
            image_uri=xgboost_image,
            s3_model_data_url=model_data,
            sagemaker_session=session,
            role_arn=role,
            log_level=logging.ERROR,  # its default, DEBUG, floods CI logs
        ).register(
            model_package_group_name=model_package_group_name,
            content_types=["text/csv"],
            response_types=["text/csv"],
            inference_instances=["ml.t2.medium", "ml.m5.large", "ml.m5.xlarge"],
            transform_instances=["ml.m5.large"],
            approval_status=approval_status,
            model_metrics=ModelMetrics(
                model_statistics=_json(Join(on="/", values=[evaluation_uri, "evaluation.json"])),
                model_constraints=_json(model_quality.properties.CalculatedBaselineConstraints),
                model_data_statistics=_json(data_quality.properties.CalculatedBaselineStatistics),
                model_data_constraints=_json(data_quality.properties.CalculatedBaselineConstraints),
                explainability=_json(explainability.properties.CalculatedBaselineConstraints),
            ),
            drift_check_baselines=DriftCheckBaselines(
                model_statistics=_json(model_quality.properties.BaselineUsedForDriftCheckStatistics),
                model_constraints=_json(model_quality.properties.BaselineUsedForDriftCheckConstraints),
                model_data_statistics=_json(data_quality.properties.BaselineUsedForDriftCheckStatistics),
                model_data_constraints=_json(data_quality.properties.BaselineUsedForDriftCheckConstraints),
                explainability_constraints=_json(explainability.properties.BaselineUsedForDriftCheckConstraints),
                explainability_config_file=FileSource(s3_uri=explainability_config, content_type="application/json"),
            ),
            customer_metadata_properties={
                METADATA_GIT_COMMIT: git_commit,
                METADATA_PIPELINE_URL: pipeline_url,
                METADATA_INPUT_DATA: input_data,
                METADATA_TEST_DATA: split_uri["test"],
                # The metrics themselves, not only the report's URI: the approval request alert quotes them
                # from the package's creation event (metadata values are strings, hence the Join).
                METADATA_MSE: Join(on="", values=[mse_shown]),
                METADATA_RMSE: Join(on="", values=[rmse_shown]),
                # The champion comparison, so the approver sees it beside the metrics.
                **{
                    key: Join(
                        on="",
                        values=[JsonGet(step_name=gate.name, property_file=comparison, json_path=f"summary.{key}")],
                    )
                    for key in GATE_METADATA
                },
                METADATA_FEATURE_CODE: code["preprocess.py"],
                METADATA_FEATURE_CODE_DIGEST: feature_code_digest,
            },
        ),
    )
    fail = FailStep(
        name="FailEvaluation",
        error_message=Join(
            on=" ",
            values=[
                "Model MSE",
                mse_shown,
                "(must be at most MseThreshold =",
                Join(on="", values=[mse_threshold, ");"]),
                gate_message,
            ],
        ),
    )
    check = ConditionStep(
        name="CheckEvaluation",
        depends_on=[data_quality, model_quality, explainability],
        # The absolute floor and the champion gate: both must pass.
        conditions=[
            ConditionLessThanOrEqualTo(left=mse, right=mse_threshold),
            ConditionEquals(left=gate_passed, right=1),
        ],
        if_steps=[register],
        else_steps=[fail],
    )
    return Pipeline(
        name=pipeline_name,
        parameters=[
            input_data,
            processing_instance,
            training_instance,
            split_seed,
            *tuning.values(),
            mse_threshold,
            metric_tolerance,
            label_shift_bound,
            size_ratio,
            *(parameter for values in check_parameters.values() for parameter in values.values()),
            approval_status,
            git_commit,
            pipeline_url,
        ],
        steps=[preprocess, data_quality, train, evaluate, model, transform, model_quality, explainability, gate, check],
        sagemaker_session=session,
    )


def _parameter(name: str, default):
    kind = ParameterInteger if isinstance(default, int) else ParameterFloat
    return kind(name, default_value=default)


def _json(uri) -> MetricsSource:
    return MetricsSource(content_type="application/json", s3_uri=uri)
