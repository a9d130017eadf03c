"""The deploy pipeline's batch jobs on the local stack: batch-staging run for real with gitlab-ci-local, failing
when the staging endpoint serves another version (tests/test_end_to_end.py has it pass, in the whole pipeline),
then production's batch pipeline and triggers promoted, rolled back and stopped with the endpoint
(`python -m deploy deploy-stage|rollback`).

One trained version (v1) and one more approved version (v2: the same registration, another real model) are
shared by the module; the tests run in order, each on the state the previous one left, as a project's history.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import boto3
import pytest

from local_aws import LocalStack
from local_gitlab import ci_runner, project

REPO_ROOT = Path(__file__).resolve().parents[1]
ABALONE_CSV = REPO_ROOT.parent / "shared" / "datasets" / "abalone.csv"
PROJECT = project.PROJECT_NAME

pytestmark = pytest.mark.skipif(
    not ci_runner.GITLAB_CI_LOCAL.exists(), reason="gitlab-ci-local is not installed: `make gitlab-ci-local`"
)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with pytest.MonkeyPatch.context() as env, LocalStack(state_dir=tmp_path_factory.mktemp("batch-deploy")) as running:
        for name, value in running.env.items():
            env.setenv(name, value)
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "CI_COMMIT_SHA", "CI_PIPELINE_URL", "INPUT_DATA_URL"):
            env.delenv(name, raising=False)
        variables = project.deploy_variables(running.env["AWS_REGION"])
        for name, value in variables.items():
            env.setenv(name, value)
        boto3.client("s3").upload_file(str(ABALONE_CSV), variables["ARTIFACT_BUCKET"], "data/abalone/abalone.csv")
        # These tests deploy and run what they test themselves: an approval must not also start the deploy
        # pipeline in the local GitLab behind their backs (it raced them for the staging stack and batch runs).
        running.client("events").disable_rule(Name="sagemaker-abalone-ApprovalRule")
        yield running


@pytest.fixture(scope="module")
def v1(stack) -> str:
    from pipelines import run_pipeline

    bucket, role = project.ARTIFACT_BUCKET, project.seed_request("x").pipeline_role_arn
    uri = f"s3://{bucket}/data/abalone/abalone.csv"
    assert run_pipeline.main(["run", "--role-arn", role, "--bucket", bucket, "-p", f"InputDataUrl={uri}"]) == 0
    arn = latest(boto3.client("sagemaker"))
    approve(arn)
    return arn


def latest(sagemaker) -> str:
    return sagemaker.list_model_packages(ModelPackageGroupName=PROJECT, SortBy="CreationTime", SortOrder="Descending")[
        "ModelPackageSummaryList"
    ][0]["ModelPackageArn"]


def approve(arn: str, status: str = "Approved") -> None:
    boto3.client("sagemaker").update_model_package(
        ModelPackageArn=arn, ModelApprovalStatus=status, ApprovalDescription="test"
    )


def read(uri: str) -> bytes:
    bucket, key = uri.removeprefix("s3://").split("/", 1)
    return boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()


@pytest.fixture(scope="module")
def v2(v1) -> str:
    """Another approved version: v1's registration with another real model (trained here on v1's test split)."""
    import numpy as np
    import xgboost

    sagemaker, s3 = boto3.client("sagemaker"), boto3.client("s3")
    described = sagemaker.describe_model_package(ModelPackageName=v1)
    metadata = described["CustomerMetadataProperties"]
    split = np.loadtxt(io.BytesIO(read(metadata["TestDataUrl"].rstrip("/") + "/test.csv")), delimiter=",")
    booster = xgboost.train({"max_depth": 2, "eta": 0.5}, xgboost.DMatrix(split[:, 1:], label=split[:, 0]), 3)
    raw = bytes(booster.save_raw("json"))
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        info = tarfile.TarInfo("xgboost-model")
        info.size = len(raw)
        tar.addfile(info, io.BytesIO(raw))
    body = archive.getvalue()
    key = f"tests/batch-deploy/{hashlib.sha256(body).hexdigest()[:16]}/model.tar.gz"
    s3.put_object(Bucket=project.ARTIFACT_BUCKET, Key=key, Body=body)
    container = {
        **described["InferenceSpecification"]["Containers"][0],
        "ModelDataUrl": f"s3://{project.ARTIFACT_BUCKET}/{key}",
    }
    specification = {**described["InferenceSpecification"], "Containers": [container]}
    fields = ("ModelMetrics", "DriftCheckBaselines", "ModelPackageDescription")
    arn = sagemaker.create_model_package(
        ModelPackageGroupName=PROJECT,
        InferenceSpecification=specification,
        ModelApprovalStatus="PendingManualApproval",
        CustomerMetadataProperties={**metadata, "ModelDataSha256": hashlib.sha256(body).hexdigest()},
        **{name: described[name] for name in fields if name in described},
    )["ModelPackageArn"]
    approve(arn)
    return arn


def deploy_pipeline(stack, state: Path, arn: str, **options) -> list:
    variables = {**project.deploy_variables(stack.env["AWS_REGION"]), "MODEL_PACKAGE_ARN": arn}
    variables |= {"MODEL_APPROVAL_STATUS": "Approved", "CI_PIPELINE_SOURCE": "trigger"}
    return ci_runner.run_pipeline("model-deploy", variables, env=stack.environ(), state=state, **options)


def deploy(*args: str, build_dir: Path, **env: str) -> int:
    from deploy import __main__ as deploy_cli

    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        return deploy_cli.main(["--build-dir", str(build_dir), *args])


def triggers(stage: str) -> dict[str, str]:
    described = boto3.client("cloudformation").describe_stacks(StackName=f"sagemaker-{PROJECT}-batch-{stage}")
    return {p["ParameterKey"]: p["ParameterValue"] for p in described["Stacks"][0]["Parameters"]}


def pinned(stage: str) -> str:
    """The package behind the stage's batch pipeline: its Transform's Model's container."""
    sagemaker = boto3.client("sagemaker")
    definition = json.loads(
        sagemaker.describe_pipeline(PipelineName=f"{PROJECT}-batch-inference-{stage}")["PipelineDefinition"]
    )
    transform = next(step for step in definition["Steps"] if step["Type"] == "Transform")
    return sagemaker.describe_model(ModelName=transform["Arguments"]["ModelName"])["PrimaryContainer"][
        "ModelPackageName"
    ]


