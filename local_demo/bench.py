"""`make bench`: the project's speed figures, measured in one run on this machine.

- building the pipeline definition (SDK import, build) ................ target < 3 s
- the build pipeline on the local stack, cold and cached, per step ..... targets < 10 s, < 1 s (gate excepted)
- the local SageMaker runtime: p50/p99 latency and throughput, 1 and 100 rows per request
                                                                        target p50 < 5 ms (1 row)
- `make demo`'s loop with its batch stages, without the retraining build ... target < 45 s
- the local stack's start time after 1 and after 100 demos' worth of state .. target < 1.2x
Figures are printed, not asserted: a slow run is information, not a failed build.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import boto3

from local_aws import LocalStack
from local_aws.sagemaker_runtime.bench import format_figures, measure
from local_demo import abalone_data, soak

REPO_ROOT = Path(__file__).resolve().parents[1]

ROLE = "arn:aws:iam::123456789012:role/bench"
DEFINITION_PROBE = """
import json, time
t0 = time.perf_counter()
from pipelines import sdk_env; sdk_env.configure()
from pipelines.abalone.pipeline import get_pipeline
t1 = time.perf_counter()
definition = get_pipeline("us-east-1", "arn:aws:iam::111111111111:role/r", "bucket").definition()
t2 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "build": t2 - t1}))
"""


def measure_definition() -> dict[str, float]:
    env = dict(os.environ)
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", DEFINITION_PROBE], env=env, capture_output=True, text=True, check=True)
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    figures["process"] = time.perf_counter() - started
    return figures


def run_build(env: dict[str, str], data_uri: str, label: str) -> dict:
    command = [sys.executable, "-m", "pipelines.run_pipeline", "run", "--role-arn", ROLE, "--poll-seconds", "0.2"]
    command += ["-p", f"InputDataUrl={data_uri}"]
    started = time.perf_counter()
    finished = subprocess.run(command, env=env, cwd=REPO_ROOT / "model-build", capture_output=True, text=True)
    wall = time.perf_counter() - started
    if finished.returncode != 0:
        raise SystemExit(f"the {label} build failed:\n{finished.stdout[-3000:]}\n{finished.stderr[-3000:]}")
    sagemaker = boto3.client("sagemaker")
    arn = sagemaker.list_pipeline_executions(PipelineName="abalone-build")["PipelineExecutionSummaries"][0]
    execution = sagemaker.describe_pipeline_execution(PipelineExecutionArn=arn["PipelineExecutionArn"])
    # Paginated: SageMaker returns 10 steps a page, and the build has more.
    pages = sagemaker.get_paginator("list_pipeline_execution_steps").paginate(
        PipelineExecutionArn=arn["PipelineExecutionArn"], SortOrder="Ascending"
    )
    steps = [step for page in pages for step in page["PipelineExecutionSteps"]]
    return {
        "label": label,
        "wall": wall,
        "execution": (execution["LastModifiedTime"] - execution["CreationTime"]).total_seconds(),
        "steps": [
            (s["StepName"], (s["EndTime"] - s["StartTime"]).total_seconds(), "CacheHitResult" in s) for s in steps
        ],
        "package": next(s["Metadata"]["RegisterModel"]["Arn"] for s in steps if s["StepName"] == "RegisterModel"),
    }


def serve(package_arn: str) -> str:
    """An endpoint for the package, created the way the deploy stack's resources are."""
    sagemaker = boto3.client("sagemaker")
    sagemaker.create_model(ModelName="bench", PrimaryContainer={"ModelPackageName": package_arn}, ExecutionRoleArn=ROLE)
    variant = {"VariantName": "AllTraffic", "ModelName": "bench", "InstanceType": "ml.m5.large"}
    sagemaker.create_endpoint_config(
        EndpointConfigName="bench", ProductionVariants=[{**variant, "InitialInstanceCount": 1}]
    )
    sagemaker.create_endpoint(EndpointName="bench", EndpointConfigName="bench")
    return "bench"


def test_rows(package_arn: str) -> list[list[float]]:
    package = boto3.client("sagemaker").describe_model_package(ModelPackageName=package_arn)
    bucket, prefix = package["CustomerMetadataProperties"]["TestDataUrl"].removeprefix("s3://").split("/", 1)
    body = boto3.client("s3").get_object(Bucket=bucket, Key=f"{prefix}/test.csv")["Body"].read()
    rows = [[float(v) for v in line.split(",")] for line in io.StringIO(body.decode()).read().splitlines() if line]
    return [row[1:] for row in rows]  # features only: the label comes first


