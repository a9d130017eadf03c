"""The local stack keeps its AWS state across a restart, as `make demo` run twice relies on."""

from __future__ import annotations

import shutil
from pathlib import Path

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


# --- durability: every test below reproduces a defect of the first recorder -----------------------------
REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = (REPO_ROOT / "model-deploy" / "endpoint-config-template.yml").read_text()
ROLE = "arn:aws:iam::123456789012:role/local-stack-tests"
IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"


def register(sagemaker, version_label: str) -> str:
    return sagemaker.create_model_package(
        ModelPackageGroupName="abalone",
        ModelPackageDescription=version_label,
        InferenceSpecification={
            "Containers": [{"Image": IMAGE, "ModelDataUrl": f"s3://sagemaker-local-artifacts/{version_label}.tar.gz"}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["text/csv"],
        },
        ModelApprovalStatus="Approved",
    )["ModelPackageArn"]


def deploy(cloudformation, stage: str, package_arn: str, stack_id: str | None = None) -> str:
    """What `python -m deploy deploy STAGE` sends: create the stage's stack, or update it by its ARN."""
    parameters = {
        "SageMakerProjectName": "abalone",
        "SageMakerProjectId": "p-local",
        "StageName": stage,
        "ModelPackageArn": package_arn,
        "ModelExecutionRoleArn": ROLE,
        "ArtifactBucket": "sagemaker-local-artifacts",
    }
    arguments = {
        "TemplateBody": TEMPLATE,
        "Parameters": [{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        "Tags": [{"Key": "stage", "Value": stage}],
    }
    if stack_id is None:
        return cloudformation.create_stack(StackName=f"sagemaker-abalone-{stage}", **arguments)["StackId"]
    cloudformation.update_stack(StackName=stack_id, **arguments)
    return stack_id


def served(stack, stack_id: str) -> tuple[dict, str]:
    """(the stack's outputs, the package its endpoint really serves: endpoint -> config -> model -> package)."""
    cloudformation, sagemaker = stack.client("cloudformation"), stack.client("sagemaker")
    outputs = {
        o["OutputKey"]: o["OutputValue"]
        for o in cloudformation.describe_stacks(StackName=stack_id)["Stacks"][0]["Outputs"]
    }
    endpoint = sagemaker.describe_endpoint(EndpointName=outputs["EndpointName"])
    config = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    model = sagemaker.describe_model(ModelName=config["ProductionVariants"][0]["ModelName"])
    return outputs, model["PrimaryContainer"]["ModelPackageName"]


def test_after_a_restart_staging_and_prod_serve_their_last_versions(tmp_path):
    with LocalStack(state_dir=tmp_path, local_gitlab=False) as stack:
        cloudformation, sagemaker = stack.client("cloudformation"), stack.client("sagemaker")
        versions = [register(sagemaker, f"v{n}") for n in (1, 2, 3)]
        staging = deploy(cloudformation, "staging", versions[0])
        prod = deploy(cloudformation, "prod", versions[0])
        for version in versions[1:]:  # each stage updated twice, by its stack ARN, as the deploy CLI does
            deploy(cloudformation, "staging", version, staging)
        deploy(cloudformation, "prod", versions[1], prod)
        deploy(cloudformation, "prod", versions[0], prod)  # and a rollback: back to the first version
        before = {stage: served(stack, stack_id) for stage, stack_id in (("staging", staging), ("prod", prod))}
        assert before["staging"][1] == versions[2] and before["prod"][1] == versions[0]

    with LocalStack(state_dir=tmp_path, local_gitlab=False) as stack:
        after = {stage: served(stack, stack_id) for stage, stack_id in (("staging", staging), ("prod", prod))}
        assert after == before  # the same versions, and the same stack ids and generated resource names
        deploy(stack.client("cloudformation"), "prod", versions[2], prod)  # the stack ARN still works
        assert served(stack, prod)[1] == versions[2]
        before = {stage: served(stack, stack_id) for stage, stack_id in (("staging", staging), ("prod", prod))}

    with LocalStack(state_dir=tmp_path, local_gitlab=False) as stack:
        assert {stage: served(stack, stack_id) for stage, stack_id in (("staging", staging), ("prod", prod))} == before


def replayed_after_restart(state_dir: Path) -> int:
    with LocalStack(state_dir=state_dir, local_gitlab=False) as stack:
        return stack.info["restored_requests"]


def test_the_replay_grows_with_the_state_not_with_the_number_of_deploys(tmp_path):
    """Start time is bounded: the journal is compacted, so 3 deploys replay as one, and 3 uploads of one
    object as one. What is left is the state itself: here, one model package per deploy."""
    states = {1: tmp_path / "rounds-1", 3: tmp_path / "rounds-3"}
    served_before = {}
    for round_number in (1, 2, 3):  # one `up`, build, deploy, `down` per round, as a demo does
        with LocalStack(state_dir=states[3], local_gitlab=False) as stack:
            cloudformation, sagemaker, s3 = (stack.client(name) for name in ("cloudformation", "sagemaker", "s3"))
            package = register(sagemaker, f"v{len(list_packages(sagemaker)) + 1}")
            stacks = cloudformation.describe_stacks()["Stacks"]
            deploy(cloudformation, "staging", package, stacks[0]["StackId"] if stacks else None)
            s3.put_object(Bucket=stack.env["ARTIFACT_BUCKET"], Key="data/abalone.csv", Body=package.encode())
            served_before[3] = served(stack, "sagemaker-abalone-staging")
        if round_number == 1:  # the state after one round: the same folder, copied while no server holds it
            shutil.copytree(states[3], states[1])
            served_before[1] = served_before[3]
    counts = {}
    for rounds, state in states.items():
        with LocalStack(state_dir=state, local_gitlab=False) as stack:
            counts[rounds] = stack.info["restored_requests"]  # the first restart after the rounds
            assert served(stack, "sagemaker-abalone-staging") == served_before[rounds]
            body = stack.client("s3").get_object(Bucket=stack.env["ARTIFACT_BUCKET"], Key="data/abalone.csv")["Body"]
            assert body.read() == served_before[rounds][1].encode()
            assert len(list_packages(stack.client("sagemaker"))) == rounds
    # 2 more packages and the stack's one update the other is compacted into; not 2 more deploys,
    # uploads and `up` bootstraps.
    assert counts[3] == counts[1] + 2 + 1
    assert replayed_after_restart(states[3]) == counts[3]  # and it stays compacted


def list_packages(sagemaker) -> list[dict]:
    return sagemaker.list_model_packages(ModelPackageGroupName="abalone")["ModelPackageSummaryList"]


def test_a_truncated_recording_starts_and_says_what_it_dropped(tmp_path):
    with LocalStack(state_dir=tmp_path, local_gitlab=False) as stack:
        stack.client("sagemaker").create_model_package_group(ModelPackageGroupName="kept-group")
    recording = tmp_path / "moto-recording.jsonl"
    with recording.open("ab") as stream:  # a crash in the middle of a write
        stream.write(b'{"headers": {"Authorization": "AWS4-HMAC-SHA256 Credential=testing/2026')

    said = []
    with LocalStack(state_dir=tmp_path, local_gitlab=False, progress=said.append) as stack:
        groups = stack.client("sagemaker").list_model_package_groups()["ModelPackageGroupSummaryList"]
        assert "kept-group" in {g["ModelPackageGroupName"] for g in groups}
    assert "dropped 1 truncated line of moto-recording.jsonl" in said
    assert recording.read_bytes().endswith(b"\n")  # mended: the next append starts a line of its own

    said.clear()
    with LocalStack(state_dir=tmp_path, local_gitlab=False, progress=said.append):
        pass
    assert not [message for message in said if "dropped" in message]
