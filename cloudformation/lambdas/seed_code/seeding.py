"""Seed two GitLab projects (model-build, model-deploy) for one SageMaker project, idempotently.

Used by the custom resource (handler.py) and by `scripts/provision-project seed` on a workstation:
the same `SeedRequest` in, the same GitLab state out, however often it runs.

- Projects are found by their exact path in the namespace, and created only when missing.
- Every file of the seed archive is committed, base64-encoded (binary-safe), executable bits kept.
  An empty repository gets the seed on its default branch. A repository that already has commits is
  never overwritten: files that differ go to the branch `seed-update` for a merge request.
- CI/CD variables: role ARNs masked; the production role protected and scoped to the `production`
  environment, so only the production jobs of protected branches get it.
- Project settings the roles rely on: the ID token's `sub` is project_path, ref_type and ref (what the
  trust policies match); on the deploy project only maintainers (and the trigger token, whose owner is
  the seeding user) may set pipeline variables; `production` and `staging` are protected environments
  where the GitLab tier has them (Premium). What a tier or an old GitLab refused is returned as warnings.
- The deploy project gets exactly one pipeline trigger token for this SageMaker project; every seed
  rotates it. The caller stores it in Secrets Manager for the trigger Lambda.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import logging
import re
import stat
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field

import gitlab
from gitlab.v4.objects import Project

log = logging.getLogger(__name__)

SEED_UPDATE_BRANCH = "seed-update"
DEVELOPER_ACCESS = 30
MAINTAINER_ACCESS = 40
# The only components GitLab accepts (ProjectCiCdSetting::ALLOWED_SUB_CLAIM_COMPONENTS, GitLab issue 477260);
# all three, in the default order: the roles' trust policies match exactly this sub.
SUB_CLAIM_COMPONENTS = ["project_path", "ref_type", "ref"]
# Not no_one_allowed: a trigger-token pipeline sets variables as the token's owner, and the approval trigger
# must pass MODEL_PACKAGE_ARN. The owner is the seeding user, a maintainer.
PIPELINE_VARIABLES_ROLE = "maintainer"
# Who may run a deployment job there: production maintainers only; staging developers, so branch pipelines
# still deploy staging while a fork's merge request pipeline (its author may be no member) cannot.
PROTECTED_ENVIRONMENTS = {"production": MAINTAINER_ACCESS, "staging": DEVELOPER_ACCESS}
REQUEST_TIMEOUT_SECONDS = 30
# Project paths GitLab accepts, kept strict so a typo fails here with a clear message.
PROJECT_PATH = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


class SeedError(Exception):
    """A problem the user can fix; the message names it and the fix."""


@dataclass(frozen=True)
class SeedFile:
    path: str
    content: bytes
    executable: bool = False

    @property
    def git_blob_id(self) -> str:
        """The id git (and GitLab's tree API) gives this content, to tell which files changed."""
        return hashlib.sha1(b"blob %d\0" % len(self.content) + self.content, usedforsecurity=False).hexdigest()

    @property
    def git_mode(self) -> str:
        return "100755" if self.executable else "100644"


def read_seed_archive(data: bytes, name: str) -> list[SeedFile]:
    """Every file of a seed zip (scripts/package-lambdas writes them), refusing anything unsafe."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as error:
        raise SeedError(
            f"seed archive {name} is not a zip file ({error}): rebuild it with package_lambdas.py"
        ) from None
    files = []
    for info in archive.infolist():
        if info.is_dir():
            continue
        path = info.filename
        if path.startswith("/") or ".." in path.split("/"):
            raise SeedError(f"seed archive {name} holds an unsafe path {path!r}: rebuild it with package_lambdas.py")
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            raise SeedError(f"seed archive {name} holds a symlink {path!r}: GitLab's commit API cannot store it")
        files.append(SeedFile(path, archive.read(info), executable=bool(mode & stat.S_IXUSR)))
    if not files:
        raise SeedError(f"seed archive {name} is empty: rebuild it with package_lambdas.py")
    return files


@dataclass(frozen=True)
class Variable:
    key: str
    value: str
    masked: bool = False
    protected: bool = False
    environment_scope: str = "*"  # "production": only jobs deploying to that environment see it


# Custom resource property -> SeedRequest field. The template and provision_project.py send these.
PROPERTIES = {
    "GitLabUrl": "gitlab_url",
    "NamespaceId": "namespace_id",
    "NamespacePath": "namespace_path",
    "BuildRepoName": "build_repo",
    "DeployRepoName": "deploy_repo",
    "DefaultBranch": "default_branch",
    "ProjectName": "project_name",
    "ProjectId": "project_id",
    "Region": "region",
    "ArtifactBucket": "artifact_bucket",
    "KmsKeyArn": "kms_key_arn",
    "ModelPackageGroupName": "model_package_group",
    "PipelineRoleArn": "pipeline_role_arn",
    "ModelExecutionRoleArn": "model_execution_role_arn",
    "BuildRoleArn": "build_role_arn",
    "DeployStagingRoleArn": "deploy_staging_role_arn",
    "DeployProdRoleArn": "deploy_prod_role_arn",
}
# Optional properties: a stack made before them does not send them.
OPTIONAL_PROPERTIES = {
    "AlertTopicArn": "alert_topic_arn",
}


@dataclass(frozen=True)
class SeedRequest:
    gitlab_url: str
    namespace_id: str
    namespace_path: str
    build_repo: str
    deploy_repo: str
    default_branch: str
    project_name: str
    project_id: str
    region: str
    artifact_bucket: str
    kms_key_arn: str
    model_package_group: str
    pipeline_role_arn: str
    model_execution_role_arn: str
    build_role_arn: str
    deploy_staging_role_arn: str
    deploy_prod_role_arn: str
    alert_topic_arn: str = ""  # the project's alert topic: the endpoint stacks' alarms notify it

    @classmethod
    def from_properties(cls, properties: Mapping[str, object]) -> SeedRequest:
        missing = sorted(name for name in PROPERTIES if not str(properties.get(name) or "").strip())
        if missing:
            raise SeedError(f"missing seed properties: {', '.join(missing)}: set them on the custom resource")
        request = cls(
            **{attr: str(properties[name]).strip() for name, attr in PROPERTIES.items()},
            **{attr: str(properties[name]).strip() for name, attr in OPTIONAL_PROPERTIES.items() if name in properties},
        )
        for repo in (request.build_repo, request.deploy_repo):
            if not PROJECT_PATH.match(repo):
                raise SeedError(
                    f"repository name {repo!r} is not a valid GitLab project path: use letters, digits, -_."
                )
        if request.build_repo == request.deploy_repo:
            raise SeedError("the build and deploy repository names are the same: give them different names")
        if not request.namespace_id.isdigit():
            raise SeedError(f"namespace id {request.namespace_id!r} is not a number: use the group's numeric id")
        return request

    def common_variables(self) -> list[Variable]:
        return [
            Variable("AWS_REGION", self.region),
            Variable("AWS_DEFAULT_REGION", self.region),
            Variable("SAGEMAKER_PROJECT_NAME", self.project_name),
            Variable("SAGEMAKER_PROJECT_ID", self.project_id),
            Variable("ARTIFACT_BUCKET", self.artifact_bucket),
            Variable("MODEL_PACKAGE_GROUP_NAME", self.model_package_group),
            # ARNs name the account: masked so job logs do not show them.
            Variable("KMS_KEY_ARN", self.kms_key_arn, masked=True),
        ]

    def build_variables(self) -> list[Variable]:
        return [
            *self.common_variables(),
            Variable("BUILD_ROLE_ARN", self.build_role_arn, masked=True),
            Variable("SAGEMAKER_PIPELINE_ROLE_ARN", self.pipeline_role_arn, masked=True),
        ]

    def deploy_variables(self) -> list[Variable]:
        return [
            *self.common_variables(),
            Variable("STAGING_DEPLOY_ROLE_ARN", self.deploy_staging_role_arn, masked=True),
            # Only the production jobs (environment production) of protected refs see the production role;
            # its trust policy adds the default branch and the production audience.
            Variable(
                "PROD_DEPLOY_ROLE_ARN",
                self.deploy_prod_role_arn,
                masked=True,
                protected=True,
                environment_scope="production",
            ),
            Variable("MODEL_EXECUTION_ROLE_ARN", self.model_execution_role_arn, masked=True),
            # deploy passes it to the endpoint stacks (AlertTopicArn); GitLab refuses an empty masked value.
            *([Variable("ALERT_TOPIC_ARN", self.alert_topic_arn, masked=True)] if self.alert_topic_arn else []),
        ]

    @property
    def trigger_description(self) -> str:
        return f"SageMaker project {self.project_name} ({self.project_id}): model approval and retraining trigger"

    @property
    def physical_resource_id(self) -> str:
        """Given at Create and kept by every Update: a rename must not make CloudFormation replace the
        resource, because its Delete of the old one would clean a project the new one still uses."""
        return f"gitlab-seed:{self.namespace_id}:{self.build_repo}:{self.deploy_repo}"

    def project_key(self, repo: str) -> tuple[str, str]:
        """(GitLab URL, project path) of one of the two projects, case-folded as GitLab compares paths."""
        return self.gitlab_url.rstrip("/").lower(), f"{self.namespace_path.strip('/')}/{repo}".lower()


@dataclass
class ProjectOutcome:
    project_id: int
    path: str
    web_url: str
    created: bool
    seeded_branch: str | None  # None: the repository already held the seed
    changed_files: list[str] = field(default_factory=list)


@dataclass
class SeedOutcome:
    build: ProjectOutcome
    deploy: ProjectOutcome
    deploy_ref: str
    trigger_token: str = field(repr=False)  # never printed
    build_trigger_token: str = field(default="", repr=False)  # the build project's, for retraining
    warnings: list[str] = field(default_factory=list)  # what GitLab refused, and what that leaves open

    def trigger_secret(self) -> str:
        """The JSON the trigger Lambda reads from Secrets Manager: the deploy project's trigger at the top level
        (approvals), the build project's under "build" (retraining)."""
        value: dict = {"project_id": self.deploy.project_id, "ref": self.deploy_ref, "token": self.trigger_token}
        if self.build_trigger_token:
            value["build"] = {
                "project_id": self.build.project_id,
                "ref": self.deploy_ref,
                "token": self.build_trigger_token,
            }
        return json.dumps(value)

    def response_data(self) -> dict[str, str]:
        """Custom resource attributes: ids and URLs only, never a token."""
        return {
            "BuildProjectId": str(self.build.project_id),
            "BuildProjectUrl": self.build.web_url,
            "DeployProjectId": str(self.deploy.project_id),
            "DeployProjectUrl": self.deploy.web_url,
            "BuildSeedBranch": self.build.seeded_branch or "",
            "DeploySeedBranch": self.deploy.seeded_branch or "",
        }


def connect(gitlab_url: str, token: str) -> gitlab.Gitlab:
    """A client that retries 429, 5xx and timeouts with backoff (python-gitlab's own retry)."""
    return gitlab.Gitlab(gitlab_url, private_token=token, timeout=REQUEST_TIMEOUT_SECONDS, retry_transient_errors=True)


def personal_token_from_secret(secret_string: str) -> str:
    """The seeding token: the secret holds it as plain text or as JSON {"token": ...}."""
    fix = "store a token with scripts/bootstrap-gitlab-token"
    value = secret_string.strip()
    if value.startswith("{"):
        try:
            value = json.loads(value).get("token")
        except ValueError:
            raise SeedError(f"the GitLab token secret is not valid JSON: {fix}") from None  # no excerpt: a secret
        if not isinstance(value, str):
            raise SeedError(f'the GitLab token secret has no string "token" field: {fix}')
        value = value.strip()
    if not value:
        raise SeedError(f"the GitLab token secret is empty: {fix}")
    return value


class Seeder:
    def __init__(self, client: gitlab.Gitlab, request: SeedRequest):
        self.gl = client
        self.request = request
        self.warnings: list[str] = []

    # -- Create / Update -------------------------------------------------------------------------
    def seed(self, build_files: list[SeedFile], deploy_files: list[SeedFile]) -> SeedOutcome:
        namespace = self._namespace()
        build = self._seed_project(namespace, self.request.build_repo, build_files, self.request.build_variables())
        deploy = self._seed_project(namespace, self.request.deploy_repo, deploy_files, self.request.deploy_variables())
        deploy_project = self.gl.projects.get(deploy.project_id)
        self._restrict_pipeline_variables(deploy_project)
        self._protect_environments(deploy_project)
        token = self._rotate_trigger(deploy_project)
        # The build project's own trigger: the batch pipeline's retraining decision starts a build through it
        # (RetrainingTarget gitlab), so the retraining keeps GitLab's lineage (commit, pipeline URL).
        build_token = self._rotate_trigger(self.gl.projects.get(build.project_id))
        for warning in self.warnings:
            log.warning(warning)
        return SeedOutcome(
            build=build,
            deploy=deploy,
            deploy_ref=self.request.default_branch,
            trigger_token=token,
            build_trigger_token=build_token,
            warnings=list(self.warnings),
        )

    def _namespace(self):
        try:
            namespace = self.gl.namespaces.get(int(self.request.namespace_id))
        except gitlab.GitlabGetError as error:
            raise SeedError(
                f"GitLab namespace {self.request.namespace_id} not found ({error.response_code}): check the group id"
                " and that the token's user is a maintainer of the group"
            ) from None
        if namespace.full_path.lower() != self.request.namespace_path.strip("/").lower():
            raise SeedError(
                f"namespace {self.request.namespace_id} is {namespace.full_path!r}, not"
                f" {self.request.namespace_path!r}: the OIDC roles trust the path, so fix GitLabNamespacePath"
            )
        return namespace

    def _seed_project(self, namespace, repo: str, files: list[SeedFile], variables: list[Variable]) -> ProjectOutcome:
        project, created = self._ensure_project(namespace, repo)
        branch = self.request.default_branch
        if created or project.attributes.get("empty_repo"):
            changed = files
            target = branch
            log.info("%s: committing %d seed files to %s", project.path_with_namespace, len(files), branch)
            self._commit(project, target, changed, existing={}, start_branch=None)
        else:
            existing = self._tree(project, branch)
            changed = [f for f in files if existing.get(f.path) != (f.git_blob_id, f.git_mode)]
            target = SEED_UPDATE_BRANCH if changed else None
            if changed:
                log.info(
                    "%s: %d files differ from the seed; committing them to %s (merge it when ready)",
                    project.path_with_namespace,
                    len(changed),
                    SEED_UPDATE_BRANCH,
                )
                self._delete_branch(project, SEED_UPDATE_BRANCH)
                self._commit(project, SEED_UPDATE_BRANCH, changed, existing=existing, start_branch=branch)
            else:
                log.info("%s: already holds the seed; nothing to commit", project.path_with_namespace)
        self._protect_branch(project, branch)
        self._set_sub_claim(project)
        self._set_variables(project, variables)
        return ProjectOutcome(
            project_id=project.id,
            path=project.path_with_namespace,
            web_url=project.web_url,
            created=created,
            seeded_branch=target,
            changed_files=[f.path for f in changed],
        )

    def _ensure_project(self, namespace, repo: str) -> tuple[Project, bool]:
        try:
            project = self.gl.projects.get(f"{namespace.full_path}/{repo}")
            log.info("reusing GitLab project %s (id %s)", project.path_with_namespace, project.id)
            return project, False
        except gitlab.GitlabGetError as error:
            if error.response_code != 404:
                raise
        project = self.gl.projects.create(
            {
                "name": repo,
                "path": repo,
                "namespace_id": int(self.request.namespace_id),
                "visibility": "private",
                "default_branch": self.request.default_branch,
                "initialize_with_readme": False,
                "description": f"SageMaker project {self.request.project_name}: seeded by the project template",
            }
        )
        log.info("created GitLab project %s (id %s)", project.path_with_namespace, project.id)
        return project, True

    def _tree(self, project: Project, ref: str) -> dict[str, tuple[str, str]]:
        """path -> (blob id, mode) of every file on `ref`."""
        try:
            entries = project.repository_tree(ref=ref, recursive=True, get_all=True)
        except gitlab.GitlabGetError as error:
            if error.response_code == 404:  # no such branch yet
                return {}
            raise
        return {e["path"]: (e["id"], e["mode"]) for e in entries if e["type"] == "blob"}

    def _commit(self, project, branch, files, existing, start_branch) -> None:
        actions = []
        for f in files:
            actions.append(
                {
                    "action": "update" if f.path in existing else "create",
                    "file_path": f.path,
                    "encoding": "base64",
                    "content": base64.b64encode(f.content).decode("ascii"),
                }
            )
            old_mode = existing.get(f.path, (None, "100644"))[1]
            if f.git_mode != old_mode:
                actions.append({"action": "chmod", "file_path": f.path, "execute_filemode": f.executable})
        data = {"branch": branch, "commit_message": self._commit_message(), "actions": actions}
        if start_branch:
            data["start_branch"] = start_branch
        commit = project.commits.create(data)
        log.info("%s: commit %s on %s (%d files)", project.path_with_namespace, commit.id[:12], branch, len(files))

    def _commit_message(self) -> str:
        return f"Seed code for SageMaker project {self.request.project_name} ({self.request.project_id})"

    def _delete_branch(self, project: Project, branch: str) -> None:
        try:
            project.branches.delete(branch)
        except gitlab.GitlabDeleteError as error:
            if error.response_code != 404:
                raise

    def _protect_branch(self, project: Project, branch: str) -> None:
        """The production role trusts the default branch only; only maintainers may push or merge to it."""
        try:
            project.protectedbranches.get(branch)
        except gitlab.GitlabGetError as error:
            if error.response_code != 404:
                raise
            project.protectedbranches.create(
                {"name": branch, "push_access_level": MAINTAINER_ACCESS, "merge_access_level": MAINTAINER_ACCESS}
            )

    def _update_settings(self, project: Project, settings: dict, consequence: str) -> None:
        """PUT the project settings; GitLab ignores attributes it does not know, so read back what it kept."""
        kept = self.gl.projects.update(project.id, settings) or {}
        refused = sorted(name for name, value in settings.items() if kept.get(name) != value)
        if refused:
            self.warnings.append(
                f"{project.path_with_namespace}: GitLab did not apply {', '.join(refused)} (it needs GitLab"
                f" 18.2.2 or later): {consequence}"
            )

    def _set_sub_claim(self, project: Project) -> None:
        self._update_settings(
            project,
            {"ci_id_token_sub_claim_components": SUB_CLAIM_COMPONENTS},
            "ID tokens keep this GitLab's default sub; if it is not project_path:...:ref_type:...:ref:..., no"
            " job can assume its role",
        )

    def _restrict_pipeline_variables(self, project: Project) -> None:
        self._update_settings(
            project,
            {
                "restrict_user_defined_variables": True,
                "ci_pipeline_variables_minimum_override_role": PIPELINE_VARIABLES_ROLE,
            },
            "developers can still set pipeline variables (web and API runs) that outrank the project's",
        )

    def _protect_environments(self, project: Project) -> None:
        """Premium: only the given role may run a job deploying there. Free/CE answers 403/404: warn."""
        for name, access_level in PROTECTED_ENVIRONMENTS.items():
            try:
                project.protected_environments.get(name)
                continue
            except gitlab.GitlabGetError as error:
                if error.response_code not in (403, 404):  # 404: not protected yet, or no such API (CE)
                    raise
            try:
                project.protected_environments.create(
                    {"name": name, "deploy_access_levels": [{"access_level": access_level}]}
                )
                log.info("%s: environment %s protected", project.path_with_namespace, name)
            except gitlab.GitlabCreateError as error:
                if error.response_code not in (403, 404):
                    raise
                self.warnings.append(
                    f"{project.path_with_namespace}: could not protect environment {name!r} ({error.response_code}:"
                    " protected environments need GitLab Premium): anyone who may run a pipeline on the default"
                    " branch may run its deployment jobs; the production role still needs the default branch and"
                    " the production jobs' audience"
                )

    def _set_variables(self, project: Project, variables: list[Variable]) -> None:
        current = {(v.key, v.environment_scope): v for v in project.variables.list(get_all=True)}
        for var in variables:
            scope = {"environment_scope": var.environment_scope}
            wanted = {"value": var.value, "masked": var.masked, "protected": var.protected}
            old = current.pop((var.key, var.environment_scope), None)
            if old is None:
                project.variables.create({"key": var.key, **wanted, **scope})
            elif any(getattr(old, name) != value for name, value in wanted.items()):
                project.variables.update(var.key, wanted, filter=scope)
            # The same key in another scope (an earlier seed's "*" production role) would reach other jobs.
            for key, other_scope in [k for k in current if k[0] == var.key]:
                project.variables.delete(key, filter={"environment_scope": other_scope})
                del current[(key, other_scope)]
        log.info("%s: %d CI/CD variables set", project.path_with_namespace, len(variables))

    def _rotate_trigger(self, project: Project) -> str:
        """Exactly one trigger token for this SageMaker project: old ones are deleted, a new one made."""
        self._revoke_triggers(project)
        trigger = project.triggers.create({"description": self.request.trigger_description})
        log.info("%s: pipeline trigger %s created", project.path_with_namespace, trigger.id)
        return trigger.token

    def _revoke_triggers(self, project: Project) -> None:
        for trigger in project.triggers.list(get_all=True):
            if trigger.description == self.request.trigger_description:
                trigger.delete()

    # -- Delete ----------------------------------------------------------------------------------
    def clean_up(self, keep: SeedRequest | None = None) -> list[str]:
        """Revoke the trigger token and remove the variables this seed set. The repositories stay:
        they hold the users' code. `keep`: the request replacing this one (an Update that renamed a
        repository); the projects it still seeds are left alone. Returns what could not be cleaned
        (already gone is fine)."""
        leftovers = []
        kept = {keep.project_key(keep.build_repo), keep.project_key(keep.deploy_repo)} if keep else set()
        namespace = self._namespace()
        for repo, variables in (
            (self.request.build_repo, self.request.build_variables()),
            (self.request.deploy_repo, self.request.deploy_variables()),
        ):
            if self.request.project_key(repo) in kept:
                continue
            try:
                project = self.gl.projects.get(f"{namespace.full_path}/{repo}")
            except gitlab.GitlabGetError as error:
                if error.response_code == 404:
                    log.info("project %s/%s is gone: nothing to clean", namespace.full_path, repo)
                    continue
                raise
            for var in variables:
                try:
                    project.variables.delete(var.key, filter={"environment_scope": var.environment_scope})
                except gitlab.GitlabDeleteError as error:
                    if error.response_code != 404:
                        leftovers.append(f"{repo} variable {var.key}: {error.response_code}")
            self._revoke_triggers(project)
            log.info("%s: trigger token revoked and variables removed", project.path_with_namespace)
        return leftovers
