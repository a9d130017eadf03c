"""deploy-stage against moto's CloudFormation: create, update, no-op, recovery from ROLLBACK_COMPLETE, failures.

Every success is checked on what SageMaker really holds (endpoint -> config -> model -> package),
never on moto's statuses alone; names are read from the stack Outputs, as moto ignores name properties.
"""

from __future__ import annotations

import json

import pytest
from moto.cloudformation.models import cloudformation_backends
from moto.cloudformation.parsing import OutputMap

from .conftest import ACCOUNT, REGION

# moto skips the prod-only alarms and autoscaling resources (test_template.py checks them instead).
pytestmark = pytest.mark.filterwarnings("ignore:Tried to parse AWS:UserWarning")


def roll_back_like_cloudformation(stack_name: str) -> str:
    """moto leaves a refused create half-made in CREATE_IN_PROGRESS. CloudFormation would roll it back:
    delete what it made, keep no outputs, end in ROLLBACK_COMPLETE. Do the same in moto's backend."""
    failed = cloudformation_backends[ACCOUNT][REGION].get_stack(stack_name)
    assert failed.status == "CREATE_IN_PROGRESS"
    failed.resource_map.delete()
    failed.output_map = OutputMap(failed.resource_map, {}, failed.stack_id)
    failed.status = "ROLLBACK_COMPLETE"
    failed._add_stack_event("ROLLBACK_COMPLETE")
    return failed.stack_id


def build(project, monkeypatch, arn: str) -> None:
    monkeypatch.setenv("MODEL_PACKAGE_ARN", arn)
    assert project.run("build") == 0


def test_deploy_creates_the_stack_and_the_endpoint_serves_the_approved_package(project, monkeypatch, capsys):
    arn = project.register()
    build(project, monkeypatch, arn)
    capsys.readouterr()

    assert project.run("deploy-stage", "staging") == 0

    assert project.stack("staging")["StackStatus"] == "CREATE_COMPLETE"
    assert project.served_packages("staging") == [arn]
    outputs = project.outputs("staging")
    config = project.sagemaker.describe_endpoint_config(EndpointConfigName=outputs["EndpointConfigName"])
    variant = config["ProductionVariants"][0]
    assert (variant["VariantName"], variant["InstanceType"], variant["InitialInstanceCount"]) == (
        "AllTraffic",
        "ml.m5.large",
        1,
    )
    capture = config["DataCaptureConfig"]
    assert capture["DestinationS3Uri"] == f"s3://{project.bucket}/datacapture/{project.name}-staging"
    assert capture["InitialSamplingPercentage"] == 100
    recorded = json.loads((project.build_dir / "staging-outputs.json").read_text())
    assert recorded["EndpointName"] == outputs["EndpointName"]
    assert recorded["Action"] == "created"
    out = capsys.readouterr().out
    assert "CREATE_COMPLETE" in out  # the stack events were printed as progress
    assert f"package   {arn}" in out


def test_deploy_updates_the_endpoint_to_a_new_version(project, monkeypatch):
    first = project.register()
    build(project, monkeypatch, first)
    assert project.run("deploy-stage", "prod") == 0
    endpoint_before = project.outputs("prod")["EndpointName"]
    config_before = project.outputs("prod")["EndpointConfigName"]

    second = project.register()
    build(project, monkeypatch, second)
    cloudformation_role = f"arn:aws:iam::{ACCOUNT}:role/{project.name}-cloudformation"
    monkeypatch.setenv("CLOUDFORMATION_ROLE_ARN", cloudformation_role)
    assert project.run("deploy-stage", "prod") == 0

    assert project.stack("prod")["StackStatus"] == "UPDATE_COMPLETE"
    assert project.stack("prod")["RoleARN"] == cloudformation_role
    assert project.outputs("prod")["EndpointName"] == endpoint_before  # same endpoint, updated in place
    assert project.outputs("prod")["EndpointConfigName"] != config_before
    assert project.served_packages("prod") == [second]
    config_name = project.outputs("prod")["EndpointConfigName"]
    config = project.sagemaker.describe_endpoint_config(EndpointConfigName=config_name)
    assert config["ProductionVariants"][0]["InitialInstanceCount"] == 2  # prod-config.json
    assert json.loads((project.build_dir / "prod-outputs.json").read_text())["Action"] == "updated"


def test_redeploying_the_same_version_succeeds_without_an_update(project, monkeypatch, capsys):
    arn = project.register()
    build(project, monkeypatch, arn)
    assert project.run("deploy-stage", "staging") == 0
    events_before = project.stack_events("staging")
    capsys.readouterr()

    assert project.run("deploy-stage", "staging") == 0

    assert "unchanged" in capsys.readouterr().out
    assert project.stack_events("staging") == events_before  # no update was started
    assert project.stack("staging")["StackStatus"] == "CREATE_COMPLETE"
    assert project.served_packages("staging") == [arn]


def test_a_refused_create_fails_and_a_stack_left_in_rollback_complete_is_recreated(project, monkeypatch, capsys):
    arn = project.register()
    build(project, monkeypatch, arn)
    # A first create that fails: SageMaker rejects the instance type.
    release_path = project.build_dir / "release.json"
    good_release = release_path.read_text()
    release_path.write_text(good_release.replace('"ml.m5.large"', '"ml.bogus.large"'))
    capsys.readouterr()

    assert project.run("deploy-stage", "staging") == 1
    assert "ml.bogus.large" in capsys.readouterr().err
    old_stack_id = roll_back_like_cloudformation(f"sagemaker-{project.name}-deploy-staging")

    release_path.write_text(good_release)
    assert project.run("deploy-stage", "staging") == 0

    recreated = project.stack("staging")
    assert recreated["StackId"] != old_stack_id
    assert recreated["StackStatus"] == "CREATE_COMPLETE"
    assert project.served_packages("staging") == [arn]
    out = capsys.readouterr().out
    assert "ROLLBACK_COMPLETE" in out and "deleting it" in out
    assert json.loads((project.build_dir / "staging-outputs.json").read_text())["Action"] == "recreated"


def test_deploy_without_build_inputs_says_what_to_run(project, capsys):
    assert project.run("deploy-stage", "staging") == 1
    assert "run `python -m deploy build` first" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('{"package_arn": "arn:aws:sagemaker:', "is not valid JSON (Unterminated string"),
        ("", "is not valid JSON (Expecting value"),
        ("[1, 2]", "is not a release written by this version of build (TypeError"),
        ('{"package_arn": "x"}', "is not a release written by this version of build (KeyError"),
    ],
    ids=["truncated", "empty", "not-an-object", "missing-fields"],
)
def test_a_damaged_release_file_is_named_with_the_fix(project, capsys, content, expected):
    project.build_dir.mkdir(parents=True)
    (project.build_dir / "release.json").write_text(content)

    assert project.run("deploy-stage", "staging") == 1

    error = capsys.readouterr().err
    assert f"{project.build_dir / 'release.json'} {expected}" in error
    assert "run `python -m deploy build` again" in error and "Traceback" not in error
