"""The CI snippet both seeded repos repeat (OIDC login, uv install): byte-identical in both CI files, and it works.

The repos stand alone, so they cannot include a shared file: the block is copied, and this test fails
as soon as the copies drift apart. The login script is run with bash the way a job runs it.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from .conftest import CHILD_FILES as CI_FILES
from .conftest import REPO_ROOT

START = "# >>> shared CI snippet"
END = "# <<< shared CI snippet"


def shared_snippet(text: str, source: str = "the CI file") -> str:
    """The lines from the START marker through the END marker; exactly one such block."""
    lines = text.splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if line.startswith(START)]
    ends = [i for i, line in enumerate(lines) if line.startswith(END)]
    assert len(starts) == 1 and len(ends) == 1 and starts[0] < ends[0], f"{source}: one {START} ... {END} block"
    return "".join(lines[starts[0] : ends[0] + 1])


def test_the_snippet_is_byte_identical_in_both_ci_files():
    build, deploy = (shared_snippet((REPO_ROOT / name).read_text(), name) for name in CI_FILES)
    assert build == deploy, "the shared CI snippet differs: copy one block over the other"


def test_the_comparison_catches_a_one_character_drift():
    text = (REPO_ROOT / CI_FILES[0]).read_text()
    drifted = text.replace("aud: sts.amazonaws.com", "aud: sts.amazonaws.co", 1)
    assert shared_snippet(drifted) != shared_snippet(text)


@pytest.fixture(scope="module")
def login_script() -> str:
    ci = yaml.safe_load((REPO_ROOT / CI_FILES[1]).read_text())
    assert ci[".aws-oidc"]["id_tokens"]["GITLAB_OIDC_TOKEN"]["aud"] == "sts.amazonaws.com"
    return ci[".aws-oidc-login"]


def run_login(script: str, tmp_path: Path, **variables: str) -> subprocess.CompletedProcess:
    # What boto3 will see afterwards: the AWS_* variables the script exported.
    report = 'echo "ROLE=${AWS_ROLE_ARN:-}"; echo "TOKEN=$(cat "${AWS_WEB_IDENTITY_TOKEN_FILE:-/dev/null}")"'
    env = {"PATH": "/usr/bin:/bin", "TMPDIR": str(tmp_path), "CI_PROJECT_ID": "7", "CI_JOB_ID": "42", **variables}
    return subprocess.run(
        ["bash", "-ec", f"{script}\n{report}"], env=env, capture_output=True, text=True, timeout=30, check=False
    )


def test_with_a_token_the_job_assumes_its_role_by_web_identity(login_script, tmp_path):
    run = run_login(login_script, tmp_path, GITLAB_OIDC_TOKEN="header.payload.sig", JOB_ROLE_ARN="arn:role/deploy")
    assert run.returncode == 0, run.stderr
    assert "ROLE=arn:role/deploy" in run.stdout and "TOKEN=header.payload.sig" in run.stdout


def test_a_token_without_a_role_fails_naming_the_variable(login_script, tmp_path):
    run = run_login(login_script, tmp_path, GITLAB_OIDC_TOKEN="header.payload.sig", JOB_ROLE_ARN="")
    assert run.returncode == 1
    assert "no role to assume: JOB_ROLE_ARN is empty" in run.stderr


def test_without_a_token_the_ambient_credentials_stay(login_script, tmp_path):
    # gitlab-ci-local's ID tokens are empty: the local stack's credentials must keep working.
    run = run_login(login_script, tmp_path, GITLAB_OIDC_TOKEN="", JOB_ROLE_ARN="arn:role/deploy")
    assert run.returncode == 0, run.stderr
    assert "using the ambient credentials" in run.stdout and "ROLE=\n" in run.stdout


def test_a_role_set_by_a_trigger_request_is_refused(login_script, tmp_path):
    # GitLab writes a trigger-token request to the TRIGGER_PAYLOAD file, its variables included.
    payload = tmp_path / "payload.json"
    payload.write_text('{"ref": "main", "variables": {"MODEL_PACKAGE_ARN": "arn:p", "JOB_ROLE_ARN": "arn:role/prod"}}')
    run = run_login(
        login_script, tmp_path, GITLAB_OIDC_TOKEN="h.p.s", JOB_ROLE_ARN="arn:role/prod", TRIGGER_PAYLOAD=str(payload)
    )
    assert run.returncode == 1 and "sets a *ROLE_ARN variable" in run.stderr
    assert "ROLE=" not in run.stdout


def test_the_approval_triggers_own_variables_pass(login_script, tmp_path):
    # What cloudformation/lambdas/model_trigger/handler.py sends.
    names = ["MODEL_PACKAGE_ARN", "MODEL_PACKAGE_GROUP", "MODEL_PACKAGE_GROUP_NAME", "MODEL_APPROVAL_STATUS"]
    variables = {name: "x" for name in [*names, "EVENTBRIDGE_EVENT_ID"]}
    payload = tmp_path / "payload.json"
    payload.write_text(json.dumps({"ref": "main", "variables": variables}))
    run = run_login(
        login_script, tmp_path, GITLAB_OIDC_TOKEN="h.p.s", JOB_ROLE_ARN="arn:role/x", TRIGGER_PAYLOAD=str(payload)
    )
    assert run.returncode == 0, run.stderr
    assert "ROLE=arn:role/x" in run.stdout
