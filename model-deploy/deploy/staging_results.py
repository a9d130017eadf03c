"""The staging test results in the artifact bucket: written by staging-test, read by summary.

The job's artifacts live where the job ran (a GitLab runner, gitlab-ci-local's copy of the repo); the
bucket is reachable from anywhere with the project's credentials. One object per package version,
encrypted with the project's KMS key (KMS_KEY_ARN), else the AWS managed key.
"""

from __future__ import annotations

import json

from botocore.exceptions import ClientError

from deploy.environment import Environment
from deploy.naming import staging_results_key


def uri(environment: Environment, package_version: int) -> str:
    return f"s3://{environment.artifact_bucket}/{staging_results_key(environment.project_name, package_version)}"


def publish(s3, environment: Environment, package_version: int, results: dict) -> str:
    encryption = {"ServerSideEncryption": "aws:kms"}
    if environment.kms_key_arn:
        encryption["SSEKMSKeyId"] = environment.kms_key_arn
    s3.put_object(
        Bucket=environment.artifact_bucket,
        Key=staging_results_key(environment.project_name, package_version),
        Body=(json.dumps(results, indent=2) + "\n").encode("utf-8"),
        ContentType="application/json",
        **encryption,
    )
    return uri(environment, package_version)


def fetch(s3, environment: Environment, package_version: int) -> dict | None:
    """The results of that version's staging tests; None when it was never tested."""
    try:
        body = s3.get_object(
            Bucket=environment.artifact_bucket, Key=staging_results_key(environment.project_name, package_version)
        )["Body"].read()
    except ClientError as error:
        if error.response["Error"]["Code"] in ("NoSuchKey", "404"):
            return None
        raise
    return json.loads(body)


def summary_line(results: dict) -> str:
    outcomes = [test["outcome"] for test in results["tests"].values()]
    verdict = "PASSED" if results["passed"] else "FAILED"
    figures = results["figures"]
    parts = [f"Staging tests {verdict}: {outcomes.count('passed')}/{len(outcomes)} passed"]
    if "rmse" in figures:
        parts.append(f"RMSE {figures['rmse']} (limit {figures['rmse_limit']})")
    if "latency_p95_ms" in figures:
        parts.append(f"p95 {figures['latency_p95_ms']} ms (budget {figures['latency_p95_budget_ms']} ms)")
    return "; ".join(parts)
