"""One stack per state folder: the server holds an exclusive lock on `<state dir>/stack.lock` for its life.

flock(2) is released by the kernel when the holder exits in any way (SIGKILL included), so a crash never
leaves a stale lock. The lock file holds the holder's PID, for messages and for `down` when stack.json is
unreadable. Nobody else ever takes the lock to look at it (that could make a starting server fail): a
reader checks the PID in the file instead.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

LOCK_FILE = "stack.lock"


class StackLocked(RuntimeError):
    def __init__(self, state_dir: Path, pid: int | None):
        self.pid = pid
        holder = f"PID {pid}" if pid else "another process"
        super().__init__(
            f"another local stack ({holder}) is running in {state_dir}: it holds {Path(state_dir) / LOCK_FILE}. "
            "Use that one, or stop it first (scripts/local-stack down)."
        )


def acquire(state_dir: Path) -> int:
    """Take the folder's lock for this process; returns the descriptor to keep open (not inherited by children)."""
    path = Path(state_dir) / LOCK_FILE
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(descriptor)
        raise StackLocked(state_dir, recorded_pid(state_dir)) from None
    os.ftruncate(descriptor, 0)
    os.write(descriptor, f"{os.getpid()}\n".encode())
    return descriptor


def recorded_pid(state_dir: Path) -> int | None:
    """The PID of the last process that took the lock (it may have exited since)."""
    try:
        return int((Path(state_dir) / LOCK_FILE).read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
