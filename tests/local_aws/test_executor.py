"""The local pipeline executor runs the real pipeline definition, as SageMaker would, on the local stack.

`run_pipeline run` is the same command CI runs against AWS; only the environment differs.
"""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import boto3
import numpy as np
import pandas as pd
import pytest
import xgboost

from local_aws import LocalStack
from local_aws.sagemaker_runtime import models
from pipelines.abalone import preprocess

SKLEARN_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"

REPO_ROOT = Path(__file__).resolve().parents[2]
ABALONE_CSV = REPO_ROOT.parent / "shared" / "datasets" / "abalone.csv"
ROLE = "arn:aws:iam::123456789012:role/pipeline"
BUCKET = "sagemaker-local-artifacts"
PIPELINE = "abalone-build"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with pytest.MonkeyPatch.context() as env, LocalStack(state_dir=tmp_path_factory.mktemp("executor")) as running:
        for name, value in running.env.items():
            env.setenv(name, value)
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "CI_COMMIT_SHA", "CI_PIPELINE_URL", "INPUT_DATA_URL"):
            env.delenv(name, raising=False)
        boto3.client("s3").upload_file(str(ABALONE_CSV), BUCKET, "data/abalone/abalone.csv")
        yield running


def run(*extra: str) -> int:
    """`run_pipeline run`, polling twice a second: each poll costs ~6 ms of CPU (client and stack), so a faster
    poll spends more CPU than the wall time it saves on a busy machine."""
    from pipelines import run_pipeline

    args = ["run", "--role-arn", ROLE, "--bucket", BUCKET, "--poll-seconds", "0.5", *extra]
    return run_pipeline.main(args)


def latest_execution(pipeline: str = PIPELINE) -> tuple[dict, dict[str, dict]]:
    sagemaker = boto3.client("sagemaker")
    arn = sagemaker.list_pipeline_executions(PipelineName=pipeline)["PipelineExecutionSummaries"][0]
    arn = arn["PipelineExecutionArn"]
    pages = sagemaker.get_paginator("list_pipeline_execution_steps").paginate(PipelineExecutionArn=arn)
    steps = [step for page in pages for step in page["PipelineExecutionSteps"]]  # more than one page of 10
    return sagemaker.describe_pipeline_execution(PipelineExecutionArn=arn), {s["StepName"]: s for s in steps}


def read_s3(uri: str) -> bytes:
    bucket, key = uri.removeprefix("s3://").split("/", 1)
    return boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()


def job_folders(stack) -> set[str]:
    jobs = Path(stack.state_dir) / "jobs"
    return {p.name for p in jobs.iterdir()} if jobs.exists() else set()


@pytest.fixture(scope="module")
def cold_run(stack):
    started = time.monotonic()
    assert run("-p", "GitCommit=abc123") == 0
    execution, steps = latest_execution()
    return {"execution": execution, "steps": steps, "seconds": time.monotonic() - started}


