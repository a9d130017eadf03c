"""`make soak`: many builds and deploys against one local stack state, with restarts and a killed server.

Each round: the model-build pipeline (`python -m pipelines.run_pipeline run`, as its CI job runs it), the
approval (`scripts/approve-model`), then model-deploy's own commands (`python -m deploy build`,
`deploy staging`, `deploy prod`). Between rounds the stack is stopped and started again; every
`--kill-every`-th round the server is killed with SIGKILL instead (nothing is flushed or stopped cleanly).
At the end the stack is started once more and must serve, in staging and prod, the last version deployed;
the registry must hold exactly the packages the rounds registered, with the approvals they got; and the
server's CPU time to start must stay within `--bound` times that after the first rounds (CPU, not wall
time: on a shared machine the wall time mostly measures the neighbours).

The GitLab side (gitlab-ci-local, the trigger Lambda) is left out: `make demo` covers it, and it would
make each round a minute long. Everything runs on 127.0.0.1; servers are stopped by PID.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from deploy.naming import stack_name
from local_aws import LocalStack
from local_demo import abalone_data
from local_gitlab import project

REPO_ROOT = Path(__file__).resolve().parents[1]
ROLE = "arn:aws:iam::123456789012:role/soak"


class SoakError(RuntimeError):
    pass


def run(command: list[str], env: dict[str, str], cwd: Path, what: str, timeout: float = 600) -> str:
    finished = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if finished.returncode != 0:
        raise SoakError(
            f"{what} failed (exit {finished.returncode}):\n{finished.stdout[-2000:]}\n{finished.stderr[-2000:]}"
        )
    return finished.stdout


def start(state: Path) -> tuple[LocalStack, float]:
    """A started stack and its start's wall time (the server's CPU time is `stack.info["startup_cpu_seconds"]`)."""
    stack = LocalStack(state_dir=state, local_gitlab=False)
    started = time.monotonic()
    stack.start()
    return stack, time.monotonic() - started


def build_and_deploy(stack: LocalStack, round_number: int, data_uri: str, build_dir: Path) -> str:
    """One round; returns the package ARN it registered and deployed."""
    env = stack.environ() | {"DEPLOY_POLL_SECONDS": "0.2"}
    sagemaker = stack.client("sagemaker")
    before = {p["ModelPackageArn"] for p in packages(sagemaker)}
    # A new commit each round: a new registered version, while every other step hits the cache.
    build = [sys.executable, "-m", "pipelines.run_pipeline", "run", "--role-arn", ROLE, "--poll-seconds", "0.2"]
    build += ["-p", f"InputDataUrl={data_uri}", "-p", f"GitCommit=soak-{round_number}"]
    run(build, env, REPO_ROOT / "model-build", f"round {round_number}: the build pipeline")
    [arn] = [p["ModelPackageArn"] for p in packages(sagemaker) if p["ModelPackageArn"] not in before]
    approve = [sys.executable, str(REPO_ROOT / "scripts" / "approve-model"), "approve", "--arn", arn]
    run([*approve, "--description", f"soak round {round_number}"], env, REPO_ROOT, "the approval")
    deploy_env = env | project.deploy_variables(stack.env["AWS_REGION"]) | {"MODEL_PACKAGE_ARN": arn}
    deploy_env |= project.build_variables(stack.env["AWS_REGION"]) | {"MODEL_EXECUTION_ROLE_ARN": ROLE}
    deploy = [sys.executable, "-m", "deploy", "--build-dir", str(build_dir)]
    run([*deploy, "build"], deploy_env, REPO_ROOT / "model-deploy", "deploy build")
    for stage in ("staging", "prod"):
        run([*deploy, "deploy-stage", stage], deploy_env, REPO_ROOT / "model-deploy", f"deploy-stage {stage}")
    return arn


def packages(sagemaker) -> list[dict]:
    found, token = [], None
    while True:
        page = sagemaker.list_model_packages(
            ModelPackageGroupName="abalone",
            SortBy="CreationTime",
            SortOrder="Ascending",
            **({"NextToken": token} if token else {}),
        )
        found += page["ModelPackageSummaryList"]
        token = page.get("NextToken")
        if not token:
            return found


def served_package(stack: LocalStack, stage: str) -> str:
    """The package the stage's endpoint really serves: stack outputs -> endpoint -> config -> model."""
    project_name = project.deploy_variables(stack.env["AWS_REGION"])["SAGEMAKER_PROJECT_NAME"]
    outputs = stack.client("cloudformation").describe_stacks(StackName=stack_name(project_name, stage))["Stacks"][0]
    names = {o["OutputKey"]: o["OutputValue"] for o in outputs["Outputs"]}
    sagemaker = stack.client("sagemaker")
    endpoint = sagemaker.describe_endpoint(EndpointName=names["EndpointName"])
    config = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    model = sagemaker.describe_model(ModelName=config["ProductionVariants"][0]["ModelName"])
    return model["PrimaryContainer"]["ModelPackageName"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--kill-every", type=int, default=4, help="SIGKILL the server after every Nth round")
    parser.add_argument("--bound", type=float, default=1.2, help="allowed start time, relative to after round 1")
    parser.add_argument("--max-minutes", type=float, default=40, help="give up after this long")
    parser.add_argument("--state-dir", type=Path, default=None, help="default: a temporary folder")
    args = parser.parse_args(argv)
    deadline = time.monotonic() + args.max_minutes * 60
    with tempfile.TemporaryDirectory(prefix="soak-") as scratch:
        state = args.state_dir or Path(scratch) / "state"
        try:
            return soak(state, Path(scratch), args, deadline)
        except SoakError as error:
            print(f"\nsoak FAILED: {error}", file=sys.stderr)
            LocalStack(state_dir=state).stop()
            return 1


def soak(state: Path, scratch: Path, args, deadline: float) -> int:
    deployed, starts = [], []
    stack, seconds = start(state)
    data = abalone_data.resolve(os.environ.get("DATA"))
    data_uri = abalone_data.upload(data, stack.client("s3"), stack.env["ARTIFACT_BUCKET"])
    for number in range(1, args.rounds + 1):
        if time.monotonic() > deadline:
            raise SoakError(f"out of time after {number - 1} rounds")
        took = time.monotonic()
        deployed.append(build_and_deploy(stack, number, data_uri, scratch / f"build-{number}"))
        if number % args.kill_every == 0:
            os.kill(stack.info["pid"], signal.SIGKILL)  # no clean shutdown: the journal is all there is
            stack._process.wait(timeout=10)  # reap it, then `stop` ends what it left behind
            how = "killed (SIGKILL)"
        else:
            how = "stopped"
        stack.stop()
        stack, seconds = start(state)
        starts.append(stack.info["startup_cpu_seconds"])
        print(
            f"round {number:2}/{args.rounds}: deployed {deployed[-1].rsplit('/', 2)[-2:]} in "
            f"{time.monotonic() - took:5.1f} s; server {how}; restarted in {seconds:.2f} s "
            f"(server CPU {starts[-1]:.2f} s"
            f", {stack.info['restored_requests']} requests replayed)",
            flush=True,
        )
    try:
        problems = check(stack, deployed, starts, args.bound)
    finally:
        stack.stop()
    for problem in problems:
        print(f"  PROBLEM: {problem}", file=sys.stderr)
    print(
        f"\nsoak {'FAILED' if problems else 'passed'}: {len(deployed)} rounds; server CPU time to start: "
        f"{median(starts[:3]):.2f} s after the first rounds, {median(starts[-3:]):.2f} s after the last "
        f"(medians of 3; bound {args.bound}x)"
    )
    return 1 if problems else 0


def median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def check(stack: LocalStack, deployed: list[str], starts: list[float], bound: float) -> list[str]:
    problems = []
    for stage in ("staging", "prod"):
        serving = served_package(stack, stage)
        if serving != deployed[-1]:
            problems.append(f"{stage} serves {serving}, but the last deploy was {deployed[-1]}")
    registered = [p["ModelPackageArn"] for p in packages(stack.client("sagemaker"))]
    if registered != deployed:
        problems.append(f"the registry holds {registered}, but the rounds registered {deployed}")
    statuses = {p["ModelPackageArn"]: p["ModelApprovalStatus"] for p in packages(stack.client("sagemaker"))}
    if {statuses[arn] for arn in deployed} != {"Approved"}:
        problems.append(f"approvals lost: {statuses}")
    # The server's CPU time to start: wall time on a shared machine mostly measures the neighbours' load.
    # Medians of three, the first three starts against the last three.
    first, recent = median(starts[:3]), median(starts[-3:])
    if recent > bound * first:
        problems.append(f"start CPU time grew from {first:.2f} s to {recent:.2f} s (more than {bound}x)")
    return problems


if __name__ == "__main__":
    sys.exit(main())
