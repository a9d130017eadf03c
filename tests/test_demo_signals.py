"""A demo ended by SIGTERM stops the local stack it started: no server is left for the next demo to find."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from local_aws.core.lifecycle import group_members, read_state

REPO_ROOT = Path(__file__).resolve().parents[1]
ABALONE_CSV = REPO_ROOT.parent / "shared" / "datasets" / "abalone.csv"
GCL = REPO_ROOT / "node_modules" / ".bin" / "gitlab-ci-local"


@pytest.mark.skipif(not GCL.exists(), reason="gitlab-ci-local is not installed: `make gitlab-ci-local`")
def test_sigterm_while_the_build_runs_stops_the_demos_stack(tmp_path):
    state = tmp_path / "demo"
    command = [
        sys.executable,
        str(REPO_ROOT / "scripts" / "demo"),
        "--state-dir",
        str(state),
        "--data",
        str(ABALONE_CSV),
    ]
    demo = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen = []
    try:
        for line in demo.stdout:  # until the build pipeline runs: the stack is up and busy
            seen.append(line)
            if re.search(r"\[3/\d+\] git push", line):
                break
        info = read_state(state)
        assert info is not None, "".join(seen)
        demo.send_signal(signal.SIGTERM)
        output, _ = demo.communicate(timeout=60)
    finally:
        if demo.poll() is None:
            demo.kill()
    assert demo.returncode == 128 + signal.SIGTERM
    assert "Local stack stopped." in output
    assert group_members(info["pid"]) == [], "the stack's server or its step processes outlived the demo"
    assert read_state(state) is None
