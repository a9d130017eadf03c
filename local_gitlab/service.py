"""The local GitLab, inside the local stack's server: the deploy project's trigger, its pipelines, its jobs.

Loaded by the stack server as a plugin (the default of `local_aws.LocalStack`). Its `start` opens the
receiver (`local_gitlab.receiver`) on a free 127.0.0.1 port and stores the deploy project's trigger token in
Secrets Manager, as the project template's seed step does on AWS; the stack's bootstrap then points the
template's trigger Lambda at it. A trigger runs model-deploy's real `.gitlab-ci.yml` with gitlab-ci-local
(`local_gitlab.ci_runner`), with the project's CI/CD variables (`local_gitlab.project`) and the trigger's
variables, up to its manual jobs; playing a manual job through the API runs that job with the pipeline's
artifacts. Each pipeline's output: `<state>/gitlab/pipelines/<id>/output.log`.

With production in its own account (the server's --prod-account), the deploy project is the two-account one:
PROD_DEPLOY_ROLE_ARN names the prod account's role, the repo's prod-config.json names that account and the
outputs of its prod-account.yml stack (`project.write_deploy_repo`), and a job that asks for the production
audience (production-deploy pressed, production-rollback on a rejection) runs on its own with the local ID token
stand-in (`local_gitlab.id_tokens`) and no AWS keys, so its CI login exchanges the token with moto's STS
(AssumeRoleWithWebIdentity) and it acts in the prod account. The other jobs keep the ambient (tooling account)
credentials, as without a prod account.

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

from local_aws.core import api, lifecycle
from local_gitlab import ci_runner, id_tokens, project
from local_gitlab.receiver import GitLabReceiver, TriggeredPipeline

log = logging.getLogger(__name__)

DEPLOY_FOLDER, BUILD_FOLDER = "model-deploy", "model-build"
BUILD_PROJECT_ID, DEPLOY_PROJECT_ID = 1, 2  # model-build is 1 on a fresh GitLab group, the deploy repo 2
TRIGGER_SECRET_NAME = f"local/{project.PROJECT_NAME}/gitlab-trigger"

_receiver: GitLabReceiver | None = None


def start(context: api.Context) -> dict:
    global _receiver
    pipelines = Path(context.state_dir) / "gitlab" / "pipelines"

    prod_account = os.environ.get(lifecycle.PROD_ACCOUNT_VARIABLE, "")

    def runner(repo: str, project_variables, two_accounts: bool = False):
        def run(pipeline: TriggeredPipeline, only: tuple[str, ...] = ()) -> list[dict]:
            folder = pipelines / str(pipeline.id)
            folder.mkdir(parents=True, exist_ok=True)
            # A trigger-token pipeline's source is "trigger" on GitLab, whatever its variables.
            variables = project_variables() | {"CI_PIPELINE_SOURCE": "trigger"} | pipeline.variables
            variables["CI_PIPELINE_URL"] = _receiver.web_url(pipeline)  # the local GitLab's own address for it
            env = {**os.environ, **context.environment}
            state = folder / "gitlab-ci-local"
            if not two_accounts:
                results = _run_jobs(repo, variables, env, state, folder, only)
            else:
                two_account_repo = _two_account_repo(context, prod_account)
                # gitlab-ci-local gives every job of a run the same variables: a job with an ID token runs on its own.
                parts = [only] if only else _token_parts(two_account_repo, variables, env, state, pipeline)
                results = []
                for part in parts:
                    token = _id_token(two_account_repo, part, pipeline) if part else None
                    part_variables, part_env = dict(variables), dict(env)
                    if token is not None:
                        part_variables[id_tokens.TOKEN_VARIABLE] = token
                        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
                            part_env.pop(name, None)  # a GitLab runner has no AWS keys: the token is the only way in
                    results += _run_jobs(two_account_repo, part_variables, part_env, state, folder, part)
            return [{"name": r.job, "stage": "", "status": r.status, "duration": r.seconds} for r in results]

        return run

    run = runner(
        DEPLOY_FOLDER, lambda: project.deploy_variables(context.region, prod_account), two_accounts=bool(prod_account)
    )

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
        on_pipeline=runner(BUILD_FOLDER, lambda: project.build_variables(context.region)),
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


def _run_jobs(repo, variables: dict, env: dict, state: Path, folder: Path, only: tuple[str, ...]) -> list:
    with (folder / "output.log").open("a", encoding="utf-8") as output:
        try:
            return ci_runner.run_pipeline(repo, variables, env=env, state=state, output=output, only=only)
        except ci_runner.PipelineFailed as failure:
            return failure.results


def _token_parts(repo, variables: dict, env: dict, state: Path, pipeline: TriggeredPipeline) -> list[tuple[str, ...]]:
    """A triggered pipeline as runs of gitlab-ci-local: `()` (all of it) when no job that runs at once asks for an
    ID token (an approval: the production jobs are manual buttons); else the other jobs, then each such job alone
    (a rejection: production-rollback runs at once, beside staging-rollback)."""
    folder = ci_runner.resolve_folder(repo)
    plan = ci_runner.list_jobs(folder, ci_runner.pipeline_variables(variables, folder), env=env, state=state) or []
    automatic = [job.name for job in plan if job.when != "manual"]
    with_token = [name for name in automatic if _id_token(repo, (name,), pipeline) is not None]
    if not with_token:
        return [()]
    others = tuple(name for name in automatic if name not in with_token)
    return [*([others] if others else []), *((name,) for name in with_token)]


def _two_account_repo(context: api.Context, prod_account: str):
    """The deploy repo with prod-config.json for the prod account, from its prod-account.yml stack's outputs."""
    cloudformation = context.in_account(prod_account).client("cloudformation")
    stack = cloudformation.describe_stacks(StackName=lifecycle.PROD_ACCOUNT_STACK)["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    return project.write_deploy_repo(context.state_dir, lifecycle.REPO_ROOT / DEPLOY_FOLDER, prod_account, outputs)


def _id_token(repo, jobs: tuple[str, ...], pipeline: TriggeredPipeline) -> str | None:
    """The ID token stand-in for `jobs` when they are production jobs (their token's audience), else None."""
    ci_file = lifecycle.REPO_ROOT / repo / ci_runner.CI_FILE
    audiences = {id_tokens.audience(ci_file, job) for job in jobs}
    if audiences != {id_tokens.PRODUCTION_AUDIENCE}:
        return None  # only the production jobs act in the prod account
    job_id = next((job["id"] for job in pipeline.jobs if job["name"] in jobs), 0)
    claims = id_tokens.job_claims(
        lifecycle.LOCAL_GITLAB_ISSUER,
        audiences.pop(),
        f"{project.NAMESPACE_PATH}/{project.DEPLOY_REPO}",
        pipeline.ref,
        job_id,
        pipeline.id,
    )
    return id_tokens.issue(claims)


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