def test_real_definition_runs_end_to_end_and_registers_the_evaluated_model(cold_run):
    execution, steps = cold_run["execution"], cold_run["steps"]
    assert execution["PipelineExecutionStatus"] == "Succeeded"
    assert set(steps) == {
        "Preprocess",
        "DataQualityCheck",
        "Train",
        "Evaluate",
        "CreateModel",
        "TransformTest",
        "ModelQualityCheck",
        "ModelExplainabilityCheck",
        "ChampionGate",
        "CheckEvaluation",
        "RegisterModel",
    }
    assert all(s["StepStatus"] == "Succeeded" and "CacheHitResult" not in s for s in steps.values())
    assert steps["CheckEvaluation"]["Metadata"]["Condition"]["Outcome"] == "True"

    package_arn = steps["RegisterModel"]["Metadata"]["RegisterModel"]["Arn"]
    package = boto3.client("sagemaker").describe_model_package(ModelPackageName=package_arn)
    assert package["ModelApprovalStatus"] == "PendingManualApproval"
    assert package["CustomerMetadataProperties"]["GitCommit"] == "abc123"
    # No champion yet: the gate passed and the package says so.
    assert package["CustomerMetadataProperties"]["GateResult"] == "passed (no Approved champion)"

    # The registered metrics are the evaluate step's evaluation.json ...
    evaluation = json.loads(read_s3(package["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"]))
    rmse = evaluation["regression_metrics"]["rmse"]["value"]
    assert 1.8 < rmse < 2.6, evaluation
    # ... and that file is the truth about the registered model on the registered test split.
    # The 1.7-1 image saves XGBoost's binary format, which today's xgboost reads only through the runtime's
    # conversion (by the image's own xgboost): the same path the endpoint takes.
    model_tar = read_s3(package["InferenceSpecification"]["Containers"][0]["ModelDataUrl"])
    booster = models.load_predictor(model_tar, "registered model").booster
    test = pd.read_csv(
        io.BytesIO(read_s3(package["CustomerMetadataProperties"]["TestDataUrl"] + "/test.csv")), header=None
    )
    predictions = booster.predict(xgboost.DMatrix(test.iloc[:, 1:].to_numpy()))
    assert float(np.sqrt(np.mean((test[0].to_numpy() - predictions) ** 2))) == pytest.approx(rmse, rel=1e-6)
    assert evaluation["test_rows"] == len(test) == 626

    # First run (no Approved package): the checks are skipped, each registers the baseline it calculated.
    metrics, drift = package["ModelMetrics"], package["DriftCheckBaselines"]
    data_quality = steps["DataQualityCheck"]["Metadata"]["QualityCheck"]
    assert data_quality["SkipCheck"] is True and data_quality["RegisterNewBaseline"] is True
    assert metrics["ModelDataQuality"]["Statistics"]["S3Uri"] == data_quality["CalculatedBaselineStatistics"]
    assert drift["ModelDataQuality"]["Constraints"]["S3Uri"] == data_quality["CalculatedBaselineConstraints"]
    statistics = json.loads(read_s3(data_quality["CalculatedBaselineStatistics"]))
    assert statistics["dataset"]["item_count"] == 2924  # the training split, as the model receives it
    # The endpoint's input, in its order (Model Monitor maps headerless captures by it): no label, sex encoded.
    assert [f["name"] for f in statistics["features"]] == preprocess.ENCODED_FEATURES
    model_quality = steps["ModelQualityCheck"]["Metadata"]["QualityCheck"]
    quality = json.loads(read_s3(model_quality["CalculatedBaselineStatistics"]))
    # The batch transform's predictions are the registered model's: the same RMSE as the evaluation.
    assert quality["regression_metrics"]["rmse"]["value"] == pytest.approx(rmse, rel=1e-5)
    assert metrics["ModelQuality"]["Constraints"]["S3Uri"] == model_quality["CalculatedBaselineConstraints"]
    assert drift["ModelQuality"]["Statistics"]["S3Uri"] == model_quality["CalculatedBaselineStatistics"]
    clarify = steps["ModelExplainabilityCheck"]["Metadata"]["ClarifyCheck"]
    assert metrics["Explainability"]["Report"]["S3Uri"] == clarify["CalculatedBaselineConstraints"]
    assert drift["Explainability"]["Constraints"]["S3Uri"] == clarify["CalculatedBaselineConstraints"]
    label0 = json.loads(read_s3(clarify["CalculatedBaselineConstraints"]))["explanations"]["kernel_shap"]["label0"]
    assert isinstance(label0["expected_value"], float)
    ranking = sorted(label0["global_shap_values"], key=lambda f: -label0["global_shap_values"][f])
    assert len(ranking) == 10 and {"shell_weight", "whole_weight"} <= set(ranking[:4]), ranking


