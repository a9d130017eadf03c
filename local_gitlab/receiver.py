"""A loopback stand-in for the GitLab API calls of this project: trigger a pipeline, follow it, press a job.

    from local_gitlab.receiver import GitLabReceiver

    def run_deploy_pipeline(pipeline: TriggeredPipeline) -> list[dict] | None:
        ...  # e.g. run model-deploy's CI with pipeline.variables; raise to mark it failed
        return [{"name": "build", "stage": "build", "status": "success"}, ...]   # its jobs, as GitLab lists them

    with GitLabReceiver(on_pipeline=run_deploy_pipeline, project_id=2, ref="main") as receiver:
        receiver.url            # http://127.0.0.1:<free port>: the trigger Lambda's GITLAB_URL
        receiver.trigger_token  # the only token it accepts (random unless given)
        ...                     # deliver approval events (local_aws.awslambda.invoke)
        receiver.wait()         # until every callback finished; returns receiver.pipelines

It answers `POST /api/v4/projects/<project_id>/trigger/pipeline` (JSON, as python-gitlab sends it, or
form fields `token`, `ref`, `variables[KEY]`, as curl users send it) like GitLab does: 201 with the
pipeline, 404 for another project or a wrong token, 400 for another ref. Every accepted trigger is
recorded as a `TriggeredPipeline` (id, ref, variables, status, jobs) and handed to `on_pipeline` on a worker
thread, one at a time in order, so the HTTP answer never waits for a deploy. The callback's
exception marks the pipeline `failed` with its message; a pipeline whose jobs stop at a manual job is `manual`,
as GitLab reports a pipeline waiting at a blocking manual job.

More projects of the same GitLab (each with its own trigger token, ref, path and callbacks) are served by
`add_project(...)`: the local GitLab's build project, whose pipeline the retraining decision triggers. Pipeline
ids are global, as on GitLab; each project lists and plays only its own.

Following a pipeline, as GitLab's API (`/api/v4/projects/<id>/...`): `GET pipelines`, `GET pipelines/<id>`,
`GET pipelines/<id>/variables`, `GET pipelines/<id>/jobs`, and `POST jobs/<job id>/play` to press a manual job
(it runs `on_play(pipeline, job name)` on the same worker thread). These read routes answer without a token:
the receiver listens on 127.0.0.1 only (a deviation from GitLab, listed in the README). Anything else gets 404
naming the route.
"""

from __future__ import annotations

import itertools
import json
import logging
import queue
import re
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote

log = logging.getLogger(__name__)

TRIGGER_ROUTE = re.compile(r"^/api/v4/projects/(?P<project>[^/]+)/trigger/pipeline$")
PIPELINES_ROUTE = re.compile(
    r"^/api/v4/projects/(?P<project>[^/]+)/pipelines(?:/(?P<id>\d+)(?:/(?P<part>variables|jobs))?)?$"
)
PLAY_ROUTE = re.compile(r"^/api/v4/projects/(?P<project>[^/]+)/jobs/(?P<job>\d+)/play$")
FORM_VARIABLE = re.compile(r"^variables\[(?P<key>[^\]]+)\]$")


@dataclass
class TriggeredPipeline:
    id: int
    project_id: int
    ref: str
    variables: dict[str, str]
    status: str = "created"  # created -> running -> success | failed | manual (waiting at a manual job)
    error: str | None = None
    jobs: list[dict] = field(default_factory=list)  # {"id", "name", "stage", "status", "duration"}
    done: threading.Event = field(default_factory=threading.Event, repr=False)

    def as_json(self, web_url: str) -> dict:
        return {
            "id": self.id,
            "iid": self.id,
            "project_id": self.project_id,
            "ref": self.ref,
            "status": self.status,
            "source": "trigger",
            "web_url": web_url,
        }

    def settle(self) -> None:
        """The pipeline's status from its jobs, as GitLab derives it."""
        statuses = [job["status"] for job in self.jobs]
        if "failed" in statuses:
            self.status = "failed"
        elif "manual" in statuses:
            self.status = "manual"
        else:
            self.status = "success"


@dataclass
class Project:
    project_id: int
    project_path: str
    ref: str
    trigger_token: str = field(repr=False)
    on_pipeline: Callable[[TriggeredPipeline], list[dict] | None] | None = None
    on_play: Callable[[TriggeredPipeline, str], list[dict] | None] | None = None

    def named(self, project: str) -> bool:
        return project in (str(self.project_id), self.project_path)


