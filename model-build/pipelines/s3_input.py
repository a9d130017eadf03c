"""Check an S3 input URI before a pipeline starts: a wrong one fails in a second, not minutes later.

Without this a missing bucket surfaces only when the Preprocess job downloads its input (as
"NoSuchBucket ... ListObjectsV2", after the job has started), and `s3://` alone as botocore's
"Parameter validation failed". SageMaker reads an S3Prefix input as every object whose key starts
with the URI's key, so the check is the same: HeadBucket, then HeadObject (the usual case, a file),
else ListObjectsV2 with MaxKeys=1 under that prefix. Three calls at most, no object is read.
"""

from __future__ import annotations

from botocore.exceptions import ClientError


class InputError(ValueError):
    """The input URI cannot work; the message names the problem and the fix."""


def split_uri(uri: str) -> tuple[str, str]:
    """(bucket, key) of an s3:// URI, or InputError saying what is missing."""
    if not uri.startswith("s3://"):
        raise InputError(f"{uri!r} is not an S3 URI: give s3://BUCKET/KEY")
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    if not bucket:
        raise InputError(f"{uri!r} names no bucket: give s3://BUCKET/KEY, e.g. s3://my-bucket/data/abalone.csv")
    if not key:
        raise InputError(f"{uri!r} names no object: give s3://{bucket}/KEY, the CSV or the folder holding it")
    return bucket, key


def check(s3, uri: str) -> None:
    """Raise InputError unless `uri` names an object, or a prefix with at least one object, we may read."""
    bucket, key = split_uri(uri)
    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError as error:
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if status == 404:
            raise InputError(f"{uri}: bucket {bucket} does not exist (check the name and the region)") from None
        if status == 403:
            raise InputError(
                f"{uri}: access to bucket {bucket} is denied (it belongs to another account, or the role lacks"
                " s3:ListBucket on it)"
            ) from None
        raise
    try:
        s3.head_object(Bucket=bucket, Key=key)
        return
    except ClientError as error:
        if error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") not in (403, 404):
            raise
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1)
    if not listed.get("KeyCount"):
        raise InputError(
            f"{uri}: no object s3://{bucket}/{key} and nothing under that prefix: upload the data first"
            f" (aws s3 cp abalone.csv {uri}) or give the URI of an object that exists"
        )
