"""Follow a pipeline of the local GitLab with python-gitlab, the client a user would use against GitLab.

    gitlab_url = stack.info["services"]["gitlab"]["url"]
    pipeline = wait_for_trigger(gitlab_url, DEPLOY_PROJECT_ID, {"MODEL_PACKAGE_ARN": arn})
    jobs = wait_until_settled(gitlab_url, DEPLOY_PROJECT_ID, pipeline.id, log=..., output=sys.stdout)
    jobs = play(gitlab_url, DEPLOY_PROJECT_ID, pipeline.id, "production-deploy", log=..., output=sys.stdout)

A pipeline is settled when it is success, failed, or waiting at a manual job (`manual`). While waiting, the
pipeline's output log (`<state>/gitlab/pipelines/<id>/output.log`) is copied to `output` as it grows.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import TextIO

import gitlab

SETTLED = ("success", "failed", "manual", "canceled")


class PipelineTimeout(TimeoutError):
    pass


def client(gitlab_url: str) -> gitlab.Gitlab:
    return gitlab.Gitlab(gitlab_url, timeout=10, retry_transient_errors=False)


def wait_for_trigger(gitlab_url: str, project_id: int, variables: Mapping[str, str], timeout: float = 60.0):
    """The newest pipeline whose variables include `variables`, once the trigger has created it."""
    project = client(gitlab_url).projects.get(project_id, lazy=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for pipeline in project.pipelines.list(get_all=True):
            given = {variable.key: variable.value for variable in pipeline.variables.list(get_all=True)}
            if all(given.get(key) == value for key, value in variables.items()):
                return pipeline
        time.sleep(0.2)
    raise PipelineTimeout(
        f"no pipeline with {dict(variables)} was triggered in project {project_id} within {timeout:.0f} s"
    )


def wait_until_settled(
    gitlab_url: str,
    project_id: int,
    pipeline_id: int,
    *,
    log: Path | None = None,
    output: TextIO | None = None,
    timeout: float = 600.0,
) -> list[dict]:
    """The pipeline's jobs (name, status, duration) once it is settled."""
    project = client(gitlab_url).projects.get(project_id, lazy=True)
    deadline, shown = time.monotonic() + timeout, 0
    while True:
        pipeline = project.pipelines.get(pipeline_id)
        shown = _copy_new_output(log, output, shown)
        if pipeline.status in SETTLED and not _pending(pipeline):
            _copy_new_output(log, output, shown)
            return [job.attributes for job in pipeline.jobs.list(get_all=True)]
        if time.monotonic() > deadline:
            raise PipelineTimeout(f"pipeline {pipeline_id} still {pipeline.status} after {timeout:.0f} s")
        time.sleep(0.2)


def play(gitlab_url: str, project_id: int, pipeline_id: int, job_name: str, **follow) -> list[dict]:
    """Press a manual job, as the button in GitLab's UI does, and wait for the pipeline to settle again."""
    project = client(gitlab_url).projects.get(project_id, lazy=True)
    jobs = project.pipelines.get(pipeline_id).jobs.list(get_all=True)
    job = next((job for job in jobs if job.name == job_name), None)
    if job is None:
        raise ValueError(f"pipeline {pipeline_id} has no job {job_name!r}: its jobs are {[j.name for j in jobs]}")
    project.jobs.get(job.id, lazy=True).play()
    return wait_until_settled(gitlab_url, project_id, pipeline_id, **follow)


def _pending(pipeline) -> bool:
    return any(job.status in ("pending", "running") for job in pipeline.jobs.list(get_all=True))


def _copy_new_output(log: Path | None, output: TextIO | None, shown: int) -> int:
    if log is None or output is None or not log.exists():
        return shown
    with log.open("rb") as stream:
        stream.seek(shown)
        data = stream.read()
    if data:
        output.write(data.decode("utf-8", errors="replace"))
        output.flush()
    return shown + len(data)