class GitLabReceiver:
    def __init__(
        self,
        on_pipeline: Callable[[TriggeredPipeline], list[dict] | None] | None = None,
        on_play: Callable[[TriggeredPipeline, str], list[dict] | None] | None = None,
        project_id: int = 1,
        ref: str = "main",
        trigger_token: str | None = None,
        project_path: str = "local/model-deploy",
    ):
        self.on_pipeline = on_pipeline
        self.on_play = on_play
        self.project_id = project_id
        self.ref = ref
        self.trigger_token = trigger_token or "glptt-" + secrets.token_hex(16)
        self.project_path = project_path
        self.projects: list[Project] = [
            Project(project_id, project_path, ref, self.trigger_token, on_pipeline, on_play)
        ]
        self.pipelines: list[TriggeredPipeline] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._queue: queue.Queue[tuple[TriggeredPipeline, str | None] | None] = queue.Queue()
        self._server: ThreadingHTTPServer | None = None
        self._threads: list[threading.Thread] = []

    def add_project(
        self,
        project_id: int,
        project_path: str,
        on_pipeline: Callable[[TriggeredPipeline], list[dict] | None] | None = None,
        on_play: Callable[[TriggeredPipeline, str], list[dict] | None] | None = None,
        ref: str = "main",
        trigger_token: str | None = None,
    ) -> Project:
        """Serve another project of this GitLab, with its own trigger token (random unless given)."""
        added = Project(
            project_id, project_path, ref, trigger_token or "glptt-" + secrets.token_hex(16), on_pipeline, on_play
        )
        with self._lock:
            self.projects.append(added)
        return added

    def project(self, project: str | int) -> Project | None:
        return next((known for known in self.projects if known.named(str(project))), None)

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the receiver is not running: use it as a context manager or call start()")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> GitLabReceiver:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._threads = [
            threading.Thread(target=self._server.serve_forever, name="gitlab-receiver", daemon=True),
            threading.Thread(target=self._run_pipelines, name="gitlab-receiver-pipelines", daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        log.info("GitLab receiver listening on %s (project %s, ref %s)", self.url, self.project_id, self.ref)
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        self._queue.put(None)
        for thread in self._threads:
            thread.join(timeout=5)
        self._server = None

    def __enter__(self) -> GitLabReceiver:
        return self.start()

    def __exit__(self, *_exc) -> None:
        self.stop()

    def wait(self, timeout: float = 300.0) -> list[TriggeredPipeline]:
        """Block until every pipeline triggered so far has finished its callback."""
        with self._lock:
            pending = list(self.pipelines)
        for pipeline in pending:
            if not pipeline.done.wait(timeout):
                raise TimeoutError(f"pipeline {pipeline.id} still {pipeline.status} after {timeout:.0f} s")
        return pending

    def accept(self, project: str, body: dict) -> tuple[int, dict]:
        """GitLab's answer to a trigger request: (HTTP status, JSON body)."""
        target = self.project(project)
        if target is None:
            return 404, {"message": "404 Project Not Found"}
        if not secrets.compare_digest(str(body.get("token", "")), target.trigger_token):
            return 404, {"message": "404 Not Found"}  # GitLab hides whether the project exists
        if body.get("ref") != target.ref:
            return 400, {"message": {"base": ["Reference not found"]}}
        variables = {str(k): str(v) for k, v in (body.get("variables") or {}).items()}
        with self._lock:
            pipeline = TriggeredPipeline(next(self._ids), target.project_id, target.ref, variables)
            self.pipelines.append(pipeline)
        answer = pipeline.as_json(self.web_url(pipeline))  # before the worker can start it: "created"
        self._queue.put((pipeline, None))
        log.info(
            "pipeline %s of project %s triggered on %s with %s",
            pipeline.id,
            target.project_id,
            target.ref,
            sorted(variables),
        )
        return 201, answer

    def web_url(self, pipeline: TriggeredPipeline) -> str:
        owner = self.project(pipeline.project_id)
        return f"{self.url}/{owner.project_path if owner else self.project_path}/-/pipelines/{pipeline.id}"

    def read(self, project: str, pipeline_id: str | None, part: str | None) -> tuple[int, object]:
        """GitLab's answer to GET pipelines[/<id>[/variables|jobs]]."""
        target = self.project(project)
        if target is None:
            return 404, {"message": "404 Project Not Found"}
        with self._lock:
            pipelines = [pipeline for pipeline in self.pipelines if pipeline.project_id == target.project_id]
        if pipeline_id is None:
            return 200, [pipeline.as_json(self.web_url(pipeline)) for pipeline in reversed(pipelines)]
        found = next((pipeline for pipeline in pipelines if pipeline.id == int(pipeline_id)), None)
        if found is None:
            return 404, {"message": "404 Not found"}
        if part == "variables":
            return 200, [{"key": k, "value": v, "variable_type": "env_var"} for k, v in found.variables.items()]
        if part == "jobs":
            return 200, [dict(job) for job in found.jobs]
        return 200, found.as_json(self.web_url(found))

    def play(self, project: str, job_id: int) -> tuple[int, dict]:
        """GitLab's answer to POST jobs/<id>/play: only a manual job that has not run yet can be played."""
        target = self.project(project)
        if target is None:
            return 404, {"message": "404 Project Not Found"}
        with self._lock:
            owner = next(
                (
                    p
                    for p in self.pipelines
                    if p.project_id == target.project_id
                    for job in p.jobs
                    if job["id"] == job_id
                ),
                None,
            )
        if owner is None:
            return 404, {"message": "404 Job Not Found"}
        job = next(job for job in owner.jobs if job["id"] == job_id)
        if job["status"] != "manual" or target.on_play is None:
            return 400, {"message": f"job {job['name']} is {job['status']}: only a manual job can be played"}
        job["status"] = "pending"
        owner.status = "running"
        owner.done.clear()
        self._queue.put((owner, job["name"]))
        log.info("pipeline %s: job %s played", owner.id, job["name"])
        return 200, dict(job)

    def _run_pipelines(self) -> None:
        while (item := self._queue.get()) is not None:
            pipeline, played = item
            pipeline.status = "running"
            owner = self.project(pipeline.project_id)
            try:
                if played is None:
                    jobs = owner.on_pipeline(pipeline) if owner and owner.on_pipeline is not None else None
                    pipeline.jobs = [
                        {"id": pipeline.id * 1000 + index, **job} for index, job in enumerate(jobs or [], start=1)
                    ]
                else:
                    self._record_played(pipeline, played, owner.on_play(pipeline, played) or [])
                pipeline.settle()
            except Exception as error:  # noqa: BLE001 - a failed deploy is a pipeline result, not a crash
                log.exception("pipeline %s failed", pipeline.id)
                pipeline.status, pipeline.error = "failed", f"{type(error).__name__}: {error}"
                for job in pipeline.jobs:
                    if job["name"] == played:
                        job["status"] = "failed"
            finally:
                pipeline.done.set()

    @staticmethod
    def _record_played(pipeline: TriggeredPipeline, played: str, results: list[dict]) -> None:
        for job in pipeline.jobs:
            for result in results:
                if result["name"] == job["name"]:
                    job.update({key: value for key, value in result.items() if key != "id"})


def _handler_for(receiver: GitLabReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the http.server API
            path = self.path.split("?", 1)[0]
            if play := PLAY_ROUTE.match(path):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                return self._answer(*receiver.play(unquote(play["project"]), int(play["job"])))
            match = TRIGGER_ROUTE.match(path)
            if match is None:
                return self._answer(404, {"message": f"the local GitLab receiver has no route POST {self.path}"})
            try:
                body = _read_body(self)
            except ValueError as error:
                return self._answer(400, {"message": f"unreadable body: {error}"})
            status, payload = receiver.accept(unquote(match["project"]), body)  # "group%2Fproject" paths
            return self._answer(status, payload)

        def do_GET(self) -> None:  # noqa: N802
            match = PIPELINES_ROUTE.match(self.path.split("?", 1)[0])
            if match is None:
                return self._answer(404, {"message": f"the local GitLab receiver has no route GET {self.path}"})
            return self._answer(*receiver.read(unquote(match["project"]), match["id"], match["part"]))

        def _answer(self, status: int, payload: object) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args) -> None:  # noqa: A002 - the http.server API
            log.debug("receiver: " + format, *args)  # the request line only: tokens travel in the body

    return Handler


def _read_body(request: BaseHTTPRequestHandler) -> dict:
    raw = request.rfile.read(int(request.headers.get("Content-Length") or 0))
    if request.headers.get("Content-Type", "").startswith("application/json"):
        value = json.loads(raw or b"{}")
        if not isinstance(value, dict):
            raise ValueError("expected a JSON object")
        return value
    fields = {key: values[-1] for key, values in parse_qs(raw.decode()).items()}
    body: dict = {"variables": {}}
    for key, value in fields.items():
        if variable := FORM_VARIABLE.match(key):
            body["variables"][variable["key"]] = value
        else:
            body[key] = value
    return body
