"""build: exactly the named approved version, refusals with clear errors, latest-approved fallback."""

from __future__ import annotations

import json

import pytest


def read_release(project) -> dict:
    return json.loads((project.build_dir / "release.json").read_text())


def read_params(project, stage: str) -> dict:
    return read_release(project)["stages"][stage]["parameters"]


def test_build_resolves_the_named_version_not_the_latest(project, monkeypatch, capsys):
    named = project.register()
    project.register()  # approved later: must not replace the version the trigger named
    monkeypatch.setenv("MODEL_PACKAGE_ARN", named)

    assert project.run("build") == 0

    for stage in ("staging", "prod"):
        params = read_params(project, stage)
        assert params["ModelPackageArn"] == named
        assert params["StageName"] == stage
        assert params["SageMakerProjectName"] == project.name
        assert params["ArtifactBucket"] == project.bucket
        assert params["ModelExecutionRoleArn"] == project.environment["MODEL_EXECUTION_ROLE_ARN"]
        assert params["KmsKeyArn"] == ""
    # Stage settings come from the stage's config file.
    assert read_params(project, "staging")["EndpointInstanceCount"] == "1"
    assert read_params(project, "prod")["AutoScalingMaxCapacity"] == "4"
    released = read_release(project)
    assert released["stages"]["prod"]["tags"]["Environment"] == "production"
    assert (released["package_arn"], released["package_version"]) == (named, 1)
    assert (released["package_group"], released["approval_status"]) == (project.group, "Approved")
    assert sorted(path.name for path in project.build_dir.iterdir()) == ["release.json"]  # the one artifact
    assert "named by MODEL_PACKAGE_ARN" in capsys.readouterr().out


def test_build_passes_the_kms_key_through(project, monkeypatch):
    monkeypatch.setenv("MODEL_PACKAGE_ARN", project.register())
    key = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    monkeypatch.setenv("KMS_KEY_ARN", key)
    assert project.run("build") == 0
    assert read_params(project, "prod")["KmsKeyArn"] == key


@pytest.mark.parametrize("status", ["PendingManualApproval", "Rejected"])
def test_build_refuses_a_version_that_is_not_approved(project, monkeypatch, capsys, status):
    monkeypatch.setenv("MODEL_PACKAGE_ARN", project.register(approval=status))

    assert project.run("build") == 1

    error = capsys.readouterr().err
    assert f"is {status}, not Approved" in error
    assert not (project.build_dir / "release.json").exists()


def test_build_refuses_a_version_from_another_group(project, monkeypatch, capsys):
    project.sagemaker.create_model_package_group(ModelPackageGroupName=f"{project.name}-other")
    foreign = project.register(group=f"{project.name}-other")
    monkeypatch.setenv("MODEL_PACKAGE_ARN", foreign)

    assert project.run("build") == 1

    error = capsys.readouterr().err
    assert f"belongs to group '{project.name}-other', not to this project's group '{project.name}'" in error


def test_build_refuses_an_unknown_version(project, monkeypatch, capsys):
    monkeypatch.setenv("MODEL_PACKAGE_ARN", f"arn:aws:sagemaker:us-east-1:123456789012:model-package/{project.name}/9")
    assert project.run("build") == 1
    assert "was not found" in capsys.readouterr().err


def test_build_without_an_arn_takes_the_latest_approved_version(project, capsys):
    project.register()
    latest_approved = project.register()
    project.register(approval="PendingManualApproval")
    project.register(approval="Rejected")

    assert project.run("build") == 0

    assert read_params(project, "staging")["ModelPackageArn"] == latest_approved
    assert read_release(project)["package_version"] == 2
    assert "latest Approved version" in capsys.readouterr().out


def test_build_without_any_approved_version_fails_clearly(project, capsys):
    project.register(approval="PendingManualApproval")
    assert project.run("build") == 1
    assert f"group '{project.name}' has no Approved version" in capsys.readouterr().err


def test_missing_variables_are_named(project, monkeypatch, capsys):
    monkeypatch.delenv("ARTIFACT_BUCKET")
    monkeypatch.delenv("MODEL_EXECUTION_ROLE_ARN")

    assert project.run("build") == 1

    error = capsys.readouterr().err
    assert "ARTIFACT_BUCKET" in error and "MODEL_EXECUTION_ROLE_ARN" in error
    assert "SAGEMAKER_PROJECT_NAME" not in error


# -- one deployment per approval event ----------------------------------------------------------------
EVENT_ID = "6f1c2f6e-2b1d-4c55-9d1e-0a4b8c3f7e21"


