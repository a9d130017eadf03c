"""The local GitLab's pipelines, from the shell: what ran, and the manual button.

    scripts/local-gitlab pipelines                      the deploy project's pipelines and their jobs
    scripts/local-gitlab play 1 production-deploy       press a manual job (as the button in GitLab's UI), follow it

It talks to the running local stack's GitLab (`scripts/local-stack up`) with python-gitlab, as it would to
GitLab. Output of a pipeline: <state>/gitlab/pipelines/<id>/output.log.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from local_aws.core.lifecycle import LocalStack, LocalStackError
from local_gitlab import pipelines
from local_gitlab.service import DEPLOY_PROJECT_ID


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/local-gitlab", description=__doc__.splitlines()[0])
    parser.add_argument("--state-dir", type=Path, default=None, help="the local stack's state folder")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("pipelines", help="list the deploy project's pipelines and their jobs")
    play = commands.add_parser("play", help="press a manual job of a pipeline and follow it")
    play.add_argument("pipeline", type=int)
    play.add_argument("job")
    args = parser.parse_args(argv)
    stack = LocalStack(state_dir=args.state_dir)
    info = stack.running()
    gitlab = ((info or {}).get("services") or {}).get("gitlab")
    if gitlab is None:
        print(
            f"error: no local GitLab is running (state {stack.state_dir}): start it with scripts/local-stack up",
            file=sys.stderr,
        )
        return 1
    try:
        if args.command == "pipelines":
            return list_pipelines(gitlab["url"])
        log = stack.state_dir / "gitlab" / "pipelines" / str(args.pipeline) / "output.log"
        jobs = pipelines.play(gitlab["url"], DEPLOY_PROJECT_ID, args.pipeline, args.job, log=log, output=sys.stdout)
    except (ValueError, pipelines.PipelineTimeout, LocalStackError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print_jobs(jobs)
    return 0 if all(job["status"] != "failed" for job in jobs) else 1


def list_pipelines(gitlab_url: str) -> int:
    project = pipelines.client(gitlab_url).projects.get(DEPLOY_PROJECT_ID, lazy=True)
    found = project.pipelines.list(get_all=True)
    if not found:
        print("no deploy pipeline yet: approve a model version (scripts/approve-model approve --version latest)")
    for pipeline in found:
        variables = {variable.key: variable.value for variable in pipeline.variables.list(get_all=True)}
        print(
            f"#{pipeline.id} {pipeline.status}: {variables.get('MODEL_APPROVAL_STATUS', '')} "
            f"{variables.get('MODEL_PACKAGE_ARN', '(latest Approved)')}"
        )
        print_jobs([job.attributes for job in pipeline.jobs.list(get_all=True)])
    return 0


def print_jobs(jobs: list[dict]) -> None:
    for job in jobs:
        print(f"    {job['name']:<20} {job['status']:<8} {job.get('duration') or 0:6.1f} s")