def test_cached_rerun_runs_no_step_script(stack, cold_run):
    before = job_folders(stack)
    started = time.monotonic()
    assert run() == 0
    cached_seconds = time.monotonic() - started
    execution, steps = latest_execution()
    assert execution["PipelineExecutionStatus"] == "Succeeded"
    cold_arn = cold_run["execution"]["PipelineExecutionArn"]
    # Every step with a CacheConfig is a hit (Transform and the checks after the Model step too).
    cacheable = ("Preprocess", "DataQualityCheck", "Train", "Evaluate", "TransformTest", "ModelQualityCheck")
    for name in (*cacheable, "ModelExplainabilityCheck"):
        assert steps[name]["CacheHitResult"] == {"SourcePipelineExecutionArn": cold_arn}, name
    # No job ran but the gate's (never cached: the champion may have changed); registration and CreateModel
    # are never cached by SageMaker either.
    uncached = ("-registermodel-", "-createmodel-", "-championgate-")
    assert all(any(kind in name for kind in uncached) for name in job_folders(stack) - before)
    assert "CacheHitResult" not in steps["ChampionGate"]
    print(f"cold run {cold_run['seconds']:.1f} s, cached re-run {cached_seconds:.1f} s (including the SDK build)")


def test_a_new_hyperparameter_value_misses_the_cache_for_training_only(stack, cold_run):
    assert run("-p", "NumRound=20") == 0
    _, steps = latest_execution()
    assert "CacheHitResult" in steps["Preprocess"]
    assert "CacheHitResult" not in steps["Train"] and "CacheHitResult" not in steps["Evaluate"]


def test_failing_condition_ends_in_the_fail_step_with_its_message(stack, cold_run):
    versions_before = boto3.client("sagemaker").list_model_packages(ModelPackageGroupName="abalone")
    assert run("-p", "MseThreshold=1.0") == 1
    execution, steps = latest_execution()
    assert execution["PipelineExecutionStatus"] == "Failed"
    assert steps["CheckEvaluation"]["Metadata"]["Condition"]["Outcome"] == "False"
    assert "RegisterModel" not in steps
    reason = steps["FailEvaluation"]["FailureReason"]
    assert reason.startswith("Model MSE ") and "(must be at most MseThreshold = 1.0);" in reason
    assert reason.endswith("no Approved champion in abalone: the gate passes")
    mse = float(reason.split()[2])
    assert 3.5 < mse < 6.5
    versions_after = boto3.client("sagemaker").list_model_packages(ModelPackageGroupName="abalone")
    assert len(versions_after["ModelPackageSummaryList"]) == len(versions_before["ModelPackageSummaryList"])


def test_bad_input_data_fails_the_preprocess_step_with_the_scripts_message(stack, cold_run):
    boto3.client("s3").put_object(Bucket=BUCKET, Key="data/bad/abalone.csv", Body=b"Q,0.4,0.3,0.1,0.5,0.2,0.1,0.1,9\n")
    assert run("-p", f"InputDataUrl=s3://{BUCKET}/data/bad/abalone.csv") == 1
    execution, steps = latest_execution()
    assert execution["PipelineExecutionStatus"] == "Failed"
    assert set(steps) == {"Preprocess"}, "dependents of a failed step do not run"
    assert "column sex must be one of F, I, M (lines 1)" in steps["Preprocess"]["FailureReason"]


def start_definition(name: str, definition: dict, **parameters) -> str:
    sagemaker = boto3.client("sagemaker")
    sagemaker.create_pipeline(PipelineName=name, PipelineDefinition=json.dumps(definition), RoleArn=ROLE)
    return sagemaker.start_pipeline_execution(
        PipelineName=name, PipelineParameters=[{"Name": k, "Value": v} for k, v in parameters.items()]
    )["PipelineExecutionArn"]


def wait(arn: str) -> tuple[dict, dict[str, dict]]:
    sagemaker = boto3.client("sagemaker")
    for _ in range(300):
        execution = sagemaker.describe_pipeline_execution(PipelineExecutionArn=arn)
        if execution["PipelineExecutionStatus"] != "Executing":
            steps = sagemaker.list_pipeline_execution_steps(PipelineExecutionArn=arn)["PipelineExecutionSteps"]
            return execution, {s["StepName"]: s for s in steps}
        time.sleep(0.1)
    raise AssertionError(f"{arn} did not finish")


