"""The container contract: steps run isolated in their image's environment, as SageMaker runs them.

The SDK v2 sample (tests/sdk_v2/sample/) is a pipeline written the way AWS's public samples are; it
runs unchanged on the local stack. Tests that need bubblewrap skip, with the reason, where it cannot run.
"""

from __future__ import annotations

import io
import json
import pickle
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

from local_aws.sagemaker.executor import container, images, step_types

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLE = REPO_ROOT / "tests" / "sdk_v2" / "sample"
ABALONE_CSV = REPO_ROOT.parent / "shared" / "datasets" / "abalone.csv"
ROLE_ARN = "arn:aws:iam::123456789012:role/local-stack-tests"
BUCKET = "sagemaker-local-artifacts"
SKLEARN_1_2 = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
XGBOOST = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:{}"

needs_isolation = pytest.mark.skipif(
    not container.isolation_off() and container._bwrap_problem() is not None,
    reason=f"steps cannot be isolated here: {container._bwrap_problem()}",
)


def job(tmp_path: Path, s3=None) -> step_types.Job:
    folder = tmp_path / "job"
    folder.mkdir(parents=True, exist_ok=True)
    return step_types.Job("contract", "arn:aws:sagemaker:us-east-1:123456789012", folder, s3, None, {})


def processing(image: str, script: str, outputs: dict[str, str] | None = None) -> dict:
    return {
        "AppSpecification": {"ImageUri": image, "ContainerEntrypoint": ["python3", "-c", script]},
        "ProcessingOutputConfig": {
            "Outputs": [
                {"OutputName": name, "S3Output": {"S3Uri": uri, "LocalPath": "/opt/ml/processing/out"}}
                for name, uri in (outputs or {}).items()
            ]
        },
    }


@needs_isolation
def test_a_hard_coded_container_path_lands_in_the_jobs_s3_output_and_never_on_the_host(tmp_path, clients):
    host_opt_ml = Path("/opt/ml")
    existed = host_opt_ml.exists()
    script = (
        "import json, os; open('/opt/ml/processing/out/x', 'w').write('from the container');"
        "print(json.dumps(sorted(os.listdir('/opt/ml/config'))))"
    )
    uri = f"s3://{BUCKET}/tests/contract/{time.time_ns()}"
    step_types.run_processing(processing(SKLEARN_1_2, script, {"out": uri}), job(tmp_path, clients.s3))

    bucket, key = uri.removeprefix("s3://").split("/", 1)
    assert clients.s3.get_object(Bucket=bucket, Key=f"{key}/x")["Body"].read() == b"from the container"
    assert Path("/opt/ml").exists() == existed  # no mount point, no file: the host's /opt/ml is untouched
    log = (tmp_path / "job" / "output.log").read_text().splitlines()
    assert json.loads(log[-1]) == ["processingjobconfig.json", "resourceconfig.json"]


@needs_isolation
def test_a_1_2_1_step_sees_scikit_learn_1_2_1(tmp_path):
    script = "import sklearn, pandas, sys; print(sklearn.__version__, pandas.__version__, sys.version_info[:2])"
    step_types.run_processing(processing(SKLEARN_1_2, script), job(tmp_path))
    assert (tmp_path / "job" / "output.log").read_text().splitlines()[-1] == "1.2.1 1.5.3 (3, 11)"


def test_an_image_without_an_environment_fails_naming_the_nearest_supported_one(tmp_path):
    arguments = processing(XGBOOST.format("1.5-1"), "print('never runs')")
    with pytest.raises(step_types.StepFailure) as failure:
        step_types.run_processing(arguments, job(tmp_path))
    assert "sagemaker-xgboost:1.5-1 (xgboost 1.5-1) has no local environment" in failure.value.reason
    assert "Nearest supported: xgboost 1.7-1" in failure.value.reason
    with pytest.raises(images.ImageError, match="not one the local stack can run"):
        images.resolve("123.dkr.ecr.us-east-1.amazonaws.com/my-own-image:latest")


def training(tmp_path: Path, clients, version: str, hyperparameters: dict) -> step_types.Outcome:
    prefix = f"tests/contract/train-{time.time_ns()}"
    rows = "\n".join(f"{2 * i % 7},{i % 7},{i % 3}" for i in range(60))
    clients.s3.put_object(Bucket=BUCKET, Key=f"{prefix}/train/train.csv", Body=rows.encode())
    arguments = {
        "AlgorithmSpecification": {"TrainingImage": XGBOOST.format(version), "TrainingInputMode": "File"},
        "HyperParameters": hyperparameters,
        "InputDataConfig": [
            {
                "ChannelName": "train",
                "ContentType": "text/csv",
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/{prefix}/train"}},
            }
        ],
        "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/{prefix}/models"},
        "ResourceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1},
    }
    return step_types.run_training(arguments, job(tmp_path, clients.s3))


def model_file(clients, outcome: step_types.Outcome) -> bytes:
    bucket, key = outcome.properties["ModelArtifacts"]["S3ModelArtifacts"].removeprefix("s3://").split("/", 1)
    with tarfile.open(fileobj=io.BytesIO(clients.s3.get_object(Bucket=bucket, Key=key)["Body"].read())) as tar:
        assert tar.getnames() == ["xgboost-model"]
        return tar.extractfile("xgboost-model").read()


