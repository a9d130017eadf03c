"""Pinned artifacts: a package serves only the exact model.tar.gz and evaluation.json it was registered with."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

pytestmark = pytest.mark.filterwarnings("ignore:Tried to parse AWS:UserWarning")


def model_data_url(project, arn: str) -> str:
    package = project.sagemaker.describe_model_package(ModelPackageName=arn)
    return package["InferenceSpecification"]["Containers"][0]["ModelDataUrl"]


def test_a_model_replaced_after_approval_is_refused(project, monkeypatch, capsys):
    arn = project.register()
    monkeypatch.setenv("MODEL_PACKAGE_ARN", arn)
    assert project.run("build") == 0
    url = model_data_url(project, arn)
    project.put(url, project.abalone.constant_model_tar)  # a new S3 version under the same key
    capsys.readouterr()

    assert project.run("deploy-stage", "staging") == 1

    err = capsys.readouterr().err
    assert f"{url} changed since it was registered" in err
    assert "Restore the registered S3 object version" in err
    with pytest.raises(ClientError, match="does not exist"):
        project.stack("staging")


def test_an_unpinned_package_is_refused_with_the_way_to_pin_it(project, monkeypatch, capsys):
    arn = project.register(pin=False)
    monkeypatch.setenv("MODEL_PACKAGE_ARN", arn)
    assert project.run("build") == 0

    assert project.run("deploy-stage", "staging") == 1

    err = capsys.readouterr().err
    assert "has no ModelDataSha256, EvaluationSha256 metadata" in err
    assert f"scripts/approve-model pin --arn {arn}" in err
