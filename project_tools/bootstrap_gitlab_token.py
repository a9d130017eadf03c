#!/usr/bin/env python3
"""Store the GitLab token that seeds the projects in Secrets Manager (create or update), never printing it.

    scripts/bootstrap-gitlab-token --gitlab-url https://gitlab.example.com [--name NAME]

The token is read from the GITLAB_TOKEN environment variable or typed at a hidden prompt; it needs the
`api` scope and the Maintainer role (or Owner) in the group the projects go to. With --gitlab-url the
token is checked against GitLab first, so a typo fails here and not in the middle of a stack create.
The secret is encrypted with the account's Secrets Manager key unless --kms-key-id names another; the
project template's seed function may read it (secretsmanager:GetSecretValue on this name only).
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys

import boto3
import gitlab

DEFAULT_NAME = "sagemaker-gitlab-seed-token"  # the template's GitLabTokenSecretName default


def read_token() -> str:
    token = os.environ.get("GITLAB_TOKEN", "").strip()
    if not token and sys.stdin.isatty():
        token = getpass.getpass("GitLab token (api scope, hidden): ").strip()
    if not token:
        raise SystemExit("error: no token: set GITLAB_TOKEN or run in a terminal to type it")
    return token


def check_token(gitlab_url: str, token: str) -> str:
    """The username the token belongs to; exits with the reason when GitLab refuses it."""
    client = gitlab.Gitlab(gitlab_url, private_token=token, timeout=20, retry_transient_errors=True)
    try:
        client.auth()
    except gitlab.GitlabAuthenticationError:
        raise SystemExit(
            f"error: {gitlab_url} rejected the token (401): check it is valid and has the api scope"
        ) from None
    except gitlab.GitlabError as error:
        raise SystemExit(f"error: {gitlab_url} answered {error.response_code}: {error.error_message}") from None
    return client.user.username


def store(name: str, token: str, kms_key_id: str | None, secrets=None) -> tuple[str, str]:
    """Create or update the secret. Returns (ARN, "created" | "updated")."""
    secrets = secrets or boto3.client("secretsmanager")
    value = json.dumps({"token": token})
    try:
        arn = secrets.put_secret_value(SecretId=name, SecretString=value)["ARN"]
        return arn, "updated"
    except secrets.exceptions.ResourceNotFoundException:
        extra = {"KmsKeyId": kms_key_id} if kms_key_id else {}
        created = secrets.create_secret(
            Name=name,
            Description="GitLab token (api scope) that seeds SageMaker project repositories",
            SecretString=value,
            Tags=[{"Key": "purpose", "Value": "sagemaker-gitlab-seed"}],
            **extra,
        )
        return created["ARN"], "created"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--name", default=DEFAULT_NAME, help=f"secret name (default {DEFAULT_NAME})")
    parser.add_argument("--gitlab-url", help="check the token against this GitLab before storing it")
    parser.add_argument("--kms-key-id", help="customer managed KMS key for the secret (default: aws/secretsmanager)")
    args = parser.parse_args(argv)

    token = read_token()
    if args.gitlab_url:
        print(f"==> checking the token against {args.gitlab_url}")
        print(f"    it belongs to {check_token(args.gitlab_url.rstrip('/'), token)}")
    arn, action = store(args.name, token, args.kms_key_id)
    print(f"==> secret {action}: {arn}")
    print(f"    deploy the project stack with GitLabTokenSecretName={args.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
