"""A stack update honours each resource's Condition (local_aws/cloudformation/conditions.py), as CloudFormation does:
moto 5.2.5 updated a resource its condition had kept out of the stack (a 500 from the stack alarms' model)."""

from __future__ import annotations

import json

import boto3
from moto import mock_aws

import local_aws.cloudformation  # noqa: F401 - the fix
import local_aws.cloudwatch  # noqa: F401 - AWS::CloudWatch::Alarm for moto's CloudFormation

TEMPLATE = json.dumps(
    {
        "Parameters": {"Monitor": {"Type": "String"}, "Threshold": {"Type": "String"}},
        "Conditions": {"Monitored": {"Fn::Equals": [{"Ref": "Monitor"}, "true"]}},
        "Resources": {
            "Topic": {"Type": "AWS::SNS::Topic"},
            "DriftAlarm": {
                "Type": "AWS::CloudWatch::Alarm",
                "Condition": "Monitored",
                "Properties": {
                    "AlarmName": "drift",
                    "Namespace": "aws/sagemaker/Endpoints/data-metrics",
                    "MetricName": "feature_baseline_drift_length",
                    "Statistic": "Maximum",
                    "Period": 3600,
                    "EvaluationPeriods": 1,
                    "Threshold": {"Ref": "Threshold"},
                    "ComparisonOperator": "GreaterThanThreshold",
                },
            },
        },
    }
)


def update(cloudformation, monitor: str, threshold: str) -> None:
    parameters = [
        {"ParameterKey": "Monitor", "ParameterValue": monitor},
        {"ParameterKey": "Threshold", "ParameterValue": threshold},
    ]
    cloudformation.update_stack(StackName="stage", TemplateBody=TEMPLATE, Parameters=parameters)


@mock_aws
def test_an_update_leaves_out_creates_and_deletes_a_conditioned_resource_as_its_condition_says():
    cloudformation = boto3.client("cloudformation", region_name="us-east-1")
    cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")

    def alarms() -> list[str]:
        return [alarm["AlarmName"] for alarm in cloudwatch.describe_alarms()["MetricAlarms"]]

    parameters = [
        {"ParameterKey": "Monitor", "ParameterValue": "false"},
        {"ParameterKey": "Threshold", "ParameterValue": "0.1"},
    ]
    cloudformation.create_stack(StackName="stage", TemplateBody=TEMPLATE, Parameters=parameters)
    assert alarms() == []
    update(cloudformation, "false", "0.2")  # a parameter the left-out alarm references changed: still left out
    assert alarms() == []
    update(cloudformation, "true", "0.3")  # its condition turned true: the update creates it
    assert alarms() == ["drift"]
    update(cloudformation, "true", "0.4")  # and updates it
    assert [alarm["Threshold"] for alarm in cloudwatch.describe_alarms()["MetricAlarms"]] == [0.4]
    update(cloudformation, "false", "0.5")  # false again: deleted
    assert alarms() == []
    assert cloudformation.describe_stacks(StackName="stage")["Stacks"][0]["StackStatus"] == "UPDATE_COMPLETE"