def measure_demo() -> tuple[float, float]:
    """The demo's whole run, and its loop without the retraining build (the figure its summary prints as Loop)."""
    with tempfile.TemporaryDirectory() as state:
        started = time.perf_counter()
        finished = subprocess.run(
            [sys.executable, str(REPO_ROOT / "scripts" / "demo"), "--state-dir", state],
            capture_output=True,
            text=True,
        )
        took = time.perf_counter() - started
    if finished.returncode != 0:
        raise SystemExit(f"make demo failed:\n{finished.stdout[-3000:]}\n{finished.stderr[-3000:]}")
    loop = re.search(r"^  Loop:\s+([0-9.]+)s without the retraining build", finished.stdout, re.MULTILINE)
    if loop is None:
        raise SystemExit(f"the demo's summary has no Loop line:\n{finished.stdout[-3000:]}")
    return took, float(loop.group(1))


def synthesize_demos(stack: LocalStack, demos: int) -> None:
    """What `demos - 1` more demos leave in the AWS state, after one real build and deploy: per demo a new
    package, its approval, the pipeline upserted and tagged again, the data uploaded again, and staging and
    prod updated to the new version (the requests those commands send, without their minutes of waiting)."""
    sagemaker, cloudformation, s3 = (stack.client(name) for name in ("sagemaker", "cloudformation", "s3"))
    first = sagemaker.describe_model_package(ModelPackageName=soak.packages(sagemaker)[0]["ModelPackageArn"])
    pipeline = sagemaker.describe_pipeline(PipelineName="abalone-build")
    tags = sagemaker.list_tags(ResourceArn=pipeline["PipelineArn"])["Tags"]
    data_key = "data/abalone/bench.csv"
    # The endpoint stacks (sagemaker-abalone-deploy-<stage>), as before batch inference: the batch triggers stacks
    # stay at the demo's version (not synthesised, so the 100-demo state holds 99 fewer of their updates).
    stacks = [s for s in cloudformation.describe_stacks()["Stacks"] if "-deploy-" in s["StackName"]]
    for _ in range(demos - 1):
        arn = sagemaker.create_model_package(
            ModelPackageGroupName=first["ModelPackageGroupName"],
            InferenceSpecification=first["InferenceSpecification"],
            CustomerMetadataProperties=first.get("CustomerMetadataProperties", {}),
        )["ModelPackageArn"]
        sagemaker.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Approved", ApprovalDescription="bench")
        sagemaker.update_pipeline(
            PipelineName="abalone-build", PipelineDefinition=pipeline["PipelineDefinition"], RoleArn=ROLE
        )
        sagemaker.add_tags(ResourceArn=pipeline["PipelineArn"], Tags=tags)
        s3.put_object(Bucket=stack.env["ARTIFACT_BUCKET"], Key=data_key, Body=arn.encode())
        for deployed in stacks:
            parameters = [
                {
                    "ParameterKey": p["ParameterKey"],
                    "ParameterValue": arn if p["ParameterKey"] == "ModelPackageArn" else p["ParameterValue"],
                }
                for p in deployed["Parameters"]
            ]
            template = cloudformation.get_template(StackName=deployed["StackId"])["TemplateBody"]
            body = template if isinstance(template, str) else json.dumps(template)
            cloudformation.update_stack(
                StackName=deployed["StackId"], TemplateBody=body, Parameters=parameters, Tags=deployed["Tags"]
            )


