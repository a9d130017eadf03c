"""deploy/stack.py, the one CloudFormation create/update/wait: "No updates" is success, failures named.

Its moto runs are in test_deploy_stage.py (a stage's stack) and tests/cloudformation/test_provision.py
in the monorepo (the project stack).
"""

from __future__ import annotations

from datetime import UTC, datetime

from botocore.exceptions import ClientError

from deploy import stack


def test_cloudformations_no_updates_answer_counts_as_no_change():
    no_updates = ClientError(
        {"Error": {"Code": "ValidationError", "Message": "No updates are to be performed."}}, "UpdateStack"
    )
    other = ClientError({"Error": {"Code": "ValidationError", "Message": "Template format error"}}, "UpdateStack")
    assert stack.is_no_update_error(no_updates)
    assert not stack.is_no_update_error(other)


def event(resource: str, kind: str, status: str, reason: str = "") -> dict:
    return {
        "EventId": f"{resource}-{status}",
        "LogicalResourceId": resource,
        "ResourceType": kind,
        "ResourceStatus": status,
        "ResourceStatusReason": reason,
        "Timestamp": datetime(2026, 1, 1, tzinfo=UTC),
    }


def test_failure_summary_names_the_failing_resource_and_its_reason():
    events = [
        event("stack", "AWS::CloudFormation::Stack", "UPDATE_IN_PROGRESS", "User Initiated"),
        event("Model", "AWS::SageMaker::Model", "UPDATE_COMPLETE"),
        event(
            "Endpoint",
            "AWS::SageMaker::Endpoint",
            "UPDATE_FAILED",
            "Resource handler returned message: Alarm abalone-prod-invocation-5xx in ALARM, rolling back",
        ),
        event("Scaling", "AWS::ApplicationAutoScaling::ScalableTarget", "UPDATE_FAILED", "Resource update cancelled"),
        event("stack", "AWS::CloudFormation::Stack", "UPDATE_ROLLBACK_COMPLETE"),
    ]
    summary = stack.failure_summary(events)
    assert "Endpoint (AWS::SageMaker::Endpoint) UPDATE_FAILED: Resource handler returned message: Alarm" in summary
    assert "Scaling" not in summary  # a cascade cancellation is not the cause
    # Without a failed resource, the stack's own reason is given.
    assert "stack: Parameter validation failed" in stack.failure_summary(
        [], {"StackStatusReason": "Parameter validation failed"}
    )
