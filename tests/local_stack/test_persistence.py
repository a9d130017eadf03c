"""The local stack keeps its AWS state across a restart, as `make demo` run twice relies on."""

from __future__ import annotations

import boto3

from local_stack import LocalStack


def clients(env: dict[str, str]):
    def make(service: str, url_variable: str = "AWS_ENDPOINT_URL"):
        return boto3.client(
            service,
            endpoint_url=env[url_variable],
            region_name=env["AWS_DEFAULT_REGION"],
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        )

    return make("s3"), make("sagemaker", "AWS_ENDPOINT_URL_SAGEMAKER")


def test_state_survives_a_restart_and_a_new_folder_starts_empty(tmp_path):
    with LocalStack(state_dir=tmp_path / "kept") as stack:
        s3, sagemaker = clients(stack.env)
        s3.put_object(Bucket=stack.env["ARTIFACT_BUCKET"], Key="model/model.tar.gz", Body=b"\x00\x01binary")
        sagemaker.create_model_package_group(ModelPackageGroupName="kept-group")

    with LocalStack(state_dir=tmp_path / "kept") as stack:
        s3, sagemaker = clients(stack.env)
        body = s3.get_object(Bucket=stack.env["ARTIFACT_BUCKET"], Key="model/model.tar.gz")["Body"].read()
        assert body == b"\x00\x01binary"
        groups = sagemaker.list_model_package_groups()["ModelPackageGroupSummaryList"]
        assert "kept-group" in {g["ModelPackageGroupName"] for g in groups}

    with LocalStack(state_dir=tmp_path / "fresh") as stack:
        _, sagemaker = clients(stack.env)
        groups = sagemaker.list_model_package_groups()["ModelPackageGroupSummaryList"]
        assert "kept-group" not in {g["ModelPackageGroupName"] for g in groups}
