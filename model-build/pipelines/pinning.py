"""Pin a registered model package to its artifacts: SHA-256 of model.tar.gz and evaluation.json in its metadata.

The deploy refuses to serve a package whose artifacts no longer match these digests, so replacing
an object behind an approved package (a new S3 version under the same key) cannot change what serves.
Run by `run_pipeline run` right after the execution registered the package, before anyone can
approve it; `scripts/approve-model pin` does the same for a package registered before pinning existed.
"""

from __future__ import annotations

import hashlib
from urllib.parse import urlparse

METADATA_MODEL_DIGEST = "ModelDataSha256"
METADATA_EVALUATION_DIGEST = "EvaluationSha256"
CHUNK = 1024 * 1024


def sha256_of(s3, uri: str) -> str:
    """The object's SHA-256, streamed (a model may be large); a missing object raises botocore's ClientError."""
    parsed = urlparse(uri)
    body = s3.get_object(Bucket=parsed.netloc, Key=parsed.path.lstrip("/"))["Body"]
    digest = hashlib.sha256()
    for chunk in iter(lambda: body.read(CHUNK), b""):
        digest.update(chunk)
    return digest.hexdigest()


def artifact_uris(description: dict) -> dict[str, str]:
    """Metadata key -> the S3 URI it pins, for what this package points at."""
    containers = description.get("InferenceSpecification", {}).get("Containers") or [{}]
    statistics = description.get("ModelMetrics", {}).get("ModelQuality", {}).get("Statistics", {})
    uris = {
        METADATA_MODEL_DIGEST: containers[0].get("ModelDataUrl", ""),
        METADATA_EVALUATION_DIGEST: statistics.get("S3Uri", ""),
    }
    return {key: uri for key, uri in uris.items() if uri}


def pin(sagemaker, s3, package_arn: str) -> dict[str, str]:
    """Record the digests in the package's CustomerMetadataProperties; returns them.

    Only the metadata is sent: SageMaker keeps the other fields (and the build role may not change a status).
    """
    description = sagemaker.describe_model_package(ModelPackageName=package_arn)
    digests = {key: sha256_of(s3, uri) for key, uri in artifact_uris(description).items()}
    metadata = {**(description.get("CustomerMetadataProperties") or {}), **digests}
    sagemaker.update_model_package(ModelPackageArn=package_arn, CustomerMetadataProperties=metadata)
    return digests
