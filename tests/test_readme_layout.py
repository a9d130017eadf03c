"""The README's layout table is the map of the repo: every path in it exists, and every top-level folder is in it.

And the architecture rules it states hold: no module changes sys.path, and nothing imports from scripts/.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
ROW = re.compile(r"^\| `(?P<path>[^`]+)` \|")


def layout_paths() -> list[str]:
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Layout", 1)[1].split("\n## ", 1)[0].split("### What moved", 1)[0]
    return [match["path"] for line in section.splitlines() if (match := ROW.match(line))]


def tracked_files() -> list[str]:
    listed = subprocess.run(["git", "ls-files"], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    return listed.stdout.split()


def test_every_path_in_the_layout_table_exists():
    paths = layout_paths()
    assert len(paths) > 10
    missing = [path for path in paths if not (REPO_ROOT / path).exists()]
    assert not missing, f"the README's layout table names paths that do not exist: {missing}"


def test_every_top_level_folder_is_in_the_layout_table():
    folders = {name.split("/", 1)[0] + "/" for name in tracked_files() if "/" in name}
    listed = {path.split("/", 1)[0] + "/" for path in layout_paths()}
    assert folders - listed == set(), f"top-level folders missing from the README's layout table: {folders - listed}"


def test_no_module_inserts_into_sys_path_and_nothing_imports_from_scripts():
    python = [name for name in tracked_files() if name.endswith(".py") or name.startswith("scripts/")]
    offenders = []
    for name in python:
        text = (REPO_ROOT / name).read_text(encoding="utf-8", errors="replace")
        if re.search(r"sys\.path(\.insert|\.append|\[)", text) or re.search(r"^\s*(from|import) scripts\b", text, re.M):
            offenders.append(name)
    assert offenders == [], f"sys.path changes or imports from scripts/: {offenders}"


def test_scripts_are_entry_points_only():
    for script in sorted((REPO_ROOT / "scripts").iterdir()):
        lines = [line for line in script.read_text(encoding="utf-8").splitlines() if line.strip()]
        assert len(lines) <= 15, f"{script.name} holds code: move it into a package"
        assert any(re.match(r"from \w+(\.\w+)* import main", line) for line in lines), script.name
