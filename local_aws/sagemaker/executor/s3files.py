"""Copy between S3 (moto) and a job's sandbox folder, as SageMaker does for job inputs and outputs."""

from __future__ import annotations

import shutil
from pathlib import Path

# One GetObject/PutObject a file, not boto3's managed transfer: that adds a HeadObject and a thread pool per file
# (~7 ms against ~3 ms here, on every input and output of every step). Larger files keep the multipart upload.
SINGLE_PUT_LIMIT = 64 * 1024 * 1024


def split_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://"):
        raise ValueError(f"{uri!r} is not an s3:// URI")
    bucket, _, key = uri[len("s3://") :].partition("/")
    return bucket, key


def download_prefix(s3, uri: str, folder: Path) -> int:
    """Every object under the S3 prefix `uri`, laid out relative to it (an exact key lands by name)."""
    bucket, prefix = split_uri(uri)
    count = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            key = item["Key"]
            relative = Path(key).name if key == prefix else key[len(prefix) :].lstrip("/")
            if not relative or key.endswith("/"):
                continue
            target = folder / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            with target.open("wb") as file:
                shutil.copyfileobj(s3.get_object(Bucket=bucket, Key=key)["Body"], file)
            count += 1
    return count


def upload_folder(s3, folder: Path, uri: str) -> int:
    bucket, prefix = split_uri(uri.rstrip("/"))
    count = 0
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        key = f"{prefix}/{path.relative_to(folder).as_posix()}"
        if path.stat().st_size > SINGLE_PUT_LIMIT:
            s3.upload_file(str(path), bucket, key)
        else:
            with path.open("rb") as file:
                s3.put_object(Bucket=bucket, Key=key, Body=file)
        count += 1
    return count


def exists(s3, uri: str) -> bool:
    """True when at least one object lives at or under `uri`."""
    bucket, prefix = split_uri(uri)
    return bool(s3.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1).get("KeyCount"))


def read(s3, uri: str) -> bytes:
    bucket, key = split_uri(uri)
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()
