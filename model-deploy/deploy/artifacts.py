"""The package's artifacts must be the ones it was registered with: SHA-256 digests in its metadata.

The model-build's `run_pipeline run` records them right after registration (pipelines/pinning.py);
the deploy checks them before a stack changes, so an object replaced behind an approved package
(a new S3 version under the same key) never serves. The bucket policy keeps the build role from
writing there at all; this check is what holds even if that policy is loosened.
"""

from __future__ import annotations

import hashlib

from botocore.exceptions import ClientError

from deploy.errors import DeployError
from deploy.registry import ModelPackage, split_s3_uri

METADATA_MODEL_DIGEST = "ModelDataSha256"
METADATA_EVALUATION_DIGEST = "EvaluationSha256"
CHUNK = 1024 * 1024


def sha256_of(s3, uri: str) -> str:
    bucket, key = split_s3_uri(uri)
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    except ClientError as error:
        raise DeployError(f"cannot read {uri}: {error.response['Error']['Message']}") from None
    digest = hashlib.sha256()
    for chunk in iter(lambda: body.read(CHUNK), b""):
        digest.update(chunk)
    return digest.hexdigest()


def pinned(package: ModelPackage) -> dict[str, str]:
    """Metadata key -> the URI it pins."""
    return {METADATA_MODEL_DIGEST: package.model_data_url, METADATA_EVALUATION_DIGEST: package.metrics_uri}


def require_unchanged(s3, package: ModelPackage) -> None:
    """Refuse a package without digests, or one whose artifact changed since registration."""
    missing = [key for key, uri in pinned(package).items() if uri and not package.metadata.get(key)]
    if missing:
        raise DeployError(
            f"model package {package.label} ({package.arn}) has no {', '.join(missing)} metadata: it was registered "
            "before artifacts were pinned, so nothing proves its artifacts are the ones that were approved. Check "
            f"them, then pin them: scripts/approve-model pin --arn {package.arn}"
        )
    for key, uri in pinned(package).items():
        if not uri:
            continue
        actual = sha256_of(s3, uri)
        if actual != package.metadata[key]:
            raise DeployError(
                f"refusing to deploy model package {package.label}: {uri} changed since it was registered "
                f"(SHA-256 {actual}, registered {package.metadata[key]}). Nothing was changed. Restore the "
                "registered S3 object version (the bucket is versioned) or register and approve a new version."
            )
