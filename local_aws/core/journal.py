"""Append-only JSON Lines files that survive a crash at any moment: the stack's recording and event logs.

A line is written with one `os.write` on a file opened with O_APPEND, so a killed process leaves either
the whole line or, at worst (power loss, a full disk), a torn last line. Readers never trust a file:
`read` keeps every line that parses as a JSON object and says what it left out, and `repair` rewrites
the file without those lines, so the next append does not glue a good line onto a torn one.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Read:
    entries: list[dict[str, Any]] = field(default_factory=list)
    truncated: int = 0  # a last line without its newline: a write cut short
    unreadable: int = 0  # complete lines that are not a JSON object

    def dropped(self, name: str) -> list[str]:
        """What was left out, as `up` and `status` report it."""
        said = []
        if self.truncated:
            said.append(f"dropped {self.truncated} truncated line of {name}")
        if self.unreadable:
            said.append(f"dropped {self.unreadable} unreadable line(s) of {name}")
        return said


def read(path: Path) -> Read:
    result = Read()
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return result
    lines = data.split(b"\n")
    if lines[-1]:  # no newline after the last line: it was cut short
        lines.pop()
        result.truncated = 1
    for line in lines:
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            result.unreadable += 1
            continue
        if isinstance(entry, dict):
            result.entries.append(entry)
        else:
            result.unreadable += 1
    return result


def append(path: Path, entry: dict[str, Any]) -> None:
    line = (json.dumps(entry, separators=(",", ":"), default=str) + "\n").encode("utf-8")
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        view = memoryview(line)
        while view:  # a regular file takes it in one call; loop in case it does not
            view = view[os.write(descriptor, view) :]
    finally:
        os.close(descriptor)


def rewrite(path: Path, entries: list[dict[str, Any]]) -> None:
    """Replace the file with exactly these entries: written aside, flushed to disk, then renamed over it,
    so a crash leaves the old file or the new one, never a mix."""
    path = Path(path)
    temporary = path.with_name(path.name + ".tmp")
    with temporary.open("wb") as stream:
        for entry in entries:
            stream.write((json.dumps(entry, separators=(",", ":"), default=str) + "\n").encode("utf-8"))
        stream.flush()
        os.fsync(stream.fileno())
    temporary.replace(path)


def repair(path: Path, name: str | None = None) -> list[str]:
    """Drop the lines `read` cannot use from the file itself; returns what was dropped."""
    found = read(path)
    said = found.dropped(name or Path(path).name)
    if said:
        rewrite(path, found.entries)
    return said
