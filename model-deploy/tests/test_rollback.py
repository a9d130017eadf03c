"""Rollback: the previous Approved version goes back to production, checked on the live endpoint."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

# moto skips the prod-only alarms and autoscaling resources (test_template.py checks them instead).
pytestmark = pytest.mark.filterwarnings("ignore:Tried to parse AWS:UserWarning")


def deploy_to_prod(project, monkeypatch, arn: str) -> None:
    monkeypatch.setenv("MODEL_PACKAGE_ARN", arn)
    assert project.run("build") == 0
    assert project.run("deploy-stage", "prod") == 0
    assert project.served_packages("prod") == [arn]


def reject(project, arn: str) -> None:
    project.sagemaker.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Rejected")


def test_rejecting_the_production_version_rolls_back_to_the_previous_approved_one(project, monkeypatch, capsys):
    previous = project.register()
    in_production = project.register()
    project.register()  # newer and approved, but never promoted: not a rollback target
    deploy_to_prod(project, monkeypatch, in_production)
    reject(project, in_production)
    monkeypatch.setenv("MODEL_APPROVAL_STATUS", "Rejected")
    monkeypatch.setenv("MODEL_PACKAGE_ARN", in_production)

    assert project.run("rollback", "prod") == 0

    assert project.served_packages("prod") == [previous]
    assert project.stack("prod")["StackStatus"] == "UPDATE_COMPLETE"
    assert f"to {previous} (the previous Approved version)" in capsys.readouterr().out


def test_manual_rollback_skips_versions_that_are_no_longer_approved(project, monkeypatch):
    oldest = project.register()
    rejected_since = project.register()
    in_production = project.register()
    deploy_to_prod(project, monkeypatch, in_production)
    reject(project, rejected_since)
    monkeypatch.delenv("MODEL_PACKAGE_ARN")

    assert project.run("rollback") == 0

    assert project.served_packages("prod") == [oldest]


def test_rejecting_a_version_that_is_not_in_production_changes_nothing(project, monkeypatch, capsys):
    project.register()
    in_production = project.register()
    only_in_staging = project.register()
    deploy_to_prod(project, monkeypatch, in_production)
    events_before = project.stack_events("prod")
    reject(project, only_in_staging)
    monkeypatch.setenv("MODEL_APPROVAL_STATUS", "Rejected")
    monkeypatch.setenv("MODEL_PACKAGE_ARN", only_in_staging)

    assert project.run("rollback", "prod") == 0

    assert "nothing to roll back" in capsys.readouterr().out
    assert project.served_packages("prod") == [in_production]
    assert project.stack_events("prod") == events_before


def test_rollback_without_an_older_approved_version_fails_clearly(project, monkeypatch, capsys):
    only = project.register()
    deploy_to_prod(project, monkeypatch, only)

    assert project.run("rollback") == 1

    assert f"no Approved version older than {project.name}/1" in capsys.readouterr().err
    assert project.served_packages("prod") == [only]


def test_rejection_before_anything_reached_production_changes_nothing(project, monkeypatch, capsys):
    # Approved, deployed to staging, never promoted, then rejected: the automatic rollback job must not fail.
    monkeypatch.setenv("MODEL_APPROVAL_STATUS", "Rejected")
    monkeypatch.setenv("MODEL_PACKAGE_ARN", project.register(approval="Rejected"))

    assert project.run("rollback", "prod") == 0

    assert "prod has no deployment" in capsys.readouterr().out
    with pytest.raises(ClientError, match="does not exist"):
        project.stack("prod")  # nothing was deployed


def test_rollback_without_a_production_stack_fails_clearly(project, capsys):
    project.register()
    assert project.run("rollback") == 1
    assert "no prod deployment to roll back" in capsys.readouterr().err


def test_a_version_rejected_after_staging_is_refused_at_the_prod_button(project, monkeypatch, capsys):
    arn = project.register()
    monkeypatch.setenv("MODEL_PACKAGE_ARN", arn)
    assert project.run("build") == 0
    assert project.run("deploy-stage", "staging") == 0
    project.sagemaker.update_model_package(
        ModelPackageArn=arn, ModelApprovalStatus="Rejected", ApprovalDescription="drift in the new data"
    )
    capsys.readouterr()

    # The button of the pipeline that is still waiting: its release.json says Approved, the registry does not.
    assert project.run("deploy-stage", "prod") == 1

    err = capsys.readouterr().err
    assert f"refusing to deploy model package {project.name}/1 ({arn}): it is Rejected now" in err
    assert 'reason: "drift in the new data"' in err
    with pytest.raises(ClientError, match="does not exist"):
        project.stack("prod")


def test_rejecting_the_version_staging_serves_rolls_staging_back(project, monkeypatch, capsys):
    previous = project.register()
    rejected = project.register()
    deploy_to_prod(project, monkeypatch, previous)
    assert project.run("deploy-stage", "staging") == 0  # the release of `previous`
    monkeypatch.setenv("MODEL_PACKAGE_ARN", rejected)
    assert project.run("build") == 0
    assert project.run("deploy-stage", "staging") == 0
    prod_events = project.stack_events("prod")
    reject(project, rejected)
    monkeypatch.setenv("MODEL_APPROVAL_STATUS", "Rejected")

    assert project.run("rollback", "staging") == 0
    assert project.run("rollback", "prod") == 0

    assert project.served_packages("staging") == [previous]
    assert project.served_packages("prod") == [previous]
    assert project.stack_events("prod") == prod_events  # prod never served the rejected version: untouched


def test_rejection_without_a_previous_approved_version_stops_the_stage_serving(project, monkeypatch, capsys):
    only = project.register()
    deploy_to_prod(project, monkeypatch, only)
    reject(project, only)
    monkeypatch.setenv("MODEL_APPROVAL_STATUS", "Rejected")
    capsys.readouterr()

    assert project.run("rollback", "prod") == 0

    assert "prod: not serving any model now" in capsys.readouterr().out
    with pytest.raises(ClientError, match="does not exist"):
        project.stack("prod")
    assert project.run("summary") == 0
    assert f"prod     not serving: no stack sagemaker-{project.name}-deploy-prod" in capsys.readouterr().out
