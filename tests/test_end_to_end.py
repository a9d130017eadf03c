"""The whole loop through the real CI files, as `make demo` runs it, then checked on what AWS would hold.

The demo stops its stack when it ends; reopening the same state folder replays the stack's AWS state,
so the assertions read the registry, the stacks and the endpoints exactly as they were left.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from local_aws import LocalStack
from local_aws.events import bus as events
from local_gitlab.ci_runner import artifacts_dir

REPO_ROOT = Path(__file__).resolve().parents[1]
ABALONE_CSV = REPO_ROOT.parent / "shared" / "datasets" / "abalone.csv"
GCL = REPO_ROOT / "node_modules" / ".bin" / "gitlab-ci-local"


@pytest.mark.skipif(not GCL.exists(), reason="gitlab-ci-local is not installed: `make gitlab-ci-local` installs it")
def test_push_to_production_through_both_pipelines(tmp_path):
    state = tmp_path / "demo"
    demo = subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts" / "demo"), "--state-dir", str(state), "--data", str(ABALONE_CSV)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "LOCAL_STACK_WARM_UP": "on"},  # the default, which tests/conftest.py turns off
    )
    assert demo.returncode == 0, demo.stdout[-4000:] + demo.stderr[-4000:]
    # The stack imported what the runtime needs while idle (xgboost), before the staging tests asked it.
    assert "runtime warm-up done" in (state / "logs" / "server.log").read_text()
    for job in ("train", "build", "staging-deploy", "staging-test", "batch-staging", "production-deploy"):
        # The demo's summary line of that job (ci_local.summary_lines): its name, then its own status.
        assert re.search(rf"^\s+{re.escape(job)}\s+success\s", demo.stdout, re.MULTILINE), job

    with LocalStack(state_dir=state) as stack:
        sagemaker = stack.client("sagemaker")
        # Registered, then approved: one version, with its evaluation and lineage.
        versions = sagemaker.list_model_packages(
            ModelPackageGroupName="abalone", SortBy="CreationTime", SortOrder="Ascending"
        )["ModelPackageSummaryList"]
        # The pushed version, approved; and the version the drifted batches' retraining build registered.
        assert len(versions) == 2
        retrained = sagemaker.describe_model_package(ModelPackageName=versions[1]["ModelPackageArn"])
        assert retrained["ModelApprovalStatus"] == "PendingManualApproval"
        assert "/local/model-build/-/pipelines/" in retrained["CustomerMetadataProperties"]["GitLabPipelineUrl"]
        assert f"Retrained:   {retrained['ModelPackageArn']}" in demo.stdout
        package = sagemaker.describe_model_package(ModelPackageName=versions[0]["ModelPackageArn"])
        assert package["ModelApprovalStatus"] == "Approved"
        assert package["CustomerMetadataProperties"]["TestDataUrl"].startswith("s3://")
        # The lineage names the local pipeline's own logs, never gitlab-ci-local's made-up gitlab.com address.
        assert package["CustomerMetadataProperties"]["GitLabPipelineUrl"].startswith(f"file://{state}")
        # Pipeline events are on the bus too: only package events have an approval status.
        approvals = [e for e in events.read_events(state) if e["detail"].get("ModelApprovalStatus") == "Approved"]
        assert [e["detail"]["ModelPackageArn"] for e in approvals] == [package["ModelPackageArn"]]

        # Staging and production: each stack's endpoint serves exactly the approved version.
        for stage in ("staging", "prod"):
            outputs = stack.client("cloudformation").describe_stacks(StackName=f"sagemaker-abalone-deploy-{stage}")
            outputs = {o["OutputKey"]: o["OutputValue"] for o in outputs["Stacks"][0]["Outputs"]}
            endpoint_name = next(
                value for key, value in outputs.items() if key.startswith("Endpoint") and "Name" in key
            )
            endpoint = sagemaker.describe_endpoint(EndpointName=endpoint_name)
            assert endpoint["EndpointStatus"] == "InService"
            config = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
            model = sagemaker.describe_model(ModelName=config["ProductionVariants"][0]["ModelName"])
            container = model.get("PrimaryContainer") or model["Containers"][0]
            assert container["ModelPackageName"] == package["ModelPackageArn"], stage

        # The staging-test job ran on real predictions of that version, and its artifact says so.
        # The approval's deploy pipeline ran in the local GitLab: its first pipeline, its job artifacts.
        pipeline_state = state / "gitlab" / "pipelines" / "1" / "gitlab-ci-local"
        artifacts = artifacts_dir("model-deploy", "staging-test", state=pipeline_state)
        results = json.loads((artifacts / "build" / "staging-test-results.json").read_text())
        assert results["passed"] and results["model_package_arn"] == package["ModelPackageArn"]
        assert results["figures"]["test_rows"] == 626
        assert 1.8 < results["figures"]["rmse"] <= results["figures"]["rmse_limit"]

        # batch-staging compared the staging batch run with the staging endpoint, row for row; prod's batch
        # triggers were promoted with the endpoint, and the demo's drifted batch has its drift picture.
        artifacts = artifacts_dir("model-deploy", "batch-staging", state=pipeline_state)
        batch = json.loads((artifacts / "build" / "batch-staging-results.json").read_text())
        assert batch["passed"] and batch["model_package_arn"] == package["ModelPackageArn"]
        assert [test["outcome"] for test in batch["tests"].values()] == ["passed"] * 4
        figures = batch["figures"]
        assert figures["predictions"] == figures["input_rows"] == figures["compared_rows"] == 200
        assert figures["mismatched_rows"] == 0
        assert 'name="batch-staging-tests"' in (artifacts / "build" / "batch-staging-report.xml").read_text()
        # Both stages' batch pipelines score the approved version, and their triggers stacks say so; staging's
        # schedule stays off (batch-config.json).
        for stage, schedule_state in (("staging", "DISABLED"), ("prod", "ENABLED")):
            name = f"sagemaker-abalone-batch-{stage}"
            triggers = stack.client("cloudformation").describe_stacks(StackName=name)["Stacks"][0]
            parameters = {p["ParameterKey"]: p["ParameterValue"] for p in triggers["Parameters"]}
            assert parameters["ModelPackageArn"] == package["ModelPackageArn"], stage
            assert parameters["ScheduleState"] == schedule_state and parameters["InputRuleState"] == "ENABLED"
            assert parameters["InputPrefix"] == f"batch-inference/abalone/{stage}/input/"
            definition = json.loads(
                sagemaker.describe_pipeline(PipelineName=f"abalone-batch-inference-{stage}")["PipelineDefinition"]
            )
            transform = next(step for step in definition["Steps"] if step["Type"] == "Transform")
            model = sagemaker.describe_model(ModelName=transform["Arguments"]["ModelName"])
            assert model["PrimaryContainer"]["ModelPackageName"] == package["ModelPackageArn"], stage
        # production-deploy put the prod definitions batch-staging rendered (no SDK import in that job).
        rendered = json.loads((artifacts / "build" / "prod-batch-rendered.json").read_text())
        prod_pipeline = sagemaker.describe_pipeline(PipelineName="abalone-batch-inference-prod")
        assert prod_pipeline["PipelineDefinition"] == rendered["batch_definition"]
        production_log = (pipeline_state / "output" / "production-deploy.log").read_text()
        assert "the batch definitions batch-staging rendered" in production_log
    assert (state / "batch" / "drifted" / "drift-report.png").read_bytes()[:4] == b"\x89PNG"
    assert "baseline_drift_check" in (state / "batch" / "drifted" / "drift-report.html").read_text()
    assert re.search(r"\[9/11\] Batch inference \(prod\): a drifted batch.*\n\s+[1-9]\d* violation", demo.stdout)
    assert re.search(r"^  Loop:\s+[0-9.]+s without the retraining build$", demo.stdout, re.MULTILINE)
