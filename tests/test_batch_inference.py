"""Batch inference end to end on the local stack: the build registers a package, the deploy's batch pipeline
scores files with exactly that version, checks drift against its baselines and applies the retraining rule.

The commands are the ones CI runs (`run_pipeline run`, `python -m deploy build|batch-upsert|batch-run`).
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import boto3
import numpy as np
import pandas as pd
import pytest

from local_aws import LocalStack
from local_aws.sagemaker_runtime import models
from local_demo import batches

REPO_ROOT = Path(__file__).resolve().parents[1]
ABALONE_CSV = REPO_ROOT.parent / "shared" / "datasets" / "abalone.csv"
ROLE = "arn:aws:iam::123456789012:role/pipeline"
BUCKET = "sagemaker-local-artifacts"
ROOT = f"s3://{BUCKET}/batch-inference/abalone/staging"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with pytest.MonkeyPatch.context() as env, LocalStack(state_dir=tmp_path_factory.mktemp("batch")) as running:
        for name, value in running.env.items():
            env.setenv(name, value)
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "CI_COMMIT_SHA", "CI_PIPELINE_URL", "INPUT_DATA_URL"):
            env.delenv(name, raising=False)
        for name, value in {
            "SAGEMAKER_PROJECT_NAME": "abalone",
            "SAGEMAKER_PROJECT_ID": "p-local",
            "MODEL_PACKAGE_GROUP_NAME": "abalone",
            "ARTIFACT_BUCKET": BUCKET,
            "MODEL_EXECUTION_ROLE_ARN": ROLE,
            "DEPLOY_POLL_SECONDS": "0.2",
        }.items():
            env.setenv(name, value)
        boto3.client("s3").upload_file(str(ABALONE_CSV), BUCKET, "data/abalone/abalone.csv")
        # These tests deploy and run what they test themselves: an approval must not also start the deploy
        # pipeline in the local GitLab behind their backs (it raced them for the staging stack and batch runs).
        running.client("events").disable_rule(Name="sagemaker-abalone-ApprovalRule")
        yield running


@pytest.fixture(scope="module")
def approved(stack, tmp_path_factory):
    """A version built, registered and approved; the staging batch pipeline upserted on it."""
    from deploy import __main__ as deploy_cli
    from pipelines import run_pipeline

    assert run_pipeline.main(["run", "--role-arn", ROLE, "--bucket", BUCKET, "--poll-seconds", "0.2"]) == 0
    sagemaker = boto3.client("sagemaker")
    arn = sagemaker.list_model_packages(ModelPackageGroupName="abalone", SortBy="CreationTime", SortOrder="Descending")[
        "ModelPackageSummaryList"
    ][0]["ModelPackageArn"]
    sagemaker.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Approved")
    build_dir = tmp_path_factory.mktemp("deploy-build")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("MODEL_PACKAGE_ARN", arn)
        assert deploy_cli.main(["--build-dir", str(build_dir), "build"]) == 0
    assert deploy_cli.main(["--build-dir", str(build_dir), "batch-upsert", "staging"]) == 0
    return {"arn": arn, "build_dir": build_dir, "record": json.loads((build_dir / "staging-batch.json").read_text())}


def put_batch(name: str, frame: pd.DataFrame) -> str:
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    boto3.client("s3").put_object(
        Bucket=BUCKET, Key=f"batch-inference/abalone/staging/input/{name}/batch.csv", Body=buffer.getvalue().encode()
    )
    return f"{ROOT}/input/{name}/"


def read(uri: str) -> bytes:
    bucket, key = uri.removeprefix("s3://").split("/", 1)
    return boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()


def own_predictions(package_arn: str, raw: pd.DataFrame) -> np.ndarray:
    """The registered model's predictions, computed here from its model.tar.gz and the training encoding."""
    from pipelines.abalone import preprocess

    package = boto3.client("sagemaker").describe_model_package(ModelPackageName=package_arn)
    url = package["InferenceSpecification"]["Containers"][0]["ModelDataUrl"]
    predictor = models.load_predictor(read(url), url)  # as the runtime serves it (the endpoint's own answers)
    encoded = preprocess.encode(preprocess.validate(raw.astype(str), label_optional=True)).drop(columns=["rings"])
    return np.asarray(predictor.predict(encoded.to_numpy()), dtype=np.float32)


