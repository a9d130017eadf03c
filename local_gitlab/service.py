"""The local GitLab, inside the local stack's server: the deploy project's trigger, its pipelines, its jobs.

Loaded by the stack server as a plugin (the default of `local_aws.LocalStack`). Its `start` opens the
receiver (`local_gitlab.receiver`) on a free 127.0.0.1 port and stores the deploy project's trigger token in
Secrets Manager, as the project template's seed step does on AWS; the stack's bootstrap then points the
template's trigger Lambda at it. A trigger runs model-deploy's real `.gitlab-ci.yml` with gitlab-ci-local
(`local_gitlab.ci_runner`), with the project's CI/CD variables (`local_gitlab.project`) and the trigger's
variables, up to its manual jobs; playing a manual job through the API runs that job with the pipeline's
artifacts. Each pipeline's output: `<state>/gitlab/pipelines/<id>/output.log`.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from local_aws.core import api
from local_gitlab import ci_runner, project
from local_gitlab.receiver import GitLabReceiver, TriggeredPipeline

log = logging.getLogger(__name__)

DEPLOY_FOLDER = "model-deploy"
DEPLOY_PROJECT_ID = 2  # model-build is 1 on a fresh GitLab group, the deploy repo 2
TRIGGER_SECRET_NAME = f"local/{project.PROJECT_NAME}/gitlab-trigger"

_receiver: GitLabReceiver | None = None


def start(context: api.Context) -> dict:
    global _receiver
    pipelines = Path(context.state_dir) / "gitlab" / "pipelines"

    def run(pipeline: TriggeredPipeline, only: tuple[str, ...] = ()) -> list[dict]:
        folder = pipelines / str(pipeline.id)
        folder.mkdir(parents=True, exist_ok=True)
        variables = project.deploy_variables(context.region) | pipeline.variables
        variables["CI_PIPELINE_URL"] = _receiver.web_url(pipeline)  # the local GitLab's own address for it
        env = {**os.environ, **context.environment}
        with (folder / "output.log").open("a", encoding="utf-8") as output:
            try:
                results = ci_runner.run_pipeline(
                    DEPLOY_FOLDER, variables, env=env, state=folder / "gitlab-ci-local", output=output, only=only
                )
            except ci_runner.PipelineFailed as failure:
                results = failure.results
        return [{"name": r.job, "stage": "", "status": r.status, "duration": r.seconds} for r in results]

    _receiver = GitLabReceiver(
        on_pipeline=run,
        on_play=lambda pipeline, job: run(pipeline, (job,)),
        project_id=DEPLOY_PROJECT_ID,
        ref=project.DEFAULT_BRANCH,
        project_path=f"{project.NAMESPACE_PATH}/{project.DEPLOY_REPO}",
    ).start()
    secret_arn = _store_trigger_secret(context, _receiver)
    log.info("local GitLab at %s: deploy project %s", _receiver.url, DEPLOY_PROJECT_ID)
    return {"gitlab": {"url": _receiver.url, "deploy_project_id": DEPLOY_PROJECT_ID, "trigger_secret_arn": secret_arn}}


def stop() -> None:
    if _receiver is not None:
        _receiver.stop()


def _store_trigger_secret(context: api.Context, receiver: GitLabReceiver) -> str:
    """What the seed step stores on AWS: the deploy project's id, default branch and trigger token."""
    client = context.client("secretsmanager")
    value = json.dumps({"project_id": receiver.project_id, "ref": receiver.ref, "token": receiver.trigger_token})
    try:
        return client.put_secret_value(SecretId=TRIGGER_SECRET_NAME, SecretString=value)["ARN"]
    except client.exceptions.ResourceNotFoundException:
        return client.create_secret(Name=TRIGGER_SECRET_NAME, SecretString=value)["ARN"]