@needs_isolation
def test_xgboost_1_0_1_pickles_the_booster_and_1_7_1_saves_its_own_format(tmp_path, clients):
    old = model_file(
        clients, training(tmp_path / "old", clients, "1.0-1", {"num_round": "5", "objective": "reg:linear"})
    )
    assert old[:1] == b"\x80"  # a pickle, which only the image's xgboost 1.0 can read back
    new_outcome = training(tmp_path / "new", clients, "1.7-1", {"num_round": "5", "objective": "reg:squarederror"})
    new = model_file(clients, new_outcome)
    assert new[:1] != b"\x80" and not new.startswith(b"{")  # XGBoost's binary format (1.7 save_model, no .json)
    assert [m["MetricName"] for m in new_outcome.properties["FinalMetricDataList"]] == ["train:rmse"]
    with pytest.raises(pickle.UnpicklingError):
        pickle.loads(new)  # noqa: S301 - our own test model
    log = (tmp_path / "new" / "job" / "output.log").read_text()
    assert "xgboost 1.7.4" in log


@needs_isolation
@pytest.mark.parametrize(
    ("version", "hyperparameters", "named"),
    [
        ("1.7-1", {"num_round": "5", "silent": "0"}, "silent"),  # removed after 1.0
        ("1.7-1", {"num_round": "5", "max_dept": "3"}, "max_dept"),  # a typo xgboost itself only warns about
        ("1.0-1", {"num_round": "5", "objective": "reg:absoluteerror"}, "reg:absoluteerror"),  # new in 1.7
        ("1.0-1", {"objective": "reg:linear"}, "num_round"),
    ],
)
def test_the_xgboost_image_refuses_what_its_version_does_not_accept(tmp_path, clients, version, hyperparameters, named):
    with pytest.raises(step_types.StepFailure) as failure:
        training(tmp_path, clients, version, hyperparameters)
    assert failure.value.reason.startswith("AlgorithmError")
    assert named in failure.value.reason


def test_isolation_off_says_so_in_the_steps_log(tmp_path, monkeypatch):
    monkeypatch.setenv(container.ISOLATION_VARIABLE, "off")
    step_types.run_processing(processing(SKLEARN_1_2, "print('ran')"), job(tmp_path))
    log = (tmp_path / "job" / "output.log").read_text()
    assert "LOCAL_STACK_ISOLATION=off: this step runs WITHOUT isolation" in log
    assert log.splitlines()[-1] == "ran"


def test_without_bubblewrap_a_step_fails_at_once_saying_so(tmp_path, monkeypatch):
    monkeypatch.setattr(container, "_bwrap_problem", lambda: "bubblewrap (bwrap) is not installed")
    with pytest.raises(step_types.StepFailure, match="bwrap.*not installed.*LOCAL_STACK_ISOLATION=off"):
        step_types.run_processing(processing(SKLEARN_1_2, "print('never runs')"), job(tmp_path))
    assert not (tmp_path / "job" / "opt").exists()


@pytest.fixture(scope="module")
def sdk_v2_python() -> Path:
    """SDK v2's own environment, from its lock file (the Makefile target does the same, once)."""
    subprocess.run(["make", "-s", "--no-print-directory", ".venv-sdk2/.installed"], cwd=REPO_ROOT, check=True)
    return REPO_ROOT / ".venv-sdk2" / "bin" / "python"


@needs_isolation
def test_an_sdk_v2_pipeline_in_the_style_of_aws_samples_runs_unchanged(local_stack, clients, sdk_v2_python):
    if not ABALONE_CSV.exists():
        pytest.fail(f"the abalone data set is missing: expected {ABALONE_CSV}")
    clients.s3.upload_file(str(ABALONE_CSV), BUCKET, "sample/abalone.csv")
    group = f"sdk-v2-sample-{time.time_ns()}"
    clients.sagemaker.create_model_package_group(ModelPackageGroupName=group)
    built = subprocess.run(
        [str(sdk_v2_python), "build.py", ROLE_ARN, BUCKET, group],
        cwd=SAMPLE,
        env=local_stack.environ(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    arn = built.stdout.strip().splitlines()[-1]

    deadline = time.monotonic() + 300
    while (status := clients.sagemaker.describe_pipeline_execution(PipelineExecutionArn=arn))[
        "PipelineExecutionStatus"
    ] == "Executing":
        assert time.monotonic() < deadline, "the execution did not finish in 300 s"
        time.sleep(0.5)
    steps = clients.sagemaker.list_pipeline_execution_steps(PipelineExecutionArn=arn)["PipelineExecutionSteps"]
    assert status["PipelineExecutionStatus"] == "Succeeded", [(s["StepName"], s.get("FailureReason")) for s in steps]
    # SDK v2 names the RegisterModel collection's step "<name>-RegisterModel".
    assert {s["StepName"] for s in steps} >= {
        "TrainAbaloneModel",
        "CheckMSEAbaloneEvaluation",
        "RegisterAbaloneModel-RegisterModel",
    }

    packages = clients.sagemaker.list_model_packages(ModelPackageGroupName=group)["ModelPackageSummaryList"]
    assert len(packages) == 1
    package = clients.sagemaker.describe_model_package(ModelPackageName=packages[0]["ModelPackageArn"])
    metrics_uri = package["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"]
    bucket, key = metrics_uri.removeprefix("s3://").split("/", 1)
    evaluation = json.loads(clients.s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    mse = evaluation["regression_metrics"]["mse"]["value"]
    assert 3.0 < mse <= 7.0, evaluation  # a real model on the real data, under the pipeline's threshold
    assert package["InferenceSpecification"]["Containers"][0]["Image"].endswith("sagemaker-xgboost:1.0-1-cpu-py3")
