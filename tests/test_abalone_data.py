"""The demo's default data: the UCI archive when online, a labelled synthetic sample when offline."""

from __future__ import annotations

import hashlib
import io

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