def measure_state_growth(demos: int = 100, times: int = 5) -> list[tuple[str, str, str]]:
    """Start time with one demo's state and with `demos`' worth, measured in turns (a shared machine's load
    drifts: taking all of one, then all of the other, would measure the drift)."""
    with tempfile.TemporaryDirectory() as scratch:
        one_state, many_state = Path(scratch) / "one", Path(scratch) / "many"
        stack, _ = soak.start(one_state)
        try:
            data = abalone_data.resolve(os.environ.get("DATA"))
            data_uri = abalone_data.upload(data, stack.client("s3"), stack.env["ARTIFACT_BUCKET"])
            soak.build_and_deploy(stack, 1, data_uri, Path(scratch) / "build")
        finally:
            stack.stop()
        shutil.copytree(one_state, many_state)
        print(f"    one real demo done; synthesizing {demos - 1} more", flush=True)
        for done in range(1, demos, 10):  # an `up` and `down` every 10 demos, as each demo has its own
            stack, _ = soak.start(many_state)
            try:
                synthesize_demos(stack, min(10, demos - done) + 1)
            finally:
                stack.stop()
        figures: dict[Path, list[float]] = {one_state: [], many_state: []}
        cpu: dict[Path, list[float]] = {one_state: [], many_state: []}
        replayed: dict[Path, int] = {}
        for _ in range(times + 1):  # the first round compacts the journals: not counted
            for state in figures:
                stack, took = soak.start(state)
                replayed[state] = stack.info["restored_requests"]
                cpu[state].append(stack.info["startup_cpu_seconds"])
                figures[state].append(took)
                stack.stop()
    one, many = (sorted(figures[state][1:])[times // 2] for state in (one_state, many_state))
    one_cpu, many_cpu = (sorted(cpu[state][1:])[times // 2] for state in (one_state, many_state))
    return [
        ("local stack start, state of 1 demo (median)", f"{one:.2f} s", f"{replayed[one_state]} requests"),
        (f"local stack start, state of {demos} demos (median)", f"{many:.2f} s", f"{replayed[many_state]} requests"),
        (f"  ratio ({demos} demos / 1)", f"{many / one:.2f}x", "< 1.2x"),
        ("  server CPU time to start, state of 1 demo (median)", f"{one_cpu:.2f} s", ""),
        (f"  server CPU time to start, state of {demos} demos (median)", f"{many_cpu:.2f} s", ""),
        (f"  CPU ratio ({demos} demos / 1; the neighbours' load left out)", f"{many_cpu / one_cpu:.2f}x", "< 1.2x"),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-demo", action="store_true", help="leave out the whole-demo timing")
    parser.add_argument("--only-start", action="store_true", help="only the start time after 1 and 100 demos")
    args = parser.parse_args(argv)
    results: list[tuple[str, str, str]] = []

    print("==> Local stack start time after 1 and after 100 demos' worth of state", flush=True)
    results += measure_state_growth()
    if args.only_start:
        _print(results)
        return 0

    print("==> Pipeline definition (a fresh process: SDK import + build)", flush=True)
    definition = measure_definition()
    results.append(("definition: SDK import", f"{definition['import']:.2f} s", ""))
    results.append(("definition: build", f"{definition['build']:.2f} s", ""))
    results.append(("definition: import + build", f"{definition['import'] + definition['build']:.2f} s", "< 3 s"))

    with tempfile.TemporaryDirectory() as state:
        print("==> Local stack", flush=True)
        started = time.perf_counter()
        with LocalStack(state_dir=Path(state)) as stack:
            results.append(("local stack start", f"{time.perf_counter() - started:.2f} s", ""))
            os.environ.update(stack.env)
            env = stack.environ()
            data = abalone_data.resolve(os.environ.get("DATA"))
            data_uri = abalone_data.upload(data, boto3.client("s3"), stack.env["ARTIFACT_BUCKET"])
            env["ARTIFACT_BUCKET"] = stack.env["ARTIFACT_BUCKET"]
            print(f"==> Build pipeline, cold then cached ({data.description[:60]})", flush=True)
            for label, target in (("cold", "< 10 s"), ("cached", "< 1 s + gate")):
                run = run_build(env, data_uri, label)
                results.append((f"build pipeline {label}: execution", f"{run['execution']:.2f} s", target))
                results.append(
                    (f"build pipeline {label}: CLI wall (SDK import, upsert, follow)", f"{run['wall']:.2f} s", "")
                )
                for step, seconds, cached in run["steps"]:
                    results.append((f"  {label} step {step}{' (cached)' if cached else ''}", f"{seconds:.2f} s", ""))
            print("==> Local SageMaker runtime", flush=True)
            figures = measure(serve(run["package"]), test_rows(run["package"]))
            print(format_figures(figures))
            results.append(("runtime p50, 1 row", f"{figures['single_row']['p50_ms']:.2f} ms", "< 5 ms"))
            results.append(("runtime p99, 1 row", f"{figures['single_row']['p99_ms']:.2f} ms", ""))

    if not args.skip_demo:
        print("==> make demo, start to end", flush=True)
        whole, loop = measure_demo()
        results.append(("make demo, the loop with batch stages, no retraining build", f"{loop:.1f} s", "< 45 s"))
        results.append(("make demo, start to end (with the retraining build)", f"{whole:.1f} s", ""))

    _print(results)
    return 0


def _print(results: list[tuple[str, str, str]]) -> None:
    print("\n" + "=" * 78 + "\nBenchmark figures (this machine, one run)")
    for name, value, target in results:
        print(f"  {name:<62} {value:>10}  {target}")


if __name__ == "__main__":
    sys.exit(main())
