"""The endpoint template: cfn-lint clean, stage configs that fit it, and the prod safety net moto skips.

moto does not create alarms or autoscaling resources and ignores DeploymentConfig, so their wiring is
checked here on the template itself (parsed by cfn-lint's decoder, intrinsic functions kept).
"""

from __future__ import annotations

import json
import subprocess

import pytest
from cfnlint.decode import decode

from .conftest import REPO_DIR, tool

TEMPLATE = REPO_DIR / "endpoint-config-template.yml"


@pytest.fixture(scope="module")
def template() -> dict:
    parsed, problems = decode(str(TEMPLATE))
    assert not problems, problems
    return parsed


def test_template_passes_cfn_lint():
    run = subprocess.run([tool("cfn-lint"), str(TEMPLATE)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr


def test_cfn_lint_catches_a_broken_template(tmp_path):
    # The lint test above would be worthless if cfn-lint passed anything: break one reference.
    broken = tmp_path / "broken.yml"
    broken.write_text(TEMPLATE.read_text().replace("!GetAtt Model.ModelName", "!GetAtt Modell.ModelName"))
    run = subprocess.run([tool("cfn-lint"), str(broken)], capture_output=True, text=True, timeout=120)
    assert run.returncode != 0 and "Modell" in run.stdout


@pytest.mark.parametrize("stage", ["staging", "prod"])
def test_every_stage_config_parameter_exists_in_the_template(template, stage):
    # CloudFormation rejects unknown parameters; moto does not, so a typo would only fail on AWS.
    config = json.loads((REPO_DIR / f"{stage}-config.json").read_text())
    unknown = set(config["Parameters"]) - set(template["Parameters"])
    assert not unknown, f"{stage}-config.json sets parameters the template does not have: {unknown}"
    assert config["Parameters"]["StageName"] == stage


def test_prod_blue_green_deployment_rolls_back_on_both_alarms(template):
    resources = template["Resources"]
    deployment = resources["Endpoint"]["Properties"]["DeploymentConfig"]["Fn::If"]
    assert deployment[0] == "IsProd" and deployment[2] == {"Ref": "AWS::NoValue"}
    prod = deployment[1]
    assert prod["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]["Type"] == {"Ref": "TrafficRoutingType"}
    alarms = [alarm["AlarmName"] for alarm in prod["AutoRollbackConfiguration"]["Alarms"]]
    assert alarms == [{"Ref": "Invocation5xxAlarm"}, {"Ref": "ModelLatencyAlarm"}]
    expected_metrics = {"Invocation5xxAlarm": "Invocation5XXErrors", "ModelLatencyAlarm": "ModelLatency"}
    for name, metric in expected_metrics.items():
        assert resources[name]["Properties"]["MetricName"] == metric
        assert resources[name]["Condition"] == "IsProd"
        dimensions = {d["Name"]: d["Value"] for d in resources[name]["Properties"]["Dimensions"]}
        # The alarms watch the endpoint by the very name the Endpoint resource gets.
        assert dimensions["EndpointName"] == resources["Endpoint"]["Properties"]["EndpointName"]
        assert dimensions["VariantName"] == "AllTraffic"


def test_prod_autoscaling_tracks_invocations_per_instance(template):
    resources = template["Resources"]
    target = resources["ScalableTarget"]
    policy = resources["ScalingPolicy"]
    assert target["Condition"] == policy["Condition"] == "IsProd"
    assert target["Properties"]["MinCapacity"] == {"Ref": "AutoScalingMinCapacity"}
    assert target["Properties"]["MaxCapacity"] == {"Ref": "AutoScalingMaxCapacity"}
    assert target["Properties"]["ResourceId"] == {"Fn::Sub": "endpoint/${Endpoint.EndpointName}/variant/AllTraffic"}
    tracking = policy["Properties"]["TargetTrackingScalingPolicyConfiguration"]
    assert tracking["PredefinedMetricSpecification"]["PredefinedMetricType"] == "SageMakerVariantInvocationsPerInstance"
    assert policy["Properties"]["ScalingTargetId"] == {"Ref": "ScalableTarget"}


def test_data_capture_and_volumes_use_the_kms_key_when_given(template):
    config = template["Resources"]["EndpointConfig"]["Properties"]
    use_key = {"Fn::If": ["HasKmsKey", {"Ref": "KmsKeyArn"}, {"Ref": "AWS::NoValue"}]}
    assert config["KmsKeyId"] == use_key
    assert config["DataCaptureConfig"]["KmsKeyId"] == use_key
    assert template["Resources"]["Endpoint"]["Properties"]["EndpointName"] == {
        "Fn::Sub": "${SageMakerProjectName}-${StageName}"
    }
    assert set(template["Outputs"]) >= {"EndpointName", "EndpointConfigName", "ModelName"}


def test_prod_monitors_the_endpoint_against_the_packages_baselines(template):
    resources, conditions = template["Resources"], template["Conditions"]
    job, schedule = resources["DataQualityJobDefinition"], resources["MonitoringSchedule"]
    assert job["Condition"] == schedule["Condition"] == "HasMonitor"
    # Monitored when the package has baselines, on prod (staging only when asked).
    assert conditions["HasMonitor"] == {"Fn::And": [{"Condition": "HasBaselines"}, {"Condition": "MonitorThisStage"}]}
    assert conditions["MonitorThisStage"]["Fn::Or"][0] == {"Condition": "IsProd"}
    properties = job["Properties"]
    assert properties["DataQualityBaselineConfig"] == {
        "StatisticsResource": {"S3Uri": {"Ref": "DataQualityBaselineStatistics"}},
        "ConstraintsResource": {"S3Uri": {"Ref": "DataQualityBaselineConstraints"}},
    }
    assert properties["DataQualityJobInput"]["EndpointInput"]["EndpointName"] == {
        "Fn::GetAtt": ["Endpoint", "EndpointName"]
    }
    assert properties["RoleArn"] == {"Ref": "ModelExecutionRoleArn"}
    config = schedule["Properties"]["MonitoringScheduleConfig"]
    assert config["MonitoringType"] == "DataQuality"
    assert config["MonitoringJobDefinitionName"] == {"Fn::GetAtt": ["DataQualityJobDefinition", "JobDefinitionName"]}


def test_the_drift_alarm_watches_the_documented_metrics_and_notifies_the_topic(template):
    alarm = template["Resources"]["DataDriftAlarm"]
    properties = alarm["Properties"]
    assert alarm["Condition"] == "HasDriftAlarm"
    assert properties["AlarmActions"] == {
        "Fn::If": ["HasAlertTopic", [{"Ref": "AlertTopicArn"}], {"Ref": "AWS::NoValue"}]
    }
    expression, *slots = properties["Metrics"]
    assert expression["Expression"] == "MAX(METRICS())" and expression["ReturnData"] is True
    assert len(slots) == 10
    for index, slot in enumerate(slots):
        condition, query, absent = slot["Fn::If"]
        assert condition == f"HasDriftFeature{index}" and absent == {"Ref": "AWS::NoValue"}
        metric = query["MetricStat"]["Metric"]
        assert metric["Namespace"] == "aws/sagemaker/Endpoints/data-metrics"
        assert metric["MetricName"]["Fn::Sub"][0] == "feature_baseline_drift_${Feature}"
        assert [d["Name"] for d in metric["Dimensions"]] == ["Endpoint", "MonitoringSchedule"]
    # The schedule dimension is the schedule's own name, so the alarm sees its metrics.
    schedule_name = template["Resources"]["MonitoringSchedule"]["Properties"]["MonitoringScheduleName"]
    assert slots[0]["Fn::If"][1]["MetricStat"]["Metric"]["Dimensions"][1]["Value"] == schedule_name
