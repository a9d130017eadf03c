"""The image decides the environment: a step's image URI selects a Python environment with that image's
framework at its exact version, built by uv from a pinned lock file and cached.

`local_aws/sagemaker/images/<framework>-<version>.lock` lists what one image holds (its `.in` says why each
pin). An image without a lock file fails the step, naming the nearest image that has one: a step is never
run with some other version of its framework.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("local_aws.sagemaker.executor")

LOCKS = Path(__file__).resolve().parents[1] / "images"
# ECR repository name -> framework name in the lock files (and in the SDK's image_uris.retrieve).
REPOSITORIES = {
    "sagemaker-scikit-learn": "sklearn",
    "sagemaker-xgboost": "xgboost",
    "sagemaker-model-monitor-analyzer": "model-monitor",  # the SDK's URI has no tag: "latest"
    "sagemaker-clarify-processing": "clarify",
}
# "1.2-1-cpu-py3" -> "1.2-1", "0.90-2" -> "0.90-2", Clarify's "1.0" -> "1.0"
_TAG_VERSION = re.compile(r"^(\d+\.\d+(?:\.\d+)?(?:-\d+)?)(?:-|$)")
# Images whose processing jobs run the image's own program (the definition has no ContainerEntrypoint):
# framework -> its stand-in beside the lock files, mounted read-only at /opt/local-aws/ in the sandbox.
ENTRY_POINTS = {"model-monitor": "model_monitor_analyzer.py", "clarify": "clarify_processing.py"}


class ImageError(Exception):
    """An image the local stack cannot stand in for; the message says what to use instead."""


@dataclass(frozen=True)
class Image:
    uri: str
    framework: str  # "sklearn" or "xgboost"
    version: str  # the image's version, e.g. "1.7-1"

    @property
    def lock_file(self) -> Path:
        return LOCKS / f"{self.framework}-{self.version}.lock"


@dataclass(frozen=True)
class Environment:
    image: Image
    root: Path  # the virtual environment; bin/python3 is the image's Python
    build_seconds: float  # 0.0 when it came from the cache

    @property
    def bin(self) -> Path:
        return self.root / "bin"


def parse(uri: str) -> Image:
    """`<account>.dkr.ecr.<region>.amazonaws.com/<repository>:<tag>` -> the framework and version it runs."""
    repository, _, tag = uri.rpartition("/")[2].partition(":")
    framework = REPOSITORIES.get(repository)
    if framework is not None and tag in ("", "latest"):
        return Image(uri, framework, "latest")
    match = _TAG_VERSION.match(tag)
    if framework is None or match is None:
        known = ", ".join(f"{name}:<version>" for name in REPOSITORIES)
        raise ImageError(f"image {uri} is not one the local stack can run (it runs {known}; see local_aws/README.md)")
    return Image(uri, framework, match.group(1))


def supported(framework: str) -> list[str]:
    return sorted((p.stem.removeprefix(f"{framework}-") for p in LOCKS.glob(f"{framework}-*.lock")), key=_order)


def _order(version: str) -> tuple[int, ...]:
    return tuple(int(part) if part.isdigit() else 0 for part in re.split(r"[.-]", version))


def resolve(uri: str) -> Image:
    """The image, if the local stack has its environment; else ImageError naming the nearest that it has."""
    image = parse(uri)
    if image.lock_file.exists():
        return image
    versions = supported(image.framework)
    wanted = _order(image.version)
    nearest = min(versions, key=lambda v: [abs(a - b) for a, b in zip(_order(v), wanted, strict=False)])
    raise ImageError(
        f"image {uri} ({image.framework} {image.version}) has no local environment: its framework version "
        f"cannot be installed on this machine's Python {sys.version_info.major}.{sys.version_info.minor}, or no "
        f"lock file pins it yet. Nearest supported: {image.framework} {nearest} (all: {', '.join(versions)}); "
        f"add {image.lock_file.relative_to(LOCKS.parents[2])} to support it"
    )


def cache_root() -> Path:
    """Shared by every stack on the machine: an environment depends on its lock file only."""
    configured = os.environ.get("LOCAL_STACK_IMAGE_CACHE")
    if configured:
        return Path(configured)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "local-aws" / "images"


def environment(image: Image) -> Environment:
    """The image's environment, built once per lock file content (under a file lock: executions run in parallel)."""
    lock_bytes = image.lock_file.read_bytes()
    digest = hashlib.sha256(lock_bytes).hexdigest()[:12]
    root = cache_root() / f"{image.framework}-{image.version}-{digest}"
    if (root / ".complete").exists():
        return Environment(image, root, 0.0)
    root.parent.mkdir(parents=True, exist_ok=True)
    with open(root.parent / f"{root.name}.lock", "w") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)
        if (root / ".complete").exists():  # another execution built it while this one waited
            return Environment(image, root, 0.0)
        started = time.monotonic()
        log.info("building the environment of %s from %s", image.uri, image.lock_file.name)
        shutil.rmtree(root, ignore_errors=True)  # a build that was interrupted
        _build(root, image.lock_file)
        (root / ".complete").write_text(image.lock_file.name + "\n")
        seconds = time.monotonic() - started
        log.info("built the environment of %s in %.1f s", image.uri, seconds)
        return Environment(image, root, seconds)


