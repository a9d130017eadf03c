"""The local GitLab, inside the local stack's server: the deploy project's trigger, its pipelines, its jobs.

Loaded by the stack server as a plugin (the default of `local_aws.LocalStack`). Its `start` opens the
receiver (`local_gitlab.receiver`) on a free 127.0.0.1 port and stores the deploy project's trigger token in
Secrets Manager, as the project template's seed step does on AWS; the stack's bootstrap then points the
template's trigger Lambda at it. A trigger runs model-deploy's real `.gitlab-ci.yml` with gitlab-ci-local
(`local_gitlab.ci_runner`), with the project's CI/CD variables (`local_gitlab.project`) and the trigger's
variables, up to its manual jobs; playing a manual job through the API runs that job with the pipeline's
artifacts. Each pipeline's output: `<state>/gitlab/pipelines/<id>/output.log`.

The build project (id 1) has its own trigger token too, as the seed gives it on GitLab: the retraining decision
(the trigger Lambda, RetrainingTarget gitlab) triggers it, and the local GitLab runs model-build's real
`.gitlab-ci.yml` with the build project's CI/CD variables and the trigger's (its `train` job: `make train`, a
build on the data at the build's configured input). Both tokens are in the trigger secret (the build one under
"build"), as the seed writes it.
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

DEPLOY_FOLDER, BUILD_FOLDER = "model-deploy", "model-build"
BUILD_PROJECT_ID, DEPLOY_PROJECT_ID = 1, 2  # model-build is 1 on a fresh GitLab group, the deploy repo 2
TRIGGER_SECRET_NAME = f"local/{project.PROJECT_NAME}/gitlab-trigger"

_receiver: GitLabReceiver | None = None


def start(context: api.Context) -> dict:
    global _receiver
    pipelines = Path(context.state_dir) / "gitlab" / "pipelines"

    def runner(repo: str, project_variables):
        def run(pipeline: TriggeredPipeline, only: tuple[str, ...] = ()) -> list[dict]:
            folder = pipelines / str(pipeline.id)
            folder.mkdir(parents=True, exist_ok=True)
            # A trigger-token pipeline's source is "trigger" on GitLab, whatever its variables.
            variables = project_variables(context.region) | {"CI_PIPELINE_SOURCE": "trigger"} | pipeline.variables
            variables["CI_PIPELINE_URL"] = _receiver.web_url(pipeline)  # the local GitLab's own address for it
            env = {**os.environ, **context.environment}
            with (folder / "output.log").open("a", encoding="utf-8") as output:
                try:
                    results = ci_runner.run_pipeline(
                        repo, variables, env=env, state=folder / "gitlab-ci-local", output=output, only=only
                    )
                except ci_runner.PipelineFailed as failure:
                    results = failure.results
            return [{"name": r.job, "stage": "", "status": r.status, "duration": r.seconds} for r in results]

        return run

    run = runner(DEPLOY_FOLDER, project.deploy_variables)

    _receiver = GitLabReceiver(
        on_pipeline=run,
        on_play=lambda pipeline, job: run(pipeline, (job,)),
        project_id=DEPLOY_PROJECT_ID,
        ref=project.DEFAULT_BRANCH,
        project_path=f"{project.NAMESPACE_PATH}/{project.DEPLOY_REPO}",
    ).start()
    _receiver.add_project(
        BUILD_PROJECT_ID,
        f"{project.NAMESPACE_PATH}/{project.BUILD_REPO}",
        on_pipeline=runner(BUILD_FOLDER, project.build_variables),
        ref=project.DEFAULT_BRANCH,
    )
    secret_arn = _store_trigger_secret(context, _receiver)
    log.info(
        "local GitLab at %s: build project %s, deploy project %s", _receiver.url, BUILD_PROJECT_ID, DEPLOY_PROJECT_ID
    )
    return {
        "gitlab": {
            "url": _receiver.url,
            "deploy_project_id": DEPLOY_PROJECT_ID,
            "build_project_id": BUILD_PROJECT_ID,
            "trigger_secret_arn": secret_arn,
        }
    }


def stop() -> None:
    if _receiver is not None:
        _receiver.stop()


def _store_trigger_secret(context: api.Context, receiver: GitLabReceiver) -> str:
    """What the seed step stores on AWS: the deploy project's id, default branch and trigger token."""
    client = context.client("secretsmanager")
    build = receiver.project(BUILD_PROJECT_ID)
    value = json.dumps(
        {
            "project_id": receiver.project_id,
            "ref": receiver.ref,
            "token": receiver.trigger_token,
            "build": {"project_id": build.project_id, "ref": build.ref, "token": build.trigger_token},
        }
    )
    try:
        return client.put_secret_value(SecretId=TRIGGER_SECRET_NAME, SecretString=value)["ARN"]
    except client.exceptions.ResourceNotFoundException:
        return client.create_secret(Name=TRIGGER_SECRET_NAME, SecretString=value)["ARN"]
