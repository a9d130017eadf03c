"""The local GitLab's stand-in for a job's ID token (`id_tokens:` in the CI file).

gitlab-ci-local leaves `id_tokens` empty, so without this a local job keeps the ambient credentials (the stack's
tooling account). When production lives in its own account, the local GitLab gives a pressed production job
what GitLab would: `GITLAB_OIDC_TOKEN`, a JWT with GitLab's claims for that job (`iss`, the job's own `aud`,
`sub` = project_path:ref_type:ref as the seed configures it), and no AWS keys in the job's environment. The
CI file's own login snippet then hands it to boto3's web identity provider, which calls
sts:AssumeRoleWithWebIdentity on moto for PROD_DEPLOY_ROLE_ARN: the job acts in the prod account.

What it is not: GitLab signs its tokens (RS256, keys at <issuer>/oauth/discovery/keys); this one is unsigned
(`alg: none`), because moto's STS checks neither the signature nor the role's trust conditions. The trust
policy (aud and sub) is decided by tests/cloudformation/test_prod_account_matrix.py instead (README deviations).
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

TOKEN_VARIABLE = "GITLAB_OIDC_TOKEN"  # noqa: S105 - a variable name, not a secret: the name the CI files' .aws-oidc snippet reads
# The audience only the production jobs ask for (project.yml's and prod-account.yml's ProductionOidcAudience):
# the jobs whose role is in the prod account. The other jobs keep the ambient (tooling account) credentials.
PRODUCTION_AUDIENCE = "sts.amazonaws.com/production"
LIFETIME_SECONDS = 300  # GitLab's default ID token lifetime is the job's timeout; short is enough here


def audience(ci_file: Path, job: str, variable: str = TOKEN_VARIABLE) -> str | None:
    """The `aud` the job's `id_tokens.<variable>` asks for (its own, else from what it `extends`), or None."""
    config = yaml.safe_load(Path(ci_file).read_text(encoding="utf-8")) or {}
    seen: set[str] = set()
    pending = [job]
    while pending:
        name = pending.pop(0)
        if name in seen or not isinstance(config.get(name), dict):
            continue
        seen.add(name)
        token = ((config[name].get("id_tokens") or {}).get(variable)) or {}
        if token.get("aud"):
            return str(token["aud"])
        extends = config[name].get("extends") or []
        pending += [extends] if isinstance(extends, str) else list(extends)
    return None


def issue(claims: Mapping[str, Any]) -> str:
    """An unsigned JWT (header.payload.) with these claims and GitLab's time claims."""
    now = int(time.time())
    payload = {"iat": now, "nbf": now, "exp": now + LIFETIME_SECONDS, **claims}
    return ".".join(_segment(part) for part in ({"alg": "none", "typ": "JWT"}, payload)) + "."


def job_claims(issuer: str, aud: str, project_path: str, ref: str, job_id: int, pipeline_id: int) -> dict[str, Any]:
    """GitLab's claims for a branch pipeline's job; `sub` as the project template's seed sets it."""
    return {
        "iss": issuer,
        "aud": aud,
        "sub": f"project_path:{project_path}:ref_type:branch:ref:{ref}",
        "project_path": project_path,
        "ref": ref,
        "ref_type": "branch",
        "ref_protected": "true",
        "pipeline_id": str(pipeline_id),
        "job_id": str(job_id),
    }


def claims_of(token: str) -> dict[str, Any]:
    """The payload of a token `issue` made (tests, and whoever wants to see what a job got)."""
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def _segment(document: Mapping[str, Any]) -> str:
    raw = json.dumps(document, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")
