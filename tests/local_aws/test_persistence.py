"""The local stack keeps its AWS state across a restart, as `make demo` run twice relies on."""

from __future__ import annotations

from local_aws import LocalStack


def test_state_survives_a_restart_and_a_new_folder_starts_empty(tmp_path):
    with LocalStack(state_dir=tmp_path / "kept") as stack:
        s3, sagemaker = stack.client("s3"), stack.client("sagemaker")
        s3.put_object(Bucket=stack.env["ARTIFACT_BUCKET"], Key="model/model.tar.gz", Body=b"\x00\x01binary")
        sagemaker.create_model_package_group(ModelPackageGroupName="kept-group")

    with LocalStack(state_dir=tmp_path / "kept") as stack:
        s3, sagemaker = stack.client("s3"), stack.client("sagemaker")
        body = s3.get_object(Bucket=stack.env["ARTIFACT_BUCKET"], Key="model/model.tar.gz")["Body"].read()
        assert body == b"\x00\x01binary"
        groups = sagemaker.list_model_package_groups()["ModelPackageGroupSummaryList"]
        assert "kept-group" in {g["ModelPackageGroupName"] for g in groups}

    with LocalStack(state_dir=tmp_path / "fresh") as stack:
        sagemaker = stack.client("sagemaker")
        groups = sagemaker.list_model_package_groups()["ModelPackageGroupSummaryList"]
        assert "kept-group" not in {g["ModelPackageGroupName"] for g in groups}