def serving(stage: str) -> str | None:
    from deploy import deploy_stage
    from deploy.environment import DEPLOY_VARIABLES, load

    return deploy_stage.deployed_package_arn(boto3.client("cloudformation"), load(DEPLOY_VARIABLES), stage)


@pytest.fixture(scope="module")
def ci_state(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("deploy-ci")


def batch_results(state: Path) -> dict:
    artifacts = ci_runner.artifacts_dir("model-deploy", "batch-staging", state=state)
    return json.loads((artifacts / "build" / "batch-staging-results.json").read_text())


# The whole deploy pipeline passing, batch-staging included, and promoting both stages' batch pipelines and
# triggers with the endpoint: tests/test_end_to_end.py (the demo runs it through the local GitLab).


def test_batch_staging_fails_when_the_staging_endpoint_serves_another_version(stack, v1, v2, ci_state, tmp_path):
    # An interleaved deploy: staging's endpoint now serves v2 while the release (v1) is batch-tested.
    assert deploy("build", build_dir=tmp_path, MODEL_PACKAGE_ARN=v2) == 0
    assert deploy("deploy-stage", "staging", build_dir=tmp_path) == 0
    with pytest.raises(ci_runner.PipelineFailed) as failure:
        deploy_pipeline(stack, ci_state, v1, only=["build", "batch-staging"])
    assert failure.value.job == "batch-staging"
    report = batch_results(ci_state)
    assert not report["passed"]
    outcomes = {name: test["outcome"] for name, test in report["tests"].items()}
    assert outcomes.pop("test_predictions_equal_the_staging_endpoints") == "failed"
    assert set(outcomes.values()) == {"passed"}  # the run itself was right: it scored v1, one row each
    assert report["figures"]["mismatched_rows"] > 0
    assert pinned("staging") == v1


def policy_audit():
    """tests/cloudformation's call audit and rendered template (a package of its own: the tests run with
    --import-mode=importlib, and a site-packages package named `tests` shadows ours)."""
    folder = REPO_ROOT / "tests" / "cloudformation"
    if "project_policies" not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            "project_policies", folder / "__init__.py", submodule_search_locations=[str(folder)]
        )
        sys.modules["project_policies"] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules["project_policies"])
    audit = importlib.import_module("project_policies.call_audit")
    return audit.recorded_calls, audit.undecided, importlib.import_module("project_policies.rendered_template").Rendered


