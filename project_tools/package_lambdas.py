#!/usr/bin/env python3
"""Package the template's assets, reproducibly: the same inputs give the same zip bytes.

    scripts/package-lambdas [--out build/assets] [--offline]
    scripts/package-lambdas --lock      # re-resolve each Lambda's requirements.txt

Writes to --out:
- seed_code.zip, model_trigger.zip, alert_gate.zip: the Lambda sources (package `lambdas`) plus their dependencies,
  installed by uv from each function's pinned requirements.txt for the Lambda platform
  (x86_64 manylinux, CPython 3.11, wheels only). `--offline` installs from uv's cache alone.
- model-build.zip, model-deploy.zip: the seed archives, every file git tracks in those folders
  (working-tree content, git's executable bit), paths relative to the folder: each becomes a repo root.
- manifest.json: name -> file, size, sha256 and the content-addressed S3 key provision_project.py uploads to.

Zips are deterministic: entries sorted, timestamps fixed to 1980-01-01, modes normalised to 644/755.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAMBDA_SOURCES = ROOT / "cloudformation" / "lambdas"
LAMBDAS = ("seed_code", "model_trigger", "alert_gate")
SEED_FOLDERS = ("model-build", "model-deploy")
LAMBDA_PYTHON = "3.11"  # the template's Runtime: python3.11
LAMBDA_PLATFORM = "x86_64-manylinux2014"  # the template's Architectures: x86_64
FIXED_DATE = (1980, 1, 1, 0, 0, 0)
# Installer leftovers that differ between machines or are useless in a Lambda: byte code anywhere, the
# console scripts uv writes to the target's top-level bin/ (a package's own bin/ folder is kept), and the
# `.lock` file uv leaves at the top of a --target folder.
SKIPPED_TOP_LEVEL = ("bin", ".lock")


class PackagingError(Exception):
    pass


Entry = tuple[str, bytes, bool]  # archive path, content, executable


def deterministic_zip(entries: list[Entry]) -> bytes:
    names = [name for name, _, _ in entries]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise PackagingError(f"duplicate archive entries: {', '.join(duplicates)}")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content, executable in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=FIXED_DATE)
            info.create_system = 3  # unix, so the mode below is honoured
            info.external_attr = (stat.S_IFREG | (0o755 if executable else 0o644)) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, content, compresslevel=9)
    return buffer.getvalue()


def tree_entries(folder: Path, prefix: str = "") -> list[Entry]:
    entries = []
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        leftover = relative.parts[0] in SKIPPED_TOP_LEVEL or "__pycache__" in relative.parts or path.suffix == ".pyc"
        if path.is_dir() or leftover:
            continue
        executable = bool(path.stat().st_mode & stat.S_IXUSR)
        entries.append((prefix + relative.as_posix(), path.read_bytes(), executable))
    return entries


def seed_archive(folder: str, root: Path = ROOT) -> bytes:
    """Every file git tracks under `folder`, relative to it. Symlinks and missing files are errors:
    the seed must not drop anything silently."""
    listing = subprocess.run(
        ["git", "-C", str(root), "ls-files", "-s", "-z", "--", folder], capture_output=True, check=True
    ).stdout.decode()
    entries = []
    for record in filter(None, listing.split("\0")):
        meta, path = record.split("\t", 1)
        mode = meta.split()[0]
        if mode == "120000":
            raise PackagingError(f"{path} is a symlink: GitLab's commit API cannot store it; commit the file instead")
        if mode == "160000":
            raise PackagingError(f"{path} is a git submodule: seed repositories cannot hold one")
        source = root / path
        if not source.is_file():
            raise PackagingError(f"{path} is tracked by git but missing from the work tree: restore or `git rm` it")
        entries.append((Path(path).relative_to(folder).as_posix(), source.read_bytes(), mode == "100755"))
    if not entries:
        raise PackagingError(f"git tracks no file under {folder}/: commit the seed code first")
    return deterministic_zip(entries)


def uv_command() -> str:
    local = ROOT / ".venv" / "bin" / "uv"
    found = str(local) if local.exists() else shutil.which("uv")
    if not found:
        raise PackagingError("uv not found: run `make venv` (it installs uv into .venv)")
    return found


def lambda_archive(name: str, offline: bool = False) -> bytes:
    """The function's sources under lambdas/ plus its pinned dependencies at the zip root."""
    requirements = LAMBDA_SOURCES / name / "requirements.txt"
    with tempfile.TemporaryDirectory(prefix=f"package-{name}-") as target:
        command = [
            uv_command(), "pip", "install", "--quiet", "--no-deps", "--target", target,
            "--python-version", LAMBDA_PYTHON, "--python-platform", LAMBDA_PLATFORM, "--only-binary", ":all:",
            "-r", str(requirements),
        ]  # fmt: skip
        if offline:
            command.append("--offline")
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            hint = " (offline: run once online to fill uv's cache)" if offline else ""
            raise PackagingError(f"installing {requirements.relative_to(ROOT)} failed{hint}:\n{result.stderr.strip()}")
        entries = tree_entries(Path(target))
    sources = [("lambdas/__init__.py", (LAMBDA_SOURCES / "__init__.py").read_bytes(), False)]
    sources += [e for e in tree_entries(LAMBDA_SOURCES / name, f"lambdas/{name}/") if e[0].endswith(".py")]
    return deterministic_zip(entries + sources)


def lock() -> None:
    """Re-resolve each Lambda's requirements.txt against the dev lock (the versions the tests use)."""
    for name in LAMBDAS:
        folder = (LAMBDA_SOURCES / name).relative_to(ROOT)
        subprocess.run(
            [
                uv_command(), "pip", "compile", "-q", "--python-version", LAMBDA_PYTHON,
                "--python-platform", LAMBDA_PLATFORM, "-c", "requirements-dev.lock",
                f"{folder}/requirements.in", "-o", f"{folder}/requirements.txt",
            ],
            cwd=ROOT, check=True,
        )  # fmt: skip
        print(f"locked {folder}/requirements.txt")


def package(out: Path, offline: bool = False) -> dict[str, dict]:
    out.mkdir(parents=True, exist_ok=True)
    builders = {name: (lambda n=name: lambda_archive(n, offline)) for name in LAMBDAS}
    builders.update({folder: (lambda f=folder: seed_archive(f)) for folder in SEED_FOLDERS})
    manifest = {}
    for name, build in builders.items():
        started = time.monotonic()
        data = build()
        digest = hashlib.sha256(data).hexdigest()
        (out / f"{name}.zip").write_bytes(data)
        manifest[name] = {
            "file": f"{name}.zip",
            "size": len(data),
            "sha256": digest,
            "s3_key": f"assets/{name}-{digest[:16]}.zip",
        }
        seconds = time.monotonic() - started
        print(f"  {name + '.zip':<20} {len(data) / 1024:9.1f} KiB  sha256 {digest[:16]}  {seconds:5.1f} s")
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "assets", help="output folder")
    parser.add_argument("--offline", action="store_true", help="install dependencies from uv's cache only")
    parser.add_argument("--lock", action="store_true", help="re-resolve each Lambda's requirements.txt and exit")
    args = parser.parse_args(argv)
    try:
        if args.lock:
            lock()
            return 0
        print(f"==> packaging template assets into {os.path.relpath(args.out)}")
        started = time.monotonic()
        manifest = package(args.out, args.offline)
        print(f"==> {len(manifest)} archives in {time.monotonic() - started:.1f} s; manifest.json lists their S3 keys")
    except PackagingError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
