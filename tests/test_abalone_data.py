"""The demo's default data: the UCI archive when online, a labelled synthetic sample when offline."""

from __future__ import annotations

import hashlib
import io
import re

import boto3
import pytest

from local_demo import abalone_data


@pytest.fixture
def no_shared_copy(monkeypatch, tmp_path):
    monkeypatch.setattr(abalone_data, "SHARED_COPY", tmp_path / "missing.csv")


def test_default_downloads_the_uci_archive_and_checks_it(no_shared_copy, monkeypatch):
    archive = b"M,0.455,0.365,0.095,0.514,0.2245,0.101,0.15,15\n"
    monkeypatch.setattr(abalone_data, "UCI_SHA256", hashlib.sha256(archive).hexdigest())
    monkeypatch.setattr(abalone_data.urllib.request, "urlopen", lambda url, timeout: io.BytesIO(archive))
    data = abalone_data.resolve(None)
    assert data.body == archive and not data.synthetic
    assert "SHA-256 verified" in data.description


def test_default_offline_is_a_synthetic_sample_that_says_why(no_shared_copy, monkeypatch):
    def offline(url, timeout):
        raise OSError("Name or service not known")

    monkeypatch.setattr(abalone_data.urllib.request, "urlopen", offline)
    data = abalone_data.resolve(None)
    assert data.synthetic and data.description.startswith("SYNTHETIC")
    assert "Name or service not known" in data.description
    assert data.body.decode().splitlines()[0] == abalone_data.HEADER


def test_a_download_with_the_wrong_checksum_is_refused(monkeypatch):
    monkeypatch.setattr(abalone_data.urllib.request, "urlopen", lambda url, timeout: io.BytesIO(b"not the data"))
    with pytest.raises(abalone_data.DataError, match="SHA-256"):
        abalone_data.resolve("uci")


@pytest.mark.parametrize("content", [b"", b"\n\n", b"   "])
def test_an_empty_data_file_is_named_with_the_fix(tmp_path, content):
    empty = tmp_path / "abalone.csv"
    empty.write_bytes(content)
    with pytest.raises(abalone_data.DataError, match=r"DATA=.*abalone.csv is empty: give the abalone CSV \(sex,"):
        abalone_data.resolve(str(empty))


@pytest.mark.parametrize(
    ("uri", "expected"),
    [("s3://", "names no bucket"), ("s3:///x.csv", "names no bucket"), ("s3://b", "names no object")],
)
def test_an_s3_uri_without_bucket_or_key_is_refused_before_anything_runs(uri, expected):
    with pytest.raises(abalone_data.DataError, match=f"DATA={uri}: .*{expected}"):
        abalone_data.resolve(uri)


@pytest.fixture
def s3(monkeypatch):
    from moto import mock_aws

    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="data")
        client.put_object(Bucket="data", Key="abalone/abalone.csv", Body=b"M,0.4,0.3,0.1,0.5,0.2,0.1,0.1,9\n")
        yield client


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("s3://no-such-bucket/a.csv", "DATA=s3://no-such-bucket/a.csv: bucket no-such-bucket does not exist"),
        ("s3://data/abalone/missing.csv", "no object s3://data/abalone/missing.csv and nothing under that prefix"),
    ],
)
def test_an_s3_input_that_does_not_exist_is_named_before_the_pipeline_starts(s3, uri, expected):
    with pytest.raises(abalone_data.DataError, match=re.escape(expected)):
        abalone_data.upload(abalone_data.resolve(uri), s3, "artifacts")


@pytest.mark.parametrize("uri", ["s3://data/abalone/abalone.csv", "s3://data/abalone/"])
def test_an_s3_object_or_folder_that_exists_is_used_as_is(s3, uri):
    assert abalone_data.upload(abalone_data.resolve(uri), s3, "artifacts") == uri


def test_the_latest_data_lands_where_the_build_reads_by_default():
    # model-build's InputDataUrl default, read from its source (importing pipeline.py would cost the SDK import).
    source = (abalone_data.REPO_ROOT / "model-build" / "pipelines" / "abalone" / "pipeline.py").read_text()
    assert f'default_value=f"s3://{{default_bucket}}/{abalone_data.CONFIGURED_INPUT_KEY}"' in source
