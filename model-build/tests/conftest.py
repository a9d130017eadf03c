"""Fixtures for the model-build tests: the abalone data set and a moto server on 127.0.0.1."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

HERE = Path(__file__).resolve()


def _find_abalone() -> Path | None:
    if os.environ.get("ABALONE_CSV"):
        return Path(os.environ["ABALONE_CSV"])
    # The monorepo sits beside ../shared; a seeded standalone repo sets ABALONE_CSV instead.
    for folder in HERE.parents:
        candidate = folder.parent / "shared" / "datasets" / "abalone.csv"
        if candidate.exists():
            return candidate
    return None


@pytest.fixture(scope="session")
def abalone_csv() -> Path:
    path = _find_abalone()
    if path is None or not path.exists():
        pytest.skip("the UCI abalone CSV was not found: set ABALONE_CSV to its path")
    return path


@pytest.fixture(scope="session")
def moto_url():
    """A moto server on a free loopback port, stopped at the end of the session.

    model-deploy's tests have the same fixture: each seeded repo stands alone and cannot import the other's.
    """
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws_env(monkeypatch, moto_url):
    """Point boto3 at the moto server with dummy credentials, as the local stack does."""
    for name, value in {
        "AWS_ENDPOINT_URL": moto_url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AWS_MAX_ATTEMPTS": "1",
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "CI_COMMIT_SHA", "CI_PIPELINE_URL", "INPUT_DATA_URL"):
        monkeypatch.delenv(name, raising=False)
    return moto_url