def _build(root: Path, lock_file: Path) -> None:
    from uv import find_uv_bin  # the uv pinned in requirements-dev.lock

    uv = find_uv_bin()
    # The machine's own Python 3.11 (the stack's base interpreter), never a download.
    python = getattr(sys, "_base_executable", sys.executable)
    steps = (
        [uv, "venv", "-q", "--no-python-downloads", "--python", python, str(root)],
        [uv, "pip", "sync", "-q", "--require-hashes", "--compile-bytecode", "--python", str(root / "bin" / "python"),
         str(lock_file)],
    )  # fmt: skip
    for command in steps:
        finished = subprocess.run(command, capture_output=True, text=True)
        if finished.returncode != 0:
            shutil.rmtree(root, ignore_errors=True)
            raise ImageError(f"building the environment from {lock_file.name} failed: {finished.stderr.strip()}")


# Reads xgboost-model (pickled or save_model format) with the image's xgboost; writes it as JSON on stdout.
_TO_JSON = """
import pickle, sys, tempfile, xgboost
raw = sys.stdin.buffer.read()
try:
    booster = pickle.loads(raw)
except Exception:
    booster = xgboost.Booster()
    booster.load_model(bytearray(raw))
with tempfile.NamedTemporaryFile(suffix=".json") as handle:
    booster.save_model(handle.name)
    sys.stdout.buffer.write(open(handle.name, "rb").read())
"""


def xgboost_model_as_json(raw: bytes) -> bytes:
    """An `xgboost-model` that today's xgboost cannot read (a 1.x binary or pickle) in XGBoost's JSON format.

    The real endpoint serves the model with its image's xgboost; the local runtime and tests use the host's,
    so the model is converted, losslessly, by the xgboost images that can read it, newest first.
    """
    errors = []
    for version in reversed(supported("xgboost")):
        image = Image(f"sagemaker-xgboost:{version}", "xgboost", version)
        python = environment(image).bin / "python"
        finished = subprocess.run([str(python), "-c", _TO_JSON], input=raw, capture_output=True)
        if finished.returncode == 0:
            return finished.stdout
        errors.append(f"{version}: {finished.stderr.decode(errors='replace').strip().splitlines()[-1:]}")
    raise ImageError(f"no XGBoost image can read this model ({'; '.join(errors)})")


def build_all() -> list[Environment]:
    """Every image environment the lock files define, built now (or found in the cache): `make images` runs it
    before the tests, so a first build is paid once, up front, and never inside a test's or a step's time."""
    built = []
    frameworks = sorted(set(REPOSITORIES.values()), key=len, reverse=True)  # "model-monitor" has a dash itself
    for lock_file in sorted(LOCKS.glob("*.lock")):
        framework = next(name for name in frameworks if lock_file.stem.startswith(f"{name}-"))
        version = lock_file.stem.removeprefix(f"{framework}-")
        built.append(environment(Image(f"local/{framework}:{version}", framework, version)))
    return built
