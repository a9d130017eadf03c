"""Copy between S3 (moto) and a job's sandbox folder, as SageMaker does for job inputs and outputs."""

from __future__ import annotations

from pathlib import Path


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
            s3.download_file(bucket, key, str(target))
            count += 1
    return count


def upload_folder(s3, folder: Path, uri: str) -> int:
    bucket, prefix = split_uri(uri.rstrip("/"))
    count = 0
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        s3.upload_file(str(path), bucket, f"{prefix}/{path.relative_to(folder).as_posix()}")
        count += 1
    return count


def exists(s3, uri: str) -> bool:
    """True when at least one object lives at or under `uri`."""
    bucket, prefix = split_uri(uri)
    return bool(s3.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1).get("KeyCount"))


def read(s3, uri: str) -> bytes:
    bucket, key = split_uri(uri)
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()