def run_batch(input_uri: str, *extra: str) -> dict:
    from deploy.batch import run as batch_run
    from deploy.environment import RESULTS_VARIABLES, load

    parameters = {"InputDataUrl": input_uri, "RetrainBreaches": "2", "RetrainWindow": "3"}
    parameters.update(pair.split("=", 1) for pair in extra)
    return batch_run.execute(load(RESULTS_VARIABLES), "staging", parameters)


# The demo's batches (local_demo/batches.py): 300 raw rows, and the same rows drifted where the model leans.
drifted = batches.drifted


@pytest.fixture(scope="module")
def sample() -> pd.DataFrame:
    return batches.clean(pd.read_csv(ABALONE_CSV))


@pytest.fixture(scope="module")
def clean_run(approved, sample) -> dict:
    """The clean batch's drift summary (first run of the module: the retraining window below counts on it)."""
    return run_batch(put_batch("clean", sample))


def test_clean_batch_scores_every_row_with_the_approved_version_and_finds_no_drift(approved, sample, clean_run):
    summary = clean_run
    assert summary["model_package_arn"] == approved["arn"]
    assert summary["rows"] == len(sample)
    execution = summary["execution_id"]
    predictions = np.loadtxt(io.BytesIO(read(f"{ROOT}/executions/{execution}/Postprocess/predictions/predictions.csv")))
    assert len(predictions) == len(sample)
    np.testing.assert_array_equal(predictions.astype(np.float32), own_predictions(approved["arn"], sample))
    assert summary["checks"]["data_quality"]["ran"] and summary["checks"]["feature_attribution"]["ran"]
    assert summary["violation_count"] == 0, summary["checks"]
    assert summary["attribution_ndcg"] > 0.9
    # The drift check reads the model's input (the encoded features), the schema of the build's baseline.
    from pipelines.abalone import preprocess

    assert set(summary["feature_distances"]) == set(preprocess.ENCODED_FEATURES)
    assert summary["decision"]["retrain"] is False


@pytest.fixture(scope="module")
def drifted_runs(approved, sample, clean_run) -> tuple[dict, dict]:
    """Two drifted runs after the clean one: the first breaks the threshold once (a drift event), the second twice in
    the window (the retraining event)."""
    first = run_batch(put_batch("drift-1", drifted(sample)))
    second = run_batch(put_batch("drift-2", drifted(sample.iloc[::-1])))
    return first, second


def test_drifted_batches_are_flagged_and_the_rule_asks_for_retraining_on_the_second(approved, drifted_runs, stack):
    first, second = drifted_runs
    kinds = {v["constraint_check_type"] for v in first["checks"]["data_quality"]["violations"]}
    assert "baseline_drift_check" in kinds
    assert kinds <= {"baseline_drift_check"}, first["checks"]["data_quality"]["violations"]  # no column is missing
    flagged = {v["feature_name"] for v in first["checks"]["data_quality"]["violations"]}
    assert {"whole_weight", "viscera_weight"} <= flagged
    assert first["checks"]["feature_attribution"]["violations"], first["attribution_ndcg"]
    assert first["attribution_ndcg"] < 0.9 and first["breach"]
    # One breach in the window so far (the clean run before it did not break the threshold): no retraining yet.
    assert first["decision"]["retrain"] is False
    assert first["decision"]["event_detail_type"] == "Batch Inference Drift Detected"  # the drift alert's event
    assert second["decision"]["retrain"] is True and second["decision"]["broken_in_window"] == 2
    assert second["decision"]["event_id"]
    events = [json.loads(line) for line in (Path(stack.state_dir) / "events.jsonl").read_text().splitlines()]
    retrain = [e for e in events if e.get("detail-type") == "Batch Inference Retraining Recommended"]
    assert retrain and retrain[-1]["detail"]["model_package_arn"] == approved["arn"]