def script_step(name: str, code_uri: str, depends_on: list[str] | None = None) -> dict:
    step = {
        "Name": name,
        "Type": "Processing",
        "Arguments": {
            "AppSpecification": {
                "ImageUri": SKLEARN_IMAGE,
                "ContainerEntrypoint": ["python3", "/opt/ml/processing/input/code/script.py"],
            },
            "ProcessingInputs": [
                {"InputName": "code", "S3Input": {"S3Uri": code_uri, "LocalPath": "/opt/ml/processing/input/code"}}
            ],
        },
    }
    if depends_on:
        step["DependsOn"] = depends_on
    return step


def test_a_broken_step_script_fails_the_execution_with_the_scripts_error(stack):
    s3 = boto3.client("s3")
    s3.put_object(Bucket=BUCKET, Key="code/broken/script.py", Body=b"raise RuntimeError('the model config is gone')\n")
    s3.put_object(Bucket=BUCKET, Key="code/fine/script.py", Body=b"print('fine')\n")
    definition = {
        "Version": "2020-12-01",
        "Parameters": [],
        "Steps": [
            script_step("Broken", f"s3://{BUCKET}/code/broken/script.py"),
            script_step("After", f"s3://{BUCKET}/code/fine/script.py", depends_on=["Broken"]),
        ],
    }
    execution, steps = wait(start_definition("broken-script", definition))
    assert execution["PipelineExecutionStatus"] == "Failed"
    assert steps["Broken"]["StepStatus"] == "Failed"
    assert "RuntimeError: the model config is gone" in steps["Broken"]["FailureReason"]
    assert "After" not in steps


def test_an_aws_error_in_a_step_fails_that_step_with_the_error(stack):
    # SageMaker reports an input it cannot read as the step's ClientError; the step never stays Executing.
    definition = {"Version": "2020-12-01", "Steps": [script_step("Read", "s3://no-such-bucket/script.py")]}
    execution, steps = wait(start_definition("missing-bucket", definition))
    assert execution["PipelineExecutionStatus"] == "Failed"
    assert steps["Read"]["StepStatus"] == "Failed"
    assert steps["Read"]["FailureReason"].startswith("ClientError: ")
    assert "NoSuchBucket" in steps["Read"]["FailureReason"]


def test_unsupported_step_types_and_expressions_fail_at_once_naming_them(stack):
    transform = {"Name": "Score", "Type": "Lambda", "Arguments": {}}
    execution, steps = wait(start_definition("unsupported-type", {"Version": "2020-12-01", "Steps": [transform]}))
    assert execution["PipelineExecutionStatus"] == "Failed"
    assert "Score (Lambda)" in execution["FailureReason"] and not steps

    orphan = script_step("Orphan", f"s3://{BUCKET}/code/fine/script.py", depends_on=["Missing"])
    execution, steps = wait(start_definition("unknown-dependency", {"Version": "2020-12-01", "Steps": [orphan]}))
    assert execution["PipelineExecutionStatus"] == "Failed"
    assert "Orphan -> Missing" in execution["FailureReason"] and not steps

    fail = {"Name": "Stop", "Type": "Fail", "Arguments": {"ErrorMessage": {"Std:Upper": "x"}}}
    execution, steps = wait(start_definition("unsupported-function", {"Version": "2020-12-01", "Steps": [fail]}))
    assert execution["PipelineExecutionStatus"] == "Failed"
    assert "unsupported pipeline function Std:Upper" in steps["Stop"]["FailureReason"]


def test_unknown_parameters_are_refused_like_sagemaker_does(stack):
    from botocore.exceptions import ClientError

    definition = {"Version": "2020-12-01", "Parameters": [{"Name": "A", "Type": "Integer", "DefaultValue": 1}]}
    definition["Steps"] = []
    with pytest.raises(ClientError, match="not defined"):
        start_definition("parameters", definition, B="2")
    with pytest.raises(ClientError, match="must be Integer"):
        boto3.client("sagemaker").start_pipeline_execution(
            PipelineName="parameters", PipelineParameters=[{"Name": "A", "Value": "two"}]
        )


