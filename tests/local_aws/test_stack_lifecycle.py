"""The stack starts as one background process and stops by PID, leaving no process behind."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from local_aws import LocalStack, LocalStackError
from local_aws.core.lifecycle import group_members, process_alive, process_command, read_state

REPO_ROOT = Path(__file__).resolve().parents[2]
LOCAL_STACK_CLI = REPO_ROOT / "scripts" / "local-stack"
ROLE = "arn:aws:iam::123456789012:role/local-stack-tests"
CHILD_PLUGIN = """
import os, subprocess
from pathlib import Path
# A child of the server, as a step script the executor starts would be.
child = subprocess.Popen(["sleep", "300"])
(Path(os.environ["LOCAL_STACK_STATE_DIR"]) / "child.pid").write_text(str(child.pid))
"""


def test_start_and_stop_by_pid_leave_no_process(tmp_path):
    plugin = tmp_path / "child_plugin.py"
    plugin.write_text(CHILD_PLUGIN)
    said = []
    stack = LocalStack(state_dir=tmp_path / "state", plugins=[str(plugin)], progress=said.append)

    env = stack.start()
    try:
        info = read_state(stack.state_dir)
        pid, child = info["pid"], int((stack.state_dir / "child.pid").read_text())
        assert process_alive(pid) and process_alive(child)
        assert set(group_members(pid)) == {pid, child}
        assert not blocks_sigterm(child)  # else `stop` could only end the server's children with SIGKILL
        assert info["gateway_url"] == env["AWS_ENDPOINT_URL_SAGEMAKER"] == env["AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"]
        assert info["moto_url"] == env["AWS_ENDPOINT_URL"]
        for url in (info["gateway_url"], info["moto_url"]):
            assert url.startswith("http://127.0.0.1:")
        health_url = f"{info['gateway_url']}/__local_stack/health"
        with urllib.request.urlopen(health_url) as answer:  # noqa: S310 - the stack's loopback http URL
            assert json.load(answer)["status"] == "ready"
    finally:
        assert stack.stop() is True

    assert not process_alive(pid)
    assert not process_alive(child)
    assert group_members(pid) == []
    assert not [message for message in said if "killed" in message]  # SIGTERM was enough for all of them
    assert read_state(stack.state_dir) is None
    assert stack.stop() is False  # idempotent


def test_stop_after_the_server_died_ends_the_processes_it_left(tmp_path):
    plugin = tmp_path / "child_plugin.py"
    plugin.write_text(CHILD_PLUGIN)
    stack = LocalStack(state_dir=tmp_path / "state", plugins=[str(plugin)])
    stack.start()
    pid, child = read_state(stack.state_dir)["pid"], int((stack.state_dir / "child.pid").read_text())

    try:
        os.kill(pid, signal.SIGKILL)  # the server alone dies, as in a crash; its child lives on
        stack._process.wait(timeout=10)
        assert process_alive(child)

        assert stack.stop() is False  # nothing was running...
        assert not process_alive(child)  # ...but what it left behind is gone
        assert group_members(pid) == []
    finally:
        if process_alive(child):
            os.kill(child, signal.SIGKILL)


def test_cli_up_status_env_down(tmp_path):
    state = ["--state-dir", str(tmp_path / "state")]

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, str(LOCAL_STACK_CLI), *args, *state],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    up = cli("up")
    try:
        assert up.returncode == 0, up.stderr
        assert "artifact bucket s3://sagemaker-local-artifacts (encrypted at rest, public access blocked" in up.stdout
        assert "model package group abalone (created)" in up.stdout
        pid = read_state(tmp_path / "state")["pid"]

        again = cli("up")
        assert again.returncode == 0
        assert f"already running (PID {pid}" in again.stdout
        assert "model package group abalone (already there)" in again.stdout

        status = cli("status")
        assert status.returncode == 0
        assert f"running, PID {pid}" in status.stdout

        printed = cli("env")
        assert printed.returncode == 0
        variables = exported(printed.stdout)
        assert variables["AWS_ENDPOINT_URL_SAGEMAKER"] == read_state(tmp_path / "state")["gateway_url"]
        assert variables["AWS_DEFAULT_REGION"] == variables["AWS_REGION"] == "us-east-1"
        assert variables["ARTIFACT_BUCKET"] == "sagemaker-local-artifacts"
        assert variables["MODEL_PACKAGE_GROUP_NAME"] == "abalone"
        assert printed.stdout.startswith("unset AWS_PROFILE AWS_SESSION_TOKEN\n")
        assert bucket_is_encrypted(variables)
    finally:
        down = cli("down")
    assert down.returncode == 0
    assert not process_alive(pid)
    assert cli("down").returncode == 0
    stopped = cli("status")
    assert stopped.returncode == 3 and "stopped" in stopped.stdout
    no_env = cli("env")
    assert no_env.returncode == 1 and "not running" in no_env.stderr


def test_a_running_stack_is_reused_only_if_it_is_the_one_asked_for(local_stack, tmp_path):
    running = read_state(local_stack.state_dir)
    other_plugin = tmp_path / "other_plugin.py"
    other_plugin.write_text("")

    with pytest.raises(LocalStackError, match=r"answers for region us-east-1, not eu-west-1\. Stop it first"):
        LocalStack(state_dir=local_stack.state_dir, region="eu-west-1", local_gitlab=False).start()
    with pytest.raises(LocalStackError, match=f"has not loaded the plugin\\(s\\) {other_plugin}"):
        LocalStack(state_dir=local_stack.state_dir, plugins=[str(other_plugin)], local_gitlab=False).start()

    said = []
    with LocalStack(state_dir=local_stack.state_dir, progress=said.append, local_gitlab=False) as reused:
        assert reused.env == running["env"]
    assert f"local stack already running (PID {running['pid']}, state {local_stack.state_dir})" in said
    assert process_alive(running["pid"])  # the block did not start it, so it did not stop it
    assert read_state(local_stack.state_dir)["pid"] == running["pid"]


def test_a_failed_start_stops_the_server_it_launched(tmp_path, monkeypatch):
    said = []
    stack = LocalStack(state_dir=tmp_path / "state", progress=said.append)

    def refused() -> None:
        raise RuntimeError("bucket creation refused")

    monkeypatch.setattr(stack, "_bootstrap", refused)
    with pytest.raises(RuntimeError, match="bucket creation refused"):
        stack.start()

    [pid] = [int(found) for message in said for found in re.findall(r"ready in .* \(PID (\d+)\)", message)]
    assert not process_alive(pid)
    assert read_state(stack.state_dir) is None


def test_a_stale_state_file_is_cleaned_up(tmp_path):
    dead = subprocess.Popen(["true"])  # a PID that is surely gone: our own finished, reaped child
    dead.wait()
    state = tmp_path / "state"
    state.mkdir()
    (state / "stack.json").write_text(json.dumps({"pid": dead.pid}))

    assert LocalStack(state_dir=state).running() is None
    assert not (state / "stack.json").exists()


def test_stop_refuses_a_pid_that_is_not_a_stack_server(tmp_path):
    stranger = subprocess.Popen(["sleep", "60"])
    try:
        state = tmp_path / "state"
        state.mkdir()
        (state / "stack.json").write_text(json.dumps({"pid": stranger.pid}))

        with pytest.raises(LocalStackError, match=f"PID {stranger.pid} .* is not a local stack server"):
            LocalStack(state_dir=state).stop()
        assert stranger.poll() is None  # untouched
    finally:
        stranger.send_signal(signal.SIGTERM)
        stranger.wait()


def test_a_server_that_cannot_start_reports_its_log(tmp_path):
    broken = tmp_path / "broken_plugin.py"
    broken.write_text("raise ImportError('this plugin is broken on purpose')\n")
    stack = LocalStack(state_dir=tmp_path / "state", plugins=[str(broken)])

    started = time.monotonic()
    with pytest.raises(LocalStackError, match="this plugin is broken on purpose"):
        stack.start()

    assert time.monotonic() - started < 30
    assert stack.running() is None


def test_the_warm_up_setting_is_on_or_off_and_off_skips_the_xgboost_import(tmp_path, monkeypatch):
    # tests/conftest.py sets off for the test stacks; the demo's runs with it on. A stack of its own: the session's
    # may have served a prediction already (which loads xgboost, as it should).
    with LocalStack(state_dir=tmp_path / "off", local_gitlab=False) as stack:
        log = (stack.state_dir / "logs" / "server.log").read_text()
        assert "no runtime warm-up (LOCAL_STACK_WARM_UP=off)" in log and "runtime warm-up done" not in log
        assert "libxgboost" not in Path(f"/proc/{stack.info['pid']}/maps").read_text()

    monkeypatch.setenv("LOCAL_STACK_WARM_UP", "maybe")
    with pytest.raises(LocalStackError, match=r"LOCAL_STACK_WARM_UP='maybe': set it to on \(the default\) or off"):
        LocalStack(state_dir=tmp_path / "state", local_gitlab=False).start()


def test_clients_share_one_session_so_service_models_are_read_once(local_stack):
    # A session per client re-read botocore's models and endpoint rules: ~0.3 s of CPU a client, ~4 s an `up`.
    from local_aws.core import api

    assert local_stack.client("s3")._loader is local_stack.client("sagemaker")._loader
    moto_url, region = local_stack.env["AWS_ENDPOINT_URL"], local_stack.env["AWS_REGION"]
    assert (
        api.moto_client(moto_url, "s3", region)._loader
        is api.moto_client(moto_url, "sqs", region, "210987654321")._loader
    )


def blocks_sigterm(pid: int) -> bool:
    [blocked] = [
        line.split()[1] for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith("SigBlk:")
    ]
    return bool(int(blocked, 16) & (1 << (signal.SIGTERM - 1)))


def exported(script: str) -> dict[str, str]:
    variables = {}
    for line in script.splitlines():
        if line.startswith("export "):
            name, _, value = line.removeprefix("export ").partition("=")
            variables[name] = shlex.split(value)[0]
    return variables


def bucket_is_encrypted(variables: dict[str, str]) -> bool:
    import boto3

    s3 = boto3.client(
        "s3",
        endpoint_url=variables["AWS_ENDPOINT_URL"],
        region_name=variables["AWS_REGION"],
        aws_access_key_id=variables["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=variables["AWS_SECRET_ACCESS_KEY"],
    )
    rules = s3.get_bucket_encryption(Bucket=variables["ARTIFACT_BUCKET"])["ServerSideEncryptionConfiguration"]["Rules"]
    blocked = s3.get_public_access_block(Bucket=variables["ARTIFACT_BUCKET"])["PublicAccessBlockConfiguration"]
    return rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256" and all(blocked.values())


def local_stack_cli(state: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(LOCAL_STACK_CLI), *args, "--state-dir", str(state)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_corrupt_stack_json_or_events_jsonl_is_reported_and_ignored(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    (state / "stack.json").write_text('{"pid": 12')  # cut short by a full disk
    (state / "events.jsonl").write_text('{"id": "1", "detail-type": "x"}\nnot json\n{"id": "3", "det')

    status = local_stack_cli(state, "status")
    assert status.returncode == 3 and "stopped" in status.stdout
    assert f"ignored {state / 'stack.json'}: not a stack description" in status.stdout
    assert local_stack_cli(state, "down").returncode == 0

    up = local_stack_cli(state, "up")
    try:
        assert up.returncode == 0, up.stderr
        assert "dropped 1 truncated line of events.jsonl" in up.stdout
        assert "dropped 1 unreadable line(s) of events.jsonl" in up.stdout
        pid = read_state(state)["pid"]
        (state / "stack.json").write_text("\0\0\0")  # damaged while the server runs
        orphan = local_stack_cli(state, "status")
        assert orphan.returncode == 1 and f"running as PID {pid}, but without a readable stack.json" in orphan.stdout
    finally:
        down = local_stack_cli(state, "down")
    assert down.returncode == 0, down.stderr
    assert not process_alive(pid)  # found by the PID in stack.lock
    assert local_stack_cli(state, "status").returncode == 3


def test_two_ups_at_the_same_moment_start_one_stack(tmp_path):
    state = tmp_path / "state"
    command = [sys.executable, str(LOCAL_STACK_CLI), "up", "--state-dir", str(state)]
    ups = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    answers = [(up.wait(timeout=120), *up.communicate()) for up in ups]
    try:
        pid = read_state(state)["pid"]
        servers = [p for p in map(int, filter(str.isdigit, os.listdir("/proc"))) if str(state) in process_command(p)]
        assert [p for p in servers if "local_aws.core.server" in process_command(p)] == [pid]
        refused = [err for code, _out, err in answers if code != 0]
        for message in refused:  # started side by side: the lock refuses the second server, naming the first
            assert f"another local stack (PID {pid}) is running in {state}" in message
        assert len(refused) <= 1
        assert f"running, PID {pid}" in local_stack_cli(state, "status").stdout
    finally:
        assert local_stack_cli(state, "down").returncode == 0
    assert not process_alive(pid)
    assert local_stack_cli(state, "status").returncode == 3


def test_an_execution_whose_server_was_killed_ends_failed_on_the_next_start(tmp_path):
    state = tmp_path / "state"
    stack = LocalStack(state_dir=state, local_gitlab=False)
    stack.start()
    sagemaker, s3 = stack.client("sagemaker"), stack.client("s3")
    s3.put_object(Bucket="sagemaker-local-artifacts", Key="code/slow/script.py", Body=b"import time\ntime.sleep(300)\n")
    step = {
        "Name": "Slow",
        "Type": "Processing",
        "Arguments": {
            "AppSpecification": {
                "ImageUri": "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3",
                "ContainerEntrypoint": ["python3", "/opt/ml/processing/input/code/script.py"],
            },
            "ProcessingInputs": [
                {
                    "InputName": "code",
                    "S3Input": {
                        "S3Uri": "s3://sagemaker-local-artifacts/code/slow/script.py",
                        "LocalPath": "/opt/ml/processing/input/code",
                    },
                }
            ],
        },
    }
    definition = {"Version": "2020-12-01", "Parameters": [], "Steps": [step]}
    sagemaker.create_pipeline(PipelineName="slow", PipelineDefinition=json.dumps(definition), RoleArn=ROLE)
    arn = sagemaker.start_pipeline_execution(PipelineName="slow")["PipelineExecutionArn"]
    deadline = time.monotonic() + 60
    while not sagemaker.list_pipeline_execution_steps(PipelineExecutionArn=arn)["PipelineExecutionSteps"]:
        assert time.monotonic() < deadline, "the step never started"
        time.sleep(0.2)
    os.kill(stack.info["pid"], signal.SIGKILL)  # the server dies mid-step
    stack._process.wait(timeout=10)
    stack.stop()  # ends the step script it left

    said = []
    with LocalStack(state_dir=state, local_gitlab=False, progress=said.append) as restarted:
        sagemaker = restarted.client("sagemaker")
        execution = sagemaker.describe_pipeline_execution(PipelineExecutionArn=arn)
        assert execution["PipelineExecutionStatus"] == "Failed"
        assert execution["FailureReason"] == "local stack restarted"
        [slow] = sagemaker.list_pipeline_execution_steps(PipelineExecutionArn=arn)["PipelineExecutionSteps"]
        assert slow["StepStatus"] == "Failed" and slow["FailureReason"] == "local stack restarted"
        summaries = sagemaker.list_pipeline_executions(PipelineName="slow")["PipelineExecutionSummaries"]
        assert [s["PipelineExecutionStatus"] for s in summaries] == ["Failed"]
    assert f"pipeline execution {arn} was interrupted: Failed (local stack restarted)" in said
