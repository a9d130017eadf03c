"""Run a job's process as its container would: in a filesystem view where `/opt/ml` is the job's own folder.

bubblewrap gives the process the host's filesystem with a private `/opt` (a tmpfs holding the host's
other `/opt` entries read-only, and the job folder at `/opt/ml`) and a private `/tmp`: whatever path a
script hard-codes under `/opt/ml`, it reads and writes the job's folder, never the host's. The tmpfs
also keeps bubblewrap from creating mount points on the host.

Where bubblewrap cannot run (missing, or a container without user namespaces), a step fails at once
saying so, unless LOCAL_STACK_ISOLATION=off: then the process runs on the host with arguments under
`/opt/ml/` rewritten to the job folder, and every step's log says that paths the script builds itself
are not isolated.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

CONTAINER_ROOT = "/opt/ml"
ISOLATION_VARIABLE = "LOCAL_STACK_ISOLATION"
# What every container has on PATH besides its Python environment.
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Host variables a process needs to behave; everything else (AWS_*, VIRTUAL_ENV, PYTHONPATH, ...) stays out.
PASSED_THROUGH = ("HOME", "LANG", "LC_ALL", "TZ")


class IsolationUnavailable(Exception):
    pass


@dataclass
class Process:
    command: list[str]
    job_root: Path  # the host folder seen as /opt/ml
    env_bin: Path  # the image environment's bin/, first on PATH (so "python3" is the image's Python)
    environment: dict[str, str]
    log_file: Path
    timeout: float
    read_only: dict[str, Path] = field(default_factory=dict)  # container path -> host path (e.g. an entry point)


def isolation_off() -> bool:
    return os.environ.get(ISOLATION_VARIABLE, "").lower() in ("off", "0", "false", "no")


@functools.cache
def _bwrap_problem() -> str | None:
    """None when bubblewrap works here, else why not (checked once per process)."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return "bubblewrap (bwrap) is not installed (Debian: apt-get install bubblewrap; `make venv` installs it)"
    probe = subprocess.run(
        [bwrap, "--bind", "/", "/", "--tmpfs", "/opt", "--dev", "/dev", "--proc", "/proc", "true"],
        capture_output=True,
        text=True,
    )
    if probe.returncode != 0:
        return f"bubblewrap cannot create a sandbox here: {probe.stderr.strip() or probe.returncode}"
    return None


def check_isolation() -> None:
    """Raise IsolationUnavailable, with the way out, unless steps can be isolated (or isolation is off)."""
    if isolation_off():
        return
    problem = _bwrap_problem()
    if problem:
        raise IsolationUnavailable(
            f"{problem}. The local stack runs each step with its container paths (/opt/ml/...) isolated; "
            f"set {ISOLATION_VARIABLE}=off to run steps on the host without isolation"
        )


def bwrap_command(process: Process) -> list[str]:
    command = ["bwrap", "--bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp", "--tmpfs", "/opt"]
    for entry in sorted(Path("/opt").iterdir()) if Path("/opt").is_dir() else []:
        if entry.name != "ml":  # the host's other /opt content stays visible, read-only
            command += ["--ro-bind", str(entry), str(entry)]
    # Under the private /tmp the environment would vanish if it lives there (tests may put the cache in /tmp).
    env_root = str(process.env_bin.parent)
    command += ["--ro-bind", env_root, env_root]
    command += ["--bind", str(process.job_root), CONTAINER_ROOT]
    for container_path, host_path in process.read_only.items():
        command += ["--ro-bind", str(host_path), container_path]
    command += ["--chdir", CONTAINER_ROOT, "--unshare-pid", "--die-with-parent", "--"]
    return command + process.command


def _on_host(process: Process) -> list[str]:
    """Isolation off: container paths in the arguments point at the job folder (hard-coded ones do not)."""
    mapped = {**{CONTAINER_ROOT: process.job_root}, **process.read_only}

    def rewrite(part: str) -> str:
        for container_path, host_path in sorted(mapped.items(), key=lambda item: -len(item[0])):
            if part == container_path or part.startswith(container_path.rstrip("/") + "/"):
                return str(host_path) + part[len(container_path) :]
        return part

    return [rewrite(part) for part in process.command]


def run(process: Process) -> int:
    """Run the process with its output in log_file; the exit code. Raises subprocess.TimeoutExpired."""
    check_isolation()
    host = {name: os.environ[name] for name in PASSED_THROUGH if name in os.environ}
    environment = {
        **host,
        "PATH": f"{process.env_bin}:{SYSTEM_PATH}",
        "PYTHONUNBUFFERED": "1",  # the log shows progress as it happens, as CloudWatch does
        **process.environment,
    }
    with process.log_file.open("a") as log:
        if isolation_off():
            log.write(
                f"local stack: {ISOLATION_VARIABLE}=off: this step runs WITHOUT isolation; only arguments under "
                f"{CONTAINER_ROOT}/ are mapped to {process.job_root}, paths the script builds itself reach the host\n"
            )
            command, cwd = _on_host(process), process.job_root
        else:
            command, cwd = bwrap_command(process), None
        log.flush()
        finished = subprocess.run(
            command, cwd=cwd, env=environment, stdout=log, stderr=subprocess.STDOUT, timeout=process.timeout
        )
    return finished.returncode
