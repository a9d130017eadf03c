"""The pipeline definition: the exact JSON document SageMaker receives."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.abalone import pipeline
from pipelines.run_pipeline import PLACEHOLDER_BUCKET, PLACEHOLDER_ROLE

REPO = Path(__file__).resolve().parents[1]
HERE = REPO / "pipelines" / "abalone"
BUCKET = "my-artifacts"


def build_definition() -> str:
    from pipelines.abalone.pipeline import get_pipeline

    return get_pipeline("us-east-1", "arn:aws:iam::123456789012:role/pipeline", BUCKET, "abalone-build").definition()


@pytest.fixture(scope="module")
def definition() -> dict:
    return json.loads(build_definition())


def steps_by_name(definition: dict) -> dict[str, dict]:
    found = {}
    for step in definition["Steps"]:
        found[step["Name"]] = step
        for branch in ("IfSteps", "ElseSteps"):
            for inner in step["Arguments"].get(branch, []):
                found[inner["Name"]] = inner
    return found


def test_steps_and_branches(definition):
    assert [step["Name"] for step in definition["Steps"]] == [
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
    ]
    steps = steps_by_name(definition)
    assert {name: step["Type"] for name, step in steps.items()} == {
        "Preprocess": "Processing",
        "DataQualityCheck": "QualityCheck",
        "Train": "Training",
        "Evaluate": "Processing",
        "CreateModel": "Model",
        "TransformTest": "Transform",
        "ModelQualityCheck": "QualityCheck",
        "ModelExplainabilityCheck": "ClarifyCheck",
        "ChampionGate": "Processing",
        "CheckEvaluation": "Condition",
        "RegisterModel": "RegisterModel",
        "FailEvaluation": "Fail",
    }
    condition = steps["CheckEvaluation"]["Arguments"]
    assert [s["Name"] for s in condition["IfSteps"]] == ["RegisterModel"]
    assert [s["Name"] for s in condition["ElseSteps"]] == ["FailEvaluation"]


def test_the_champion_gate_is_never_cached_and_both_it_and_the_mse_floor_decide(definition):
    steps = steps_by_name(definition)
    gate = steps["ChampionGate"]
    # A cached gate would answer for a champion that may have changed since.
    assert "CacheConfig" not in gate
    arguments = gate["Arguments"]["AppSpecification"]["ContainerArguments"]
    for flag, parameter in (
        ("--tolerance", "ChampionMetricTolerance"),
        ("--label-bound", "ChampionLabelShiftBound"),
        ("--size-ratio", "ChampionSizeRatio"),
    ):
        assert json.dumps(arguments[arguments.index(flag) + 1]).count(f"Parameters.{parameter}") == 1
    inputs = {i["InputName"]: i["S3Input"]["S3Uri"] for i in gate["Arguments"]["ProcessingInputs"]}
    assert inputs["statistics"] == {"Get": "Steps.DataQualityCheck.CalculatedBaselineStatistics"}
    assert inputs["test"] == {"Get": "Steps.Preprocess.ProcessingOutputConfig.Outputs['test'].S3Output.S3Uri"}
    conditions = steps["CheckEvaluation"]["Arguments"]["Conditions"]
    assert [c["Type"] for c in conditions] == ["LessThanOrEqualTo", "Equals"]
    assert conditions[1]["LeftValue"]["Std:JsonGet"]["Path"] == "passed" and conditions[1]["RightValue"] == 1
    message = json.dumps(steps["FailEvaluation"]["Arguments"]["ErrorMessage"])
    assert "Steps.ChampionGate.PropertyFiles.ChampionComparison" in message and '"message"' in message


def test_check_steps_take_the_parameters_named_as_in_aws_example(definition):
    steps = steps_by_name(definition)
    for step, check in (
        ("DataQualityCheck", "DataQuality"),
        ("ModelQualityCheck", "ModelQuality"),
        ("ModelExplainabilityCheck", "ModelExplainability"),
    ):
        assert steps[step]["SkipCheck"] == {"Get": f"Parameters.Skip{check}Check"}
        assert steps[step]["RegisterNewBaseline"] == {"Get": f"Parameters.RegisterNew{check}Baseline"}
        assert steps[step]["SuppliedBaselineConstraints"] == {"Get": f"Parameters.SuppliedBaselineConstraints{check}"}
    clarify_config = steps["ModelExplainabilityCheck"]["Arguments"]["ProcessingInputs"][0]["S3Input"]["S3Uri"]
    # Content-addressed (sdk_env.stage_clarify_configs), not the SDK's timestamp + uuid4 path.
    assert clarify_config.startswith(f"s3://{BUCKET}/abalone-build/check-config/clarify/")


def test_parameters_and_defaults(definition):
    parameters = {p["Name"]: (p["Type"], p.get("DefaultValue")) for p in definition["Parameters"]}
    assert parameters["InputDataUrl"] == ("String", f"s3://{BUCKET}/data/abalone/abalone.csv")
    assert parameters["ModelApprovalStatus"] == ("String", "PendingManualApproval")
    assert parameters["MseThreshold"] == ("Float", 6.0)
    assert parameters["NumRound"] == ("Integer", 100)
    assert {"ProcessingInstanceType", "TrainingInstanceType", "SplitSeed", "MaxDepth", "Eta", "Gamma"} <= set(
        parameters
    )
    assert {"MinChildWeight", "Subsample", "GitCommit", "GitLabPipelineUrl"} <= set(parameters)


def test_data_flows_through_property_references(definition):
    steps = steps_by_name(definition)
    preprocess = steps["Preprocess"]["Arguments"]
    assert preprocess["ProcessingInputs"][0]["S3Input"]["S3Uri"] == {"Get": "Parameters.InputDataUrl"}

    channels = {c["ChannelName"]: c for c in steps["Train"]["Arguments"]["InputDataConfig"]}
    for channel in ("train", "validation"):
        source = channels[channel]["DataSource"]["S3DataSource"]["S3Uri"]
        assert source == {"Get": f"Steps.Preprocess.ProcessingOutputConfig.Outputs['{channel}'].S3Output.S3Uri"}
        assert channels[channel]["ContentType"] == "text/csv"
    hyperparameters = steps["Train"]["Arguments"]["HyperParameters"]
    assert hyperparameters["num_round"] == {"Get": "Parameters.NumRound"}
    assert hyperparameters["objective"] == "reg:squarederror"
    assert steps["Train"]["Arguments"]["StoppingCondition"]["MaxRuntimeInSeconds"] == 3600

    model_artifacts = {"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"}
    evaluate_inputs = {i["InputName"]: i["S3Input"] for i in steps["Evaluate"]["Arguments"]["ProcessingInputs"]}
    assert evaluate_inputs["model"]["S3Uri"] == model_artifacts
    test_split = {"Get": "Steps.Preprocess.ProcessingOutputConfig.Outputs['test'].S3Output.S3Uri"}
    assert evaluate_inputs["test"]["S3Uri"] == test_split
    assert steps["Evaluate"]["PropertyFiles"] == [
        {"PropertyFileName": "EvaluationReport", "OutputName": "evaluation", "FilePath": "evaluation.json"}
    ]

    condition = steps["CheckEvaluation"]["Arguments"]["Conditions"][0]
    assert condition["Type"] == "LessThanOrEqualTo"
    assert condition["LeftValue"] == {
        "Std:JsonGet": {
            "PropertyFile": {"Get": "Steps.Evaluate.PropertyFiles.EvaluationReport"},
            "Path": "regression_metrics.mse.value",
        }
    }
    assert condition["RightValue"] == {"Get": "Parameters.MseThreshold"}

    register = steps["RegisterModel"]["Arguments"]

    def metric(name: str) -> dict:
        report = {"Get": "Steps.Evaluate.PropertyFiles.EvaluationReport"}
        return {"Std:JsonGet": {"PropertyFile": report, "Path": f"summary.{name}"}}  # rounded for people

    assert register["ModelPackageGroupName"] == "abalone"
    assert register["ModelApprovalStatus"] == {"Get": "Parameters.ModelApprovalStatus"}
    container = register["InferenceSpecification"]["Containers"][0]
    assert container["ModelDataUrl"] == model_artifacts
    assert container["Image"].endswith("/sagemaker-xgboost:1.7-1")
    metadata = dict(register["CustomerMetadataProperties"])
    comparison = {"Get": "Steps.ChampionGate.PropertyFiles.ChampionComparison"}
    for key in ("GateResult", "GateChampion", "GateRmse", "GateMae", "GateR2", "GateLabelShift", "GateTrainingSize"):
        gate_value = {"Std:JsonGet": {"PropertyFile": comparison, "Path": f"summary.{key}"}}
        assert metadata.pop(key) == {"Std:Join": {"On": "", "Values": [gate_value]}}
    assert metadata == {
        "GitCommit": {"Get": "Parameters.GitCommit"},
        "GitLabPipelineUrl": {"Get": "Parameters.GitLabPipelineUrl"},
        "InputDataUrl": {"Get": "Parameters.InputDataUrl"},
        "TestDataUrl": test_split,
        "Mse": {"Std:Join": {"On": "", "Values": [metric("mse")]}},
        "Rmse": {"Std:Join": {"On": "", "Values": [metric("rmse")]}},
        # The feature encoding travels with the model: the batch inference pipeline runs exactly this file.
        "FeatureCodeUrl": pipeline.step_code("abalone-build", BUCKET)[str(HERE / "preprocess.py")],
        "FeatureCodeSha256": hashlib.sha256((HERE / "preprocess.py").read_bytes()).hexdigest(),
    }
    statistics = register["ModelMetrics"]["ModelQuality"]["Statistics"]
    assert statistics["ContentType"] == "application/json"
    assert statistics["S3Uri"] == {
        "Std:Join": {
            "On": "/",
            "Values": [
                {"Get": "Steps.Evaluate.ProcessingOutputConfig.Outputs['evaluation'].S3Output.S3Uri"},
                "evaluation.json",
            ],
        }
    }
    message = json.dumps(steps["FailEvaluation"]["Arguments"]["ErrorMessage"])
    assert "summary.mse" in message and "Parameters.MseThreshold" in message


def test_caching_on_jobs_and_step_code_addressed_by_content(definition):
    steps = steps_by_name(definition)
    for name in ("Preprocess", "Train", "Evaluate"):
        assert steps[name]["CacheConfig"] == {"Enabled": True, "ExpireAfter": "P30D"}
    from pipelines.abalone.pipeline import step_code

    uris = step_code("abalone-build", BUCKET)
    code_inputs = [
        i["S3Input"]["S3Uri"]
        for name in ("Preprocess", "Evaluate", "ChampionGate")
        for i in steps[name]["Arguments"]["ProcessingInputs"]
        if i["InputName"] == "code"
    ]
    assert sorted(code_inputs) == sorted(uris.values())
    # Outputs are scoped by execution id, which SageMaker leaves out of the cache key.
    output = steps["Preprocess"]["Arguments"]["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"]
    assert {"Get": "Execution.PipelineExecutionId"} in output["Std:Join"]["Values"]


def test_identical_bytes_across_builds_and_processes(capsys):
    from pipelines import run_pipeline

    first, second = build_definition(), build_definition()
    assert first == second
    # The `definition` command here, then in a process of its own (another hash seed, a cold SDK import):
    # one other process is enough to show that nothing process-dependent reaches the bytes.
    assert run_pipeline.main(["definition"]) == 0
    printed = [capsys.readouterr().out]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    printed.append(
        subprocess.run(
            [sys.executable, "-m", "pipelines.run_pipeline", "definition"],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    assert printed[0] == printed[1]
    placeholder = json.loads(printed[0])
    assert placeholder["Steps"][0]["Arguments"]["RoleArn"] == PLACEHOLDER_ROLE
    assert PLACEHOLDER_BUCKET in json.dumps(placeholder)


def test_a_build_makes_one_boto3_session_and_reads_the_endpoint_rules_once_at_most(monkeypatch):
    # sdk_env.lighter_build: without it, each ProcessingStep and TransformStep made a local-mode client (a boto3
    # session and its service models) and each image URI read botocore's endpoints.json again (~1.5 s a build).
    import boto3
    import botocore.loaders

    sessions, loaders = [], []
    session_init, create_loader = boto3.session.Session.__init__, botocore.loaders.create_loader

    def counted_session(self, *args, **kwargs):
        sessions.append(1)
        session_init(self, *args, **kwargs)

    def counted_loader(*args, **kwargs):
        loaders.append(1)
        return create_loader(*args, **kwargs)

    monkeypatch.setattr(boto3.session.Session, "__init__", counted_session)
    monkeypatch.setattr(botocore.loaders, "create_loader", counted_loader)
    build_definition()
    assert len(sessions) == 1, "the PipelineSession's own, no other"
    assert len(loaders) <= 1, "the endpoint rules are read once a process"
