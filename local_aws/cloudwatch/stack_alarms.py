"""AWS::CloudWatch::Alarm in moto's CloudFormation, which skips the type ("No Moto CloudFormation support").

Without this, a stack from the endpoint template on the local stack has no alarms at all: its 5xx, latency and
drift alarms never exist, so a monitoring execution's drift metric could never trip the deployed drift alarm.
Defining the resource type as a moto CloudFormation model (before moto first builds its model map) makes a
stack's alarms real moto alarms, made with moto's own PutMetricAlarm code from the properties CloudFormation
resolved (Fn::If, Fn::Sub, conditions: moto's own parser): the evaluator (`alarms.py`) then evaluates them.
A stack update puts the alarm again (PutMetricAlarm replaces it, as CloudFormation updates an alarm in place
unless its name changes) and a stack deletion deletes it. `Ref` gives the alarm's name, `GetAtt Arn` its ARN.
"""

from __future__ import annotations

from typing import Any

from moto.cloudwatch.models import Dimension, Metric, MetricDataQuery, MetricStat, cloudwatch_backends
from moto.core.common_models import CloudFormationModel


def _queries(metrics: list[dict] | None) -> list[MetricDataQuery] | None:
    """The Metrics property as moto's PutMetricAlarm handler builds it (moto/cloudwatch/responses.py)."""
    if not metrics:
        return None
    queries = []
    for query in metrics:
        if query is None:  # an `Fn::If` slot that resolved to AWS::NoValue: CloudFormation drops it
            continue
        stat = query.get("MetricStat")
        metric_stat = None
        if stat:
            metric = stat["Metric"]
            dimensions = [Dimension(name=d.get("Name"), value=d.get("Value")) for d in metric.get("Dimensions", [])]
            metric_stat = MetricStat(
                metric=Metric(
                    metric_name=metric["MetricName"], namespace=metric.get("Namespace"), dimensions=dimensions
                ),
                period=stat.get("Period"),
                stat=stat.get("Stat"),
                unit=stat.get("Unit"),
            )
        queries.append(
            MetricDataQuery(
                query_id=query.get("Id"),
                label=query.get("Label"),
                period=query.get("Period"),
                return_data=query.get("ReturnData"),
                expression=query.get("Expression"),
                metric_stat=metric_stat,
            )
        )
    return queries


def _bool(value: Any, default: bool = True) -> bool:
    return default if value is None else str(value).lower() == "true"


class StackAlarm(CloudFormationModel):
    def __init__(self, name: str, arn: str):
        self.name = name
        self.arn = arn

    @property
    def physical_resource_id(self) -> str:
        return self.name

    @staticmethod
    def cloudformation_name_type() -> str:
        return "AlarmName"

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::CloudWatch::Alarm"

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr == "Arn"

    def get_cfn_attribute(self, attribute_name: str) -> str:
        if attribute_name == "Arn":
            return self.arn
        raise NotImplementedError(attribute_name)

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str, **kwargs: Any
    ) -> StackAlarm:
        properties = cloudformation_json.get("Properties", {})
        name = properties.get("AlarmName") or resource_name
        alarm = cloudwatch_backends[account_id][region_name].put_metric_alarm(
            name=name,
            namespace=properties.get("Namespace"),
            metric_name=properties.get("MetricName"),
            metric_data_queries=_queries(properties.get("Metrics")),
            comparison_operator=properties.get("ComparisonOperator"),
            evaluation_periods=int(properties["EvaluationPeriods"]),
            datapoints_to_alarm=int(properties["DatapointsToAlarm"]) if properties.get("DatapointsToAlarm") else None,
            period=int(properties["Period"]) if properties.get("Period") else None,
            threshold=float(properties["Threshold"]) if properties.get("Threshold") is not None else None,
            statistic=properties.get("Statistic"),
            extended_statistic=properties.get("ExtendedStatistic"),
            description=properties.get("AlarmDescription"),
            dimensions=[{"Name": d["Name"], "Value": d["Value"]} for d in properties.get("Dimensions", [])],
            alarm_actions=properties.get("AlarmActions") or [],
            ok_actions=properties.get("OKActions") or [],
            insufficient_data_actions=properties.get("InsufficientDataActions") or [],
            unit=properties.get("Unit"),
            actions_enabled=_bool(properties.get("ActionsEnabled")),
            treat_missing_data=properties.get("TreatMissingData"),
            evaluate_low_sample_count_percentile=properties.get("EvaluateLowSampleCountPercentile"),
            threshold_metric_id=properties.get("ThresholdMetricId"),
        )
        return cls(name, alarm.alarm_arn)

    @classmethod
    def update_from_cloudformation_json(  # type: ignore[misc]
        cls,
        original_resource: StackAlarm,
        new_resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
    ) -> StackAlarm:
        new_name = cloudformation_json.get("Properties", {}).get("AlarmName") or new_resource_name
        if new_name != original_resource.name:  # a new name replaces the alarm
            cloudwatch_backends[account_id][region_name].delete_alarms([original_resource.name])
        return cls.create_from_cloudformation_json(new_name, cloudformation_json, account_id, region_name)

    @classmethod
    def delete_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str
    ) -> None:
        name = cloudformation_json.get("Properties", {}).get("AlarmName") or resource_name
        cloudwatch_backends[account_id][region_name].delete_alarms([name])

    def delete(self, account_id: str, region_name: str) -> None:
        cloudwatch_backends[account_id][region_name].delete_alarms([self.name])
