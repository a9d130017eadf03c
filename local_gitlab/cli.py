"""Run the model-build or model-deploy GitLab pipeline locally: its real .gitlab-ci.yml, on the local stack.

    scripts/ci-local build                                  a push to the default branch: train and register
    scripts/ci-local deploy --variable MODEL_PACKAGE_ARN=arn:aws:sagemaker:...:model-package/abalone/1
                                                            the approval trigger: build, staging, tests
    scripts/ci-local deploy --manual production-deploy      a web run (latest Approved version), prod button pressed
    scripts/ci-local deploy --list                          which jobs would run, without running them
    scripts/ci-local build --monorepo                       the child file as the monorepo's parent runs it

gitlab-ci-local (`make gitlab-ci-local`) runs the jobs on this machine's shell with the repo's .venv first
on PATH. The local stack: when one is running (`scripts/local-stack up`), it is used and left running, so
a build, an approval (`scripts/approve-model`) and a deploy can follow each other; otherwise one is started
for this run and stopped after it. Job logs and artifacts: .local/gitlab-ci-local/<folder>/.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from local_aws import LocalStack, LocalStackError
from local_demo import abalone_data
from local_gitlab import ci_runner as ci_local
from local_gitlab import project

PIPELINES = {"build": "model-build", "deploy": "model-deploy"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="scripts/ci-local", description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("pipeline", choices=sorted(PIPELINES), help="build: model-build; deploy: model-deploy")
    parser.add_argument(
        "--variable", action="append", default=[], metavar="KEY=VALUE", help="a CI/CD variable for the run (repeat)"
    )
    parser.add_argument("--manual", action="append", default=[], metavar="JOB", help="press a manual job (repeat)")
    parser.add_argument("--list", action="store_true", help="print the jobs this run would start, and stop")
    parser.add_argument(
        "--monorepo",
        action="store_true",
        help="run the child file from the repo root, with the variables the root .gitlab-ci.yml's trigger job\n"
        "passes (MODEL_BUILD_DIR / MODEL_DEPLOY_DIR) and CI_PIPELINE_SOURCE=parent_pipeline;\n"
        "default: the child folder as the seeded standalone repo",
    )
    parser.add_argument(
        "--data",
        default=os.environ.get("DATA"),
        help="build only: CSV path, s3:// URI or 'uci' (default: the shared CSV)",
    )
    args = parser.parse_args(argv)
    try:
        variables = parse_variables(args.variable)
        if args.pipeline == "deploy" and not variables.get("MODEL_PACKAGE_ARN"):
            # No version given: the web UI's "Run pipeline", which redeploys the latest Approved version.
            variables.setdefault("CI_PIPELINE_SOURCE", "web")
        folder, ci_file = ci_local.resolve_folder(PIPELINES[args.pipeline]), ci_local.CI_FILE
        if args.monorepo:
            ci_file = f"{PIPELINES[args.pipeline]}/{ci_local.CI_FILE}"
            folder = ci_local.REPO_ROOT
            variables = {**variables, **ci_local.parent_wiring(ci_file)}
        if args.list:
            return list_only(folder, ci_file, variables)
        return run_on_local_stack(args, folder, ci_file, variables)
    except (ci_local.CiLocalError, LocalStackError, abalone_data.DataError) as error:
        print(f"\nerror: {error}", file=sys.stderr)
        return 1


def parse_variables(pairs: list[str]) -> dict[str, str]:
    variables = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise ci_local.CiLocalError(
                f"--variable {pair!r} is not KEY=VALUE, e.g. --variable MODEL_APPROVAL_STATUS=Approved"
            )
        variables[name] = value
    return variables


def list_only(folder: Path, ci_file: str, variables: dict[str, str]) -> int:
    ci_variables = ci_local.pipeline_variables(variables, folder)
    plan = ci_local.list_jobs(folder, ci_variables, ci_file=ci_file)
    source = ci_variables["CI_PIPELINE_SOURCE"]
    shown = (folder / ci_file).relative_to(ci_local.REPO_ROOT)
    if plan is None:
        print(f"{shown}: no pipeline for CI_PIPELINE_SOURCE={source} (workflow:rules)")
        return 0
    print(f"{shown}, CI_PIPELINE_SOURCE={source}: {len(plan)} job(s)")
    for job in plan:
        kind = "manual, blocking" if job.when == "manual" and not job.allow_failure else job.when.replace("_", " ")
        needs = "stages before" if job.needs is None else ", ".join(job.needs) or "nothing"
        print(f"  {job.stage:<18} {job.name:<20} {kind:<17} needs: {needs}")
    return 0


def run_on_local_stack(args: argparse.Namespace, folder: Path, ci_file: str, variables: dict[str, str]) -> int:
    stack = LocalStack(progress=print)
    started_here = stack.running() is None
    print(f"==> local stack: {'starting one for this run' if started_here else 'using the running one'}")
    started = time.monotonic()
    stack.start()
    try:
        env = stack.environ()  # the runner's ambient AWS access: the stack's endpoints and dummy keys
        # The project's CI/CD variables, as the project stack sets them in GitLab; --variable wins.
        seeded = project.build_variables if args.pipeline == "build" else project.deploy_variables
        variables = {**seeded(env["AWS_REGION"]), **variables}
        if args.pipeline == "build" and "INPUT_DATA_URL" not in variables:
            variables["INPUT_DATA_URL"] = upload_data(args.data, stack)
        print(f"==> {PIPELINES[args.pipeline]} pipeline through gitlab-ci-local")
        results = ci_local.run_pipeline(folder, variables, manual=args.manual, env=env, ci_file=ci_file)
    except ci_local.PipelineFailed as failure:
        print_summary(PIPELINES[args.pipeline], failure.results, time.monotonic() - started)
        raise
    finally:
        if started_here:
            stack.stop()
            print("==> local stack stopped (start one with `scripts/local-stack up` to keep its state between runs)")
    print_summary(PIPELINES[args.pipeline], results, time.monotonic() - started)
    return 0


def upload_data(choice: str | None, stack: LocalStack) -> str:
    """The input data in the stack's artifact bucket, content-addressed like `make demo` does."""
    data = abalone_data.resolve(choice)
    print(f"    data: {data.description}")
    return abalone_data.upload(data, stack.client("s3"), stack.env["ARTIFACT_BUCKET"])


def print_summary(name: str, results: list[ci_local.JobResult], seconds: float) -> None:
    print(f"\n{name} pipeline, {seconds:.1f} s in all (with the local stack):")
    for line in ci_local.summary_lines(results):
        print(f"  {line}")


if __name__ == "__main__":
    sys.exit(main())