def test_production_puts_the_definitions_batch_staging_rendered_and_never_imports_the_sdk(stack, v2, tmp_path):
    from dataclasses import replace

    from deploy import release
    from deploy.batch import run as batch_run
    from deploy.batch import staging, upsert
    from deploy.environment import BUILD_VARIABLES, load
    from deploy.errors import DeployError

    assert deploy("build", build_dir=tmp_path, MODEL_PACKAGE_ARN=v2) == 0
    environment = load(BUILD_VARIABLES)
    staging.render_prod_ahead(environment, tmp_path)  # what batch-staging-test does after the staging run
    ahead = json.loads((tmp_path / "prod-batch-rendered.json").read_text())
    # production-deploy, in its own process: the endpoint, then the batch pipelines from that file.
    probe = (
        "import runpy, sys\n"
        f"sys.argv = ['deploy', '--build-dir', {str(tmp_path)!r}, 'deploy-stage', 'prod']\n"
        "try:\n    runpy.run_module('deploy', run_name='__main__')\nexcept SystemExit as done:\n    code = done.code\n"
        "print('exit', code, 'sdk', sorted({m.split('.')[0] for m in sys.modules} & {'sagemaker'}))\n"
    )
    job = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    assert job.stdout.splitlines()[-1] == "exit 0 sdk []", job.stdout + job.stderr
    assert "the batch definitions batch-staging rendered" in job.stdout
    sagemaker = boto3.client("sagemaker")
    for pipeline, key in ((f"{PROJECT}-batch-inference-prod", "batch"), (f"{PROJECT}-model-quality-prod", "quality")):
        assert sagemaker.describe_pipeline(PipelineName=pipeline)["PipelineDefinition"] == ahead[f"{key}_definition"]
    assert serving("prod") == pinned("prod") == triggers("prod")["ModelPackageArn"] == v2
    # The same bytes as the SDK renders from that plan (here, another process than the one that wrote the file).
    role = release.read(tmp_path).stage("prod").parameters["ModelExecutionRoleArn"]  # as production-deploy takes it
    prod = replace(environment, execution_role_arn=role)
    _package, planned = upsert.checked_plan(prod, "prod", v2, batch_run.stage_settings("prod"))
    rendered = upsert.render(planned)
    assert (rendered.batch_definition, rendered.quality_definition) == (
        ahead["batch_definition"],
        ahead["quality_definition"],
    )
    # Another plan (a setting changed since batch-staging) is rendered again, not put from the file.
    other = replace(planned, batch=replace(planned.batch, transform_instances=3))
    assert upsert.rendered_ahead(tmp_path, other) is None
    # A file edited after batch-staging (here: the Transform's model swapped) is refused.
    ahead["batch_definition"] = ahead["batch_definition"].replace(planned.batch.model_name, "someone-elses-model")
    (tmp_path / "prod-batch-rendered.json").write_text(json.dumps(ahead))
    with pytest.raises(DeployError, match="edited after batch-staging"):
        upsert.rendered_ahead(tmp_path, planned)


def test_promotion_moves_prod_batch_and_a_rejection_moves_it_back_with_the_endpoint(stack, v1, v2, tmp_path):
    recorded_calls, undecided, Rendered = policy_audit()

    assert deploy("build", build_dir=tmp_path, MODEL_PACKAGE_ARN=v2) == 0
    with recorded_calls() as promoted:  # every call the production job makes, the SDK's upsert included
        assert deploy("deploy-stage", "prod", build_dir=tmp_path) == 0
    endpoints = {json.loads((tmp_path / "prod-outputs.json").read_text())["EndpointName"]}
    assert serving("prod") == pinned("prod") == triggers("prod")["ModelPackageArn"] == v2
    approve(v2, "Rejected")
    rejected = {"MODEL_APPROVAL_STATUS": "Rejected", "MODEL_PACKAGE_ARN": v2}
    with recorded_calls() as rolled_back:
        assert deploy("rollback", "prod", build_dir=tmp_path, **rejected) == 0
    endpoints.add(json.loads((tmp_path / "prod-outputs.json").read_text())["EndpointName"])
    assert any(call[1] == "CreatePipeline" for call in promoted)
    # The project template's production role may make each of them (cloudformation/project.yml); moto names the
    # endpoint itself, AWS would name it <project>-prod (the endpoint template's EndpointName).
    calls, names = promoted + rolled_back, dict.fromkeys(endpoints, f"{PROJECT}-prod")
    assert undecided(Rendered(), "GitLabDeployProdRole", calls, project.ARTIFACT_BUCKET, names) == []
    assert serving("prod") == pinned("prod") == triggers("prod")["ModelPackageArn"] == v1
    assert triggers("prod")["ScheduleState"] == "ENABLED"
    record = json.loads((tmp_path / "prod-batch-schedule.json").read_text())
    assert record["ModelPackageArn"] == v1 and record["Action"] == "updated"
    # Staging served v2 too (the previous test's interleaved deploy): its rollback brings its batch along.
    assert deploy("rollback", "staging", build_dir=tmp_path, **rejected) == 0
    assert serving("staging") == pinned("staging") == triggers("staging")["ModelPackageArn"] == v1


def test_a_rejection_with_no_older_approved_version_disables_the_triggers(stack, v1, tmp_path):
    approve(v1, "Rejected")
    assert deploy("rollback", "prod", build_dir=tmp_path, MODEL_APPROVAL_STATUS="Rejected", MODEL_PACKAGE_ARN=v1) == 0
    assert serving("prod") is None  # the endpoint stack is gone
    values = triggers("prod")
    assert values["ScheduleState"] == values["InputRuleState"] == "DISABLED"
    # A change of the triggers re-reads approval: they cannot be turned back on for the rejected version.
    from deploy.batch import promote
    from deploy.environment import BUILD_VARIABLES, load
    from deploy.errors import DeployError

    with pytest.raises(DeployError, match="Rejected"):
        promote.promote(load(BUILD_VARIABLES), "prod", v1, tmp_path)
    # Nor can a person start the pipeline that still pins it: batch-run re-reads the pinned version first.
    before = boto3.client("sagemaker").list_pipeline_executions(PipelineName=f"{PROJECT}-batch-inference-prod")
    assert deploy("batch-run", "prod", build_dir=tmp_path) == 1
    after = boto3.client("sagemaker").list_pipeline_executions(PipelineName=f"{PROJECT}-batch-inference-prod")
    assert len(after["PipelineExecutionSummaries"]) == len(before["PipelineExecutionSummaries"])