def as_pipeline(monkeypatch, pipeline_id: int, commit: str = "c0ffee0123456789") -> None:
    """The variables GitLab sets in a job of pipeline `pipeline_id`."""
    monkeypatch.setenv("CI_PIPELINE_ID", str(pipeline_id))
    monkeypatch.setenv("CI_PIPELINE_URL", f"https://gitlab.example.com/ml/deploy/-/pipelines/{pipeline_id}")
    monkeypatch.setenv("CI_COMMIT_SHA", commit)


def test_a_second_pipeline_for_the_same_event_stops_at_once_naming_the_first(project, monkeypatch, capsys):
    arn = project.register()
    monkeypatch.setenv("MODEL_PACKAGE_ARN", arn)
    monkeypatch.setenv("EVENTBRIDGE_EVENT_ID", EVENT_ID)
    as_pipeline(monkeypatch, 41)
    assert project.run("build") == 0
    assert f"recorded approval event {EVENT_ID}" in capsys.readouterr().out
    (project.build_dir / "release.json").unlink()

    as_pipeline(monkeypatch, 42, commit="beef")
    assert project.run("build") == 1

    error = capsys.readouterr().err
    assert f"event {EVENT_ID} was already taken by https://gitlab.example.com/ml/deploy/-/pipelines/41" in error
    assert "commit c0ffee012345" in error and "stops here, nothing was deployed" in error
    assert not (project.build_dir / "release.json").exists()  # nothing for a later job to deploy
    marker = json.loads(
        project.s3.get_object(Bucket=project.bucket, Key=f"deploy-events/{project.name}/{EVENT_ID}.json")["Body"].read()
    )
    assert (marker["pipeline_id"], marker["model_package_arn"], marker["commit"]) == ("41", arn, "c0ffee0123456789")


def test_a_retried_build_job_of_the_first_pipeline_goes_on(project, monkeypatch, capsys):
    monkeypatch.setenv("MODEL_PACKAGE_ARN", project.register())
    monkeypatch.setenv("EVENTBRIDGE_EVENT_ID", EVENT_ID)
    as_pipeline(monkeypatch, 7)
    assert project.run("build") == 0
    assert project.run("build") == 0  # "Retry" on the job: same pipeline
    assert "is this pipeline's already" in capsys.readouterr().out


def test_runs_without_an_event_id_are_never_stopped_and_record_nothing(project, monkeypatch, capsys):
    project.register()
    as_pipeline(monkeypatch, 1)
    assert project.run("build") == 0
    as_pipeline(monkeypatch, 2)
    assert project.run("build") == 0
    assert "nothing to record" in capsys.readouterr().out
    listed = project.s3.list_objects_v2(Bucket=project.bucket, Prefix="deploy-events/")
    assert listed["KeyCount"] == 0


def test_a_malformed_event_id_is_refused_before_anything_is_written(project, monkeypatch, capsys):
    monkeypatch.setenv("MODEL_PACKAGE_ARN", project.register())
    monkeypatch.setenv("EVENTBRIDGE_EVENT_ID", "../other-project/x")
    assert project.run("build") == 1
    assert "is not an EventBridge event id" in capsys.readouterr().err
    assert project.s3.list_objects_v2(Bucket=project.bucket, Prefix="deploy-events/")["KeyCount"] == 0


def test_build_pins_the_packages_data_quality_baselines_for_the_monitor(project, monkeypatch, capsys):
    arn = project.register(baselines=True)
    monkeypatch.setenv("MODEL_PACKAGE_ARN", arn)
    monkeypatch.setenv("ALERT_TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:abalone-alerts")

    assert project.run("build") == 0

    prod = read_params(project, "prod")
    assert prod["DataQualityBaselineConstraints"].endswith("/DataQualityCheck/constraints.json")
    assert prod["DataQualityBaselineStatistics"].endswith("/DataQualityCheck/statistics.json")
    assert len(prod["MonitoringBaselineId"]) == 16
    assert prod["DriftAlarmFeatures"] == "length,diameter,sex_F"
    assert prod["AlertTopicArn"] == "arn:aws:sns:us-east-1:123456789012:abalone-alerts"
    assert "monitor baseline" in capsys.readouterr().out

    # A baseline replaced after build is refused before any stack change, as a replaced model is.
    project.put(prod["DataQualityBaselineConstraints"], b'{"features": []}')
    assert project.run("deploy-stage", "prod") == 1
    assert "changed since build pinned them" in capsys.readouterr().err


def test_a_package_without_baselines_is_deployed_without_a_monitor_with_a_warning(project, monkeypatch, capsys):
    monkeypatch.setenv("MODEL_PACKAGE_ARN", project.register())

    assert project.run("build") == 0

    assert "DataQualityBaselineConstraints" not in read_params(project, "prod")
    assert "deployed without a data-quality monitor" in capsys.readouterr().out
