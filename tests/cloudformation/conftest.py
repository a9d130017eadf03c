"""Fixtures for the project template's Lambdas: moto in-process for AWS, `responses` for GitLab.

Both Lambdas import as `lambdas.<function>`, as in their zip, whose root is cloudformation/ (installed
into .venv by `make venv`); the helper modules of this folder import as its package's modules.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import responses

from .cfn_testkit import CFN_RESPONSE_URL, PERSONAL_TOKEN, REGION
from .fake_gitlab import FakeGitLab

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


@pytest.fixture
def aws(monkeypatch):
    """moto in-process, with dummy credentials and no endpoint override from the environment."""
    from moto import mock_aws

    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SECRETS_MANAGER", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_REGION", REGION)
    with mock_aws():
        yield


@pytest.fixture
def http():
    """Every `requests` call goes to registered fakes; an unregistered URL fails the test."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def gitlab_fake(aws, http) -> FakeGitLab:
    return FakeGitLab(http, token=PERSONAL_TOKEN)


@pytest.fixture
def no_backoff(monkeypatch) -> list[float]:
    """python-gitlab's retry sleeps, recorded instead of waited."""
    import gitlab.utils

    sleeps: list[float] = []
    monkeypatch.setattr(gitlab.utils.time, "sleep", sleeps.append)
    return sleeps


@pytest.fixture
def all_logs(caplog, capfd):
    """Everything the code logged or printed, at every level, with each record's extra fields
    (Powertools logs JSON to the stdout it saw at import time: read at the file-descriptor level)."""
    caplog.set_level(logging.DEBUG)
    # botocore's DEBUG output prints every response body, Secrets Manager's included; AWS documents
    # it as unsafe outside debugging and Lambda never enables it. Everything else is read at DEBUG.
    caplog.set_level(logging.INFO, logger="botocore")
    printed: list[str] = []

    def read() -> str:
        captured = capfd.readouterr()  # consumes: keep what was read for the next call
        printed.extend((captured.out, captured.err))
        records = [f"{record.getMessage()} {record.__dict__}" for record in caplog.records]
        return "\n".join(records) + "".join(printed)

    return read


@pytest.fixture
def cfn_responses(http) -> list[dict]:
    """The bodies PUT to the custom resource's pre-signed ResponseURL."""
    sent: list[dict] = []

    def capture(request):
        sent.append(json.loads(request.body))
        return 200, {}, ""

    http.add_callback("PUT", CFN_RESPONSE_URL, callback=capture)
    return sent