def test_transform_runs_the_instance_count_each_over_its_own_shards(approved, sample):
    summary = run_batch(put_batch("clean", sample), "ShardCount=5")
    sagemaker = boto3.client("sagemaker")
    steps = sagemaker.list_pipeline_execution_steps(PipelineExecutionArn=summary["execution_arn"])
    transform = next(s for s in steps["PipelineExecutionSteps"] if s["StepName"] == "Transform")
    job = sagemaker.describe_transform_job(TransformJobName=transform["Metadata"]["TransformJob"]["Arn"].split("/")[-1])
    assert job["TransformResources"]["InstanceCount"] == 2 and job["BatchStrategy"] == "MultiRecord"
    outputs = boto3.client("s3").list_objects_v2(
        Bucket=BUCKET, Prefix=f"batch-inference/abalone/staging/executions/{summary['execution_id']}/Transform/"
    )["Contents"]
    assert sorted(Path(o["Key"]).name for o in outputs) == [f"shard-{i:05d}.csv.out" for i in range(5)]
    assert summary["rows"] == len(sample)


def test_the_retraining_decision_starts_the_build_in_the_local_gitlab_with_its_lineage(approved, drifted_runs, stack):
    """The event -> the project template's RetrainingRule -> the trigger Lambda's real handler -> the build project's
    trigger -> model-build's real .gitlab-ci.yml (its train job) -> a new version whose lineage names that build."""
    from local_demo.batch_triggers import wait_for_retraining_build

    _, second = drifted_runs
    build = wait_for_retraining_build(stack, second["decision"]["event_id"], timeout=600)
    assert build.status == "success", build.jobs
    assert [job["name"] for job in build.jobs] == ["train"]
    sagemaker = boto3.client("sagemaker")
    newest = sagemaker.list_model_packages(
        ModelPackageGroupName="abalone", SortBy="CreationTime", SortOrder="Descending"
    )["ModelPackageSummaryList"][0]
    package = sagemaker.describe_model_package(ModelPackageName=newest["ModelPackageArn"])
    assert newest["ModelPackageArn"] != approved["arn"]
    assert package["CustomerMetadataProperties"]["GitLabPipelineUrl"] == build.web_url


def test_the_drifted_run_and_the_retraining_decision_reach_the_alert_topic(drifted_runs, stack):
    """Through the template's BatchDriftAlertRule and RetrainingAlertRule, the alert gate, the topic, its outbox."""
    import time

    from local_aws.core.lifecycle import ALERT_TOPIC
    from local_aws.sns import outbox

    url, subjects, deadline = outbox.queue_url(stack.client, ALERT_TOPIC), [], time.monotonic() + 60
    wanted = {"[abalone] Batch inference drift in staging", "[abalone] Retraining started by batch drift in staging"}
    while not wanted <= set(subjects) and time.monotonic() < deadline:
        subjects += [message.subject for message in outbox.drain(stack.client, url)]
        time.sleep(0.2)
    assert wanted <= set(subjects), subjects


# The model-quality pipeline with late labels: labels for the clean run's predictions land under
# ground-truth/<batch-execution-id>/ (record_id = the row's position in the batch input).
def put_labels(execution_id: str, labels: pd.DataFrame, files: int = 1) -> str:
    s3 = boto3.client("s3")
    prefix = f"batch-inference/abalone/staging/ground-truth/{execution_id}/"
    for item in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", []):
        s3.delete_object(Bucket=BUCKET, Key=item["Key"])  # corrected labels replace the earlier ones
    edges = np.linspace(0, len(labels), files + 1).astype(int)
    for number, part in enumerate(labels.iloc[start:end] for start, end in zip(edges[:-1], edges[1:], strict=True)):
        buffer = io.StringIO()
        part.to_csv(buffer, index=False)
        s3.put_object(Bucket=BUCKET, Key=f"{prefix}labels-{number}.csv", Body=buffer.getvalue().encode())
    return f"s3://{BUCKET}/{prefix}"