def test_a_step_script_sees_the_jobs_aws_settings_not_the_hosts(tmp_path, monkeypatch):
    from local_aws.sagemaker.executor import step_types

    monkeypatch.setenv("AWS_SESSION_TOKEN", "host-session-token")
    monkeypatch.setenv("AWS_PROFILE", "host-profile")
    job = step_types.Job(
        name="env-check",
        arn_prefix="arn:aws:sagemaker:us-east-1:123456789012",
        folder=tmp_path,
        s3=None,
        sagemaker=None,
        environment={"AWS_ENDPOINT_URL": "http://127.0.0.1:1", "AWS_DEFAULT_REGION": "us-east-1"},
    )
    script = "import json, os; print(json.dumps({k: v for k, v in os.environ.items() if k.startswith('AWS_')}))"
    step_types.run_processing(
        {
            "AppSpecification": {"ImageUri": SKLEARN_IMAGE, "ContainerEntrypoint": ["python3", "-c", script]},
            "Environment": {"STAGE": "x"},
        },
        job,
    )
    seen = json.loads((tmp_path / "output.log").read_text().splitlines()[-1])  # after the stack's own lines
    assert seen == {"AWS_ENDPOINT_URL": "http://127.0.0.1:1", "AWS_DEFAULT_REGION": "us-east-1"}


def test_after_approval_the_checks_run_against_the_approved_baselines(stack, cold_run):
    sagemaker = boto3.client("sagemaker")
    champion = cold_run["steps"]["RegisterModel"]["Metadata"]["RegisterModel"]["Arn"]
    sagemaker.update_model_package(ModelPackageArn=champion, ModelApprovalStatus="Approved")
    try:
        assert run() == 0
        _, steps = latest_execution()
        approved = sagemaker.describe_model_package(ModelPackageName=champion)["DriftCheckBaselines"]
        for step, kind in (("DataQualityCheck", "QualityCheck"), ("ModelQualityCheck", "QualityCheck")):
            check = steps[step]["Metadata"][kind]
            assert check["SkipCheck"] is False and check["RegisterNewBaseline"] is False
            # The same data and model: the check ran against the champion's baseline and found nothing.
            assert json.loads(read_s3(check["ViolationReport"]))["violations"] == []
        member = approved["ModelDataQuality"]["Constraints"]["S3Uri"]
        assert steps["DataQualityCheck"]["Metadata"]["QualityCheck"]["BaselineUsedForDriftCheckConstraints"] == member
        # The champion gate ran (never cached) against the champion, and the package carries its figures.
        assert "CacheHitResult" not in steps["ChampionGate"]
        package_arn = steps["RegisterModel"]["Metadata"]["RegisterModel"]["Arn"]
        metadata = sagemaker.describe_model_package(ModelPackageName=package_arn)["CustomerMetadataProperties"]
        assert metadata["GateResult"] == "passed" and metadata["GateChampion"] == champion
        assert metadata["GateTrainingSize"] == "2924 vs 2924 (ratio 1.000, bound 1.5)"

        # Another slice of the data (the first 1500 rows): the gate fails, naming each failed comparison.
        head = b"".join(ABALONE_CSV.read_bytes().splitlines(keepends=True)[:1501])
        boto3.client("s3").put_object(Bucket=BUCKET, Key="data/slice/abalone.csv", Body=head)
        versions = len(sagemaker.list_model_packages(ModelPackageGroupName="abalone")["ModelPackageSummaryList"])
        skip = [f"Skip{check}Check=true" for check in ("DataQuality", "ModelQuality", "ModelExplainability")]
        assert run("-p", f"InputDataUrl=s3://{BUCKET}/data/slice/abalone.csv", *(f"-p{s}" for s in skip)) == 1
        execution, steps = latest_execution()
        assert execution["PipelineExecutionStatus"] == "Failed" and "RegisterModel" not in steps
        reason = steps["FailEvaluation"]["FailureReason"]
        assert f"champion gate failed against champion {champion}: " in reason
        assert "training-set size 1050 vs champion 2924: ratio 0.359 outside [0.667, 1.5]" in reason
        after = len(sagemaker.list_model_packages(ModelPackageGroupName="abalone")["ModelPackageSummaryList"])
        assert after == versions
    finally:
        sagemaker.update_model_package(ModelPackageArn=champion, ModelApprovalStatus="Rejected")
