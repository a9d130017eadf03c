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
