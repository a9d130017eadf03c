"""AWS::Scheduler::Schedule for moto's CloudFormation, which skips the type (moto 5.2.5 warns "No Moto
CloudFormation support for AWS::Scheduler::Schedule" and creates nothing; its AWS::Events::Rule, targets with
RoleArn and SageMakerPipelineParameters included, is real already).

Registered as a moto CloudFormation model (a `CloudFormationModel` subclass, the way moto's own services add
theirs), so create, update and delete of any stack go through moto's own template parsing: parameters,
conditions and intrinsic functions (`!GetAtt SchedulerRole.Arn`) are resolved by moto against the stack's real
resources, and the schedule lands in moto's EventBridge Scheduler backend, where GetSchedule and ListSchedules
show it. `Ref` is the schedule's name (`<stack>-<LogicalId>-<suffix>` when `Name` is not given), `!GetAtt .Arn`
its ARN, as CloudFormation documents. Imported by the server before the journal is replayed, so replayed
stacks get their schedules again.
"""

from __future__ import annotations

import contextlib
import sys
from typing import Any

from moto.core.common_models import CloudFormationModel

TYPE = "AWS::Scheduler::Schedule"


def _backend(account_id: str, region_name: str):
    from moto.scheduler.models import scheduler_backends

    return scheduler_backends[account_id][region_name]


def _arguments(name: str, properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "group_name": properties.get("GroupName") or "default",
        "description": properties.get("Description"),
        "schedule_expression": properties["ScheduleExpression"],
        "schedule_expression_timezone": properties.get("ScheduleExpressionTimezone"),
        "flexible_time_window": properties.get("FlexibleTimeWindow") or {"Mode": "OFF"},
        "target": dict(properties["Target"]),
        "state": properties.get("State") or "ENABLED",
        "kms_key_arn": properties.get("KmsKeyArn"),
        "start_date": properties.get("StartDate"),
        "end_date": properties.get("EndDate"),
    }


class CloudFormationSchedule(CloudFormationModel):
    def __init__(self, schedule: Any):
        self.schedule = schedule

    @staticmethod
    def cloudformation_type() -> str:
        return TYPE

    @staticmethod
    def cloudformation_name_type() -> str:
        return "Name"

    @property
    def physical_resource_id(self) -> str:
        return self.schedule.name

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr == "Arn"

    def get_cfn_attribute(self, attribute_name: str) -> str:
        from moto.cloudformation.exceptions import UnformattedGetAttTemplateException

        if attribute_name == "Arn":
            return self.schedule.arn
        raise UnformattedGetAttTemplateException()

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kwargs: Any
    ) -> CloudFormationSchedule:
        properties = cloudformation_json.get("Properties") or {}
        arguments = _arguments(properties.get("Name") or resource_name, properties)
        return cls(
            _backend(account_id, region_name).create_schedule(
                **arguments, action_after_completion=properties.get("ActionAfterCompletion")
            )
        )

    @classmethod
    def update_from_cloudformation_json(  # type: ignore[misc]
        cls,
        original_resource: CloudFormationSchedule,
        new_resource_name: str,
        cloudformation_json: Any,
        account_id: str,
        region_name: str,
    ) -> CloudFormationSchedule:
        properties = cloudformation_json.get("Properties") or {}
        name = properties.get("Name") or original_resource.schedule.name
        backend = _backend(account_id, region_name)
        group = properties.get("GroupName") or "default"
        if name != original_resource.schedule.name or group != original_resource.schedule.group_name:
            backend.delete_schedule(original_resource.schedule.group_name, original_resource.schedule.name)
            return cls.create_from_cloudformation_json(name, cloudformation_json, account_id, region_name)
        return cls(backend.update_schedule(**_arguments(name, properties)))

    @classmethod
    def delete_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str
    ) -> None:
        properties = cloudformation_json.get("Properties") or {}
        from moto.scheduler.exceptions import ScheduleNotFound

        with contextlib.suppress(ScheduleNotFound):
            _backend(account_id, region_name).delete_schedule(properties.get("GroupName") or "default", resource_name)

    def delete(self, account_id: str, region_name: str) -> None:
        _backend(account_id, region_name).delete_schedule(self.schedule.group_name, self.schedule.name)


# moto builds (and caches) its map of CloudFormation types from CloudFormationModel's subclasses on first use;
# importing moto.cloudformation.parsing here would cost seconds at every start, so only clear a map built already.
if "moto.cloudformation.parsing" in sys.modules:
    sys.modules["moto.cloudformation.parsing"].get_model_list.cache_clear()
    sys.modules["moto.cloudformation.parsing"].get_model_map.cache_clear()
