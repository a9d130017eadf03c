"""An in-memory GitLab API behind the `responses` library, so python-gitlab's real client runs in tests.

It keeps real state (namespaces, projects, files per branch, CI/CD variables per environment scope,
project CI settings, triggers, protected branches and environments, triggered pipelines), enforces
authentication (PRIVATE-TOKEN for the API, the trigger token
for trigger/pipeline) and can inject failures (`fail_next`). Only the endpoints our code calls exist;
any other call fails the test with 501 so a new dependency on GitLab is noticed.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import re
from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote, urlparse

import requests
import responses

URL = "https://gitlab.example.test"


@dataclass
class FakeProject:
    id: int
    path: str
    namespace: dict
    default_branch: str
    branches: dict[str, dict[str, tuple[bytes, bool]]] = field(default_factory=dict)
    # (key, environment_scope) -> variable: GitLab keeps one variable per key and scope.
    scoped_variables: dict[tuple[str, str], dict] = field(default_factory=dict)
    triggers: dict[int, dict] = field(default_factory=dict)
    protected: set[str] = field(default_factory=set)
    protected_environments: dict[str, dict] = field(default_factory=dict)
    commits: list[dict] = field(default_factory=list)
    # The CI settings GitLab 18.x has, at their defaults for a new project.
    settings: dict = field(
        default_factory=lambda: {
            "ci_id_token_sub_claim_components": ["project_path", "ref_type", "ref"],
            "restrict_user_defined_variables": False,
            "ci_pipeline_variables_minimum_override_role": "developer",
        }
    )

    @property
    def variables(self) -> dict[str, dict]:
        """key -> variable, for tests (a key set in two scopes fails: seeded keys have one scope each)."""
        keys = [key for key, _ in self.scoped_variables]
        assert len(keys) == len(set(keys)), f"a key in several scopes: {sorted(self.scoped_variables)}"
        return {key: variable for (key, _), variable in self.scoped_variables.items()}

    @property
    def full_path(self) -> str:
        return f"{self.namespace['full_path']}/{self.path}"

    def as_json(self) -> dict:
        return {
            "id": self.id,
            "name": self.path,
            "path": self.path,
            "path_with_namespace": self.full_path,
            "default_branch": self.default_branch,
            "empty_repo": not self.branches,
            "web_url": f"{URL}/{self.full_path}",
            "namespace": self.namespace,
            **self.settings,
        }


class FakeGitLab:
    def __init__(self, mock: responses.RequestsMock, token: str, url: str = URL):
        self.url = url
        self.token = token
        self.namespaces: dict[int, dict] = {}
        self.projects: dict[int, FakeProject] = {}
        self.pipelines: list[dict] = []
        self.calls: list[tuple[str, str]] = []
        self.user = {"id": 1, "username": "seed-bot"}
        # "premium" has protected environments; "free" (EE without a license) answers 403, "ce" has no such API (404).
        self.tier = "premium"
        self.known_settings = {"ci_id_token_sub_claim_components", "restrict_user_defined_variables"}
        self.known_settings.add("ci_pipeline_variables_minimum_override_role")
        self._ids = itertools.count(100)
        self._failures: list[tuple[str, re.Pattern, object]] = []
        pattern = re.compile(re.escape(url) + r"/api/v4/.*")
        for method in ("GET", "POST", "PUT", "DELETE"):
            mock.add_callback(method, pattern, callback=self._dispatch)

    # -- test helpers ----------------------------------------------------------------------------
    def add_namespace(self, full_path: str) -> int:
        namespace_id = next(self._ids)
        self.namespaces[namespace_id] = {"id": namespace_id, "full_path": full_path, "kind": "group"}
        return namespace_id

    def add_project(self, namespace_id: int, path: str, files: dict[str, bytes] | None = None) -> FakeProject:
        project = FakeProject(next(self._ids), path, self.namespaces[namespace_id], "main")
        if files is not None:
            project.branches["main"] = {name: (content, False) for name, content in files.items()}
        self.projects[project.id] = project
        return project

    def project(self, full_path: str) -> FakeProject:
        return next(p for p in self.projects.values() if p.full_path == full_path)

    def fail_next(self, method: str, path_regex: str, failure, times: int = 1) -> None:
        """The next `times` matching calls answer `failure`: an HTTP status, an exception to raise, or a callback."""
        for _ in range(times):
            self._failures.append((method, re.compile(path_regex), failure))

    def created_then(self, error: BaseException):
        """A fail_next callback: GitLab creates the pipeline, then the answer never arrives (`error` is
        raised as requests raises it: a read timeout, a dropped connection)."""

        def respond(request: requests.PreparedRequest):
            project_ref = unquote(urlparse(request.url).path.split("/projects/", 1)[1].split("/", 1)[0])
            self._trigger_pipeline(project_ref, json.loads(request.body))
            raise error

        return respond

    # -- dispatch --------------------------------------------------------------------------------
    def _dispatch(self, request: requests.PreparedRequest):
        parsed = urlparse(request.url)
        raw_path = parsed.path.removeprefix(urlparse(self.url).path + "/api/v4")
        self.calls.append((request.method, raw_path))
        for index, (method, regex, failure) in enumerate(self._failures):
            if method == request.method and regex.search(raw_path):
                del self._failures[index]
                if isinstance(failure, BaseException):
                    raise failure
                if callable(failure):  # e.g. a slow answer: it returns (status, headers, body)
                    return failure(request)
                return failure, {}, json.dumps({"message": f"{failure} injected"})
        query = {k: v[-1] for k, v in parse_qs(parsed.query).items()}
        body = json.loads(request.body) if request.body else {}
        parts = [unquote(p) for p in raw_path.strip("/").split("/")]
        if parts[-2:] == ["trigger", "pipeline"]:
            return self._trigger_pipeline(parts[1], body)
        if request.headers.get("PRIVATE-TOKEN") != self.token:
            return 401, {}, json.dumps({"message": "401 Unauthorized"})
        handler = getattr(self, f"_{request.method.lower()}_{parts[0]}", None)
        if handler is None:
            return 501, {}, json.dumps({"message": f"fake GitLab has no {request.method} {raw_path}"})
        return handler(parts[1:], query, body)

    @staticmethod
    def _ok(payload, status: int = 200):
        return status, {"Content-Type": "application/json"}, json.dumps(payload)

    @staticmethod
    def _not_found(what: str):
        return 404, {"Content-Type": "application/json"}, json.dumps({"message": f"404 {what} Not Found"})

    def _find_project(self, ref: str) -> FakeProject | None:
        if ref.isdigit():
            return self.projects.get(int(ref))
        return next((p for p in self.projects.values() if p.full_path == ref), None)

    def _get_user(self, parts, query, body):
        return self._ok(self.user)

    # -- namespaces ------------------------------------------------------------------------------
    def _get_namespaces(self, parts, query, body):
        namespace = self.namespaces.get(int(parts[0])) if parts[0].isdigit() else None
        return self._ok(namespace) if namespace else self._not_found("Namespace")

    # -- projects --------------------------------------------------------------------------------
    def _post_projects(self, parts, query, body):
        if parts:
            return self._project_call("POST", parts, body)
        namespace = self.namespaces[int(body["namespace_id"])]
        if any(p.full_path == f"{namespace['full_path']}/{body['path']}" for p in self.projects.values()):
            return 400, {}, json.dumps({"message": {"path": ["has already been taken"]}})
        project = FakeProject(next(self._ids), body["path"], namespace, body.get("default_branch", "main"))
        self.projects[project.id] = project
        return self._ok(project.as_json(), 201)

    def _get_projects(self, parts, query, body):
        return self._project_call("GET", parts, body, query)

    def _put_projects(self, parts, query, body):
        return self._project_call("PUT", parts, body, query)

    def _delete_projects(self, parts, query, body):
        return self._project_call("DELETE", parts, body, query)

    def _project_call(self, method, parts, body, query=None):
        project = self._find_project(parts[0])
        if project is None:
            return self._not_found("Project")
        rest = parts[1:]
        if not rest and method == "GET":
            return self._ok(project.as_json())
        if not rest and method == "PUT":  # GitLab ignores attributes it does not know (an older release)
            project.settings.update({k: v for k, v in body.items() if k in self.known_settings})
            unknown = set(project.settings) - self.known_settings  # nor does it answer with them
            return self._ok({k: v for k, v in project.as_json().items() if k not in unknown})
        key = (method, rest[0] if rest else "")
        if key == ("GET", "repository") and rest[1] == "tree":
            files = project.branches.get((query or {}).get("ref", project.default_branch))
            if files is None:
                return self._not_found("Tree")
            return self._ok(
                [
                    {"id": _blob_id(content), "path": path, "type": "blob", "mode": "100755" if ex else "100644"}
                    for path, (content, ex) in sorted(files.items())
                ]
            )
        if key == ("POST", "repository") and rest[1] == "commits":
            return self._commit(project, body)
        if key == ("DELETE", "repository") and rest[1] == "branches":
            return (204, {}, "") if project.branches.pop(rest[2], None) is not None else self._not_found("Branch")
        if key[1] == "protected_branches":
            return self._protected(project, method, rest[1:], body)
        if key[1] == "variables":
            return self._variables(project, method, rest[1:], body, query or {})
        if key[1] == "protected_environments":
            return self._protected_environments(project, method, rest[1:], body)
        if key[1] == "triggers":
            return self._triggers(project, method, rest[1:], body)
        return 501, {}, json.dumps({"message": f"fake GitLab has no {method} projects/.../{'/'.join(rest)}"})

    def _commit(self, project: FakeProject, body: dict):
        branch = body["branch"]
        if branch in project.branches:
            files = dict(project.branches[branch])
        elif body.get("start_branch"):
            files = dict(project.branches[body["start_branch"]])
        elif not project.branches:
            files = {}
        else:
            return 400, {}, json.dumps({"message": "You can only create or edit files when you are on a branch"})
        for action in body["actions"]:
            path, kind = action["file_path"], action["action"]
            if kind in ("create", "update"):
                if (kind == "create") == (path in files):
                    problem = "already exists" if kind == "create" else "does not exist"
                    return 400, {}, json.dumps({"message": f"A file with this name {problem}: {path}"})
                assert action.get("encoding") == "base64", "seed content must be sent base64-encoded"
                executable = files.get(path, (b"", False))[1]
                files[path] = (base64.b64decode(action["content"]), executable)
            elif kind == "chmod":
                files[path] = (files[path][0], bool(action["execute_filemode"]))
            else:
                return 400, {}, json.dumps({"message": f"unsupported action {kind}"})
        project.branches[branch] = files
        commit = {
            "id": hashlib.sha1(json.dumps(body, sort_keys=True).encode(), usedforsecurity=False).hexdigest(),
            "branch": branch,
        }
        project.commits.append({**commit, "actions": body["actions"]})
        return self._ok(commit, 201)

    def _protected(self, project, method, rest, body):
        if method == "GET":
            return self._ok({"name": rest[0]}) if rest[0] in project.protected else self._not_found("Protected Branch")
        project.protected.add(body["name"])
        return self._ok(
            {"name": body["name"], "push_access_levels": [{"access_level": body["push_access_level"]}]}, 201
        )

    def _variables(self, project, method, rest, body, query):
        variables = project.scoped_variables
        if method == "GET" and not rest:
            return self._ok(list(variables.values()))
        if method == "POST":
            scope = body.get("environment_scope", "*")
            if (body["key"], scope) in variables:
                return 400, {}, json.dumps({"message": {"key": [f"({scope}) has already been taken"]}})
            if body.get("masked") and len(body["value"]) < 8:
                return 400, {}, json.dumps({"message": {"value": ["is invalid"]}})
            variables[(body["key"], scope)] = {"variable_type": "env_var", **body, "environment_scope": scope}
            return self._ok(variables[(body["key"], scope)], 201)
        # As GitLab: filter[environment_scope] picks one; without it a key in several scopes is a conflict.
        scope = query.get("filter[environment_scope]")
        matching = [k for k in variables if k[0] == rest[0] and scope in (None, k[1])]
        if not matching:
            return self._not_found("Variable")
        if len(matching) > 1:
            message = "There are multiple variables with provided parameters. Please use 'filter[environment_scope]'"
            return 409, {}, json.dumps({"message": message})
        (found,) = matching
        if method == "PUT":
            variables[found].update(body)
            return self._ok(variables[found])
        if method == "DELETE":
            del variables[found]
            return 204, {}, ""
        return self._ok(variables[found])

    def _protected_environments(self, project, method, rest, body):
        if self.tier == "ce":
            return self._not_found("")  # Community Edition has no such route
        if self.tier == "free":
            return 403, {}, json.dumps({"message": "403 Forbidden"})
        if method == "GET":
            found = project.protected_environments.get(rest[0]) if rest else None
            return self._ok(found) if found else self._not_found("Protected Environment")
        if body["name"] in project.protected_environments:
            return 409, {}, json.dumps({"message": "Protected environment already exists"})
        project.protected_environments[body["name"]] = body
        return self._ok(body, 201)

    def _triggers(self, project, method, rest, body):
        if method == "GET":
            return self._ok(list(project.triggers.values()))
        if method == "POST":
            trigger_id = next(self._ids)
            token = "glptt-" + hashlib.sha256(f"{project.id}:{trigger_id}".encode()).hexdigest()[:20]
            project.triggers[trigger_id] = {"id": trigger_id, "description": body["description"], "token": token}
            return self._ok(project.triggers[trigger_id], 201)
        if method == "DELETE":
            return (204, {}, "") if project.triggers.pop(int(rest[0]), None) else self._not_found("Trigger")
        return 501, {}, "{}"

    def _trigger_pipeline(self, project_ref: str, body: dict):
        project = self._find_project(project_ref)
        if project is None:
            return self._not_found("Project")
        if body.get("token") not in {t["token"] for t in project.triggers.values()}:
            return 404, {}, json.dumps({"message": "404 Not Found"})  # what GitLab answers a bad trigger token
        if body.get("ref") not in project.branches:
            return 400, {}, json.dumps({"message": {"base": ["Reference not found"]}})
        # The restriction applies to triggers too: their variables are set as the token's owner (a maintainer).
        role = project.settings["ci_pipeline_variables_minimum_override_role"]
        if (
            body.get("variables")
            and project.settings["restrict_user_defined_variables"]
            and role
            in (
                "no_one_allowed",
                "owner",
            )
        ):
            return 400, {}, json.dumps({"message": {"base": ["Insufficient permissions to set pipeline variables"]}})
        pipeline = {
            "id": next(self._ids),
            "ref": body["ref"],
            "status": "created",
            "web_url": f"{URL}/{project.full_path}/-/pipelines/{len(self.pipelines) + 1}",
        }
        self.pipelines.append({**pipeline, "project_id": project.id, "variables": dict(body.get("variables") or {})})
        return self._ok(pipeline, 201)


def _blob_id(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(content) + content, usedforsecurity=False).hexdigest()