def run_quality(ground_truth: str) -> dict:
    from deploy.batch import quality_run
    from deploy.environment import RESULTS_VARIABLES, load

    return quality_run.execute(load(RESULTS_VARIABLES), "staging", ground_truth)


def labels_of(frame: pd.DataFrame, shift: float = 0.0) -> pd.DataFrame:
    return pd.DataFrame({"record_id": range(len(frame)), "rings": frame["rings"] + shift})


def test_late_labels_that_agree_with_the_model_give_no_model_quality_violations(approved, sample, clean_run):
    from deploy.batch import quality_run

    summary = run_quality(put_labels(clean_run["execution_id"], labels_of(sample).sample(frac=1, random_state=3), 2))
    assert summary["model_package_arn"] == approved["arn"] and summary["rows"] == len(sample)
    assert [r["execution_id"] for r in summary["batch_executions"]] == [clean_run["execution_id"]]
    predictions = own_predictions(approved["arn"], sample)
    rmse = float(np.sqrt(np.mean((sample["rings"].to_numpy() - predictions) ** 2)))
    assert summary["metrics"]["rmse"]["value"] == pytest.approx(rmse, rel=1e-5)  # joined by record id, not order
    description = boto3.client("sagemaker").describe_model_package(ModelPackageName=approved["arn"])
    baseline = json.loads(read(description["DriftCheckBaselines"]["ModelQuality"]["Constraints"]["S3Uri"]))
    assert summary["metrics"]["rmse"]["threshold"] == baseline["regression_constraints"]["rmse"]["threshold"]
    assert summary["violation_count"] == 0, summary["metrics"]
    printed = quality_run.describe(summary)  # what quality-run prints
    assert "rmse" in printed and "VIOLATED" not in printed and printed.endswith("violations: 0")


def test_labels_from_a_shifted_world_give_model_quality_violations_without_failing_the_run(approved, sample, clean_run):
    summary = run_quality(put_labels(clean_run["execution_id"], labels_of(sample, shift=5)))
    violated = {v["metric_name"] for v in summary["violations"]}
    assert {"mse", "rmse", "mae"} <= violated
    assert summary["metrics"]["rmse"]["value"] > summary["metrics"]["rmse"]["threshold"]
    errors = [v for v in summary["violations"] if v["metric_name"] != "r2"]
    assert all(v["constraint_check_type"] == "GreaterThanThreshold" for v in errors)
    root = f"{ROOT}/ground-truth/"  # the S3 rule's GroundTruthUrl: every labelled run of this version
    assert run_quality(root)["violation_count"] == summary["violation_count"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda labels: labels.iloc[:-7], r"7 of the 300 predictions of batch execution \S+ have no label"),
        (lambda labels: labels.assign(record_id=labels["record_id"] + 3), r"record_id 300, 301, 302 not in batch"),
    ],
    ids=["missing-rows", "wrong-ids"],
)
def test_labels_that_do_not_match_the_predictions_fail_the_run_naming_the_problem(
    approved, sample, clean_run, change, message, capsys
):
    from deploy import __main__ as deploy_cli

    ground_truth = put_labels(clean_run["execution_id"], change(labels_of(sample)))
    assert deploy_cli.main(["quality-run", "staging", "--ground-truth", ground_truth]) == 1
    error = capsys.readouterr().err
    assert re.search(f"error: model quality .* Failed: JoinLabels: AlgorithmError: .*{message}", error), error
