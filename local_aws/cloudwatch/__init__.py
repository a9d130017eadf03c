"""CloudWatch on the local stack: moto stores alarms and metrics; `alarms` evaluates the alarms and runs their
SNS actions; `stack_alarms` makes a stack's AWS::CloudWatch::Alarm resources real alarms (moto skips the type).
Importing it registers `LocalAws.EvaluateAlarms`, the evaluate-now hook; `start` begins the periodic evaluation
(every LOCAL_STACK_ALARM_SECONDS, default 10)."""

from __future__ import annotations

import datetime as dt
import os

from local_aws.cloudwatch import stack_alarms  # noqa: F401 - defines AWS::CloudWatch::Alarm for moto's CloudFormation
from local_aws.cloudwatch.alarms import AlarmEvaluator
from local_aws.core import api

EVALUATE_OPERATION = "LocalAws.EvaluateAlarms"  # X-Amz-Target; body {"Time": epoch seconds} (optional)
_evaluator: AlarmEvaluator | None = None


def evaluate_now(request: dict, context: api.Context) -> dict:
    """Evaluate every alarm at once (at `Time`, epoch seconds, when given: the injected clock for tests)."""
    evaluator = _evaluator or AlarmEvaluator(context.client, context.region, context.account_id)
    moment = dt.datetime.fromtimestamp(float(request["Time"]), dt.UTC) if request.get("Time") else None
    return {"StateChanges": evaluator.evaluate(moment)}


def start(context: api.Context) -> dict:
    global _evaluator
    interval = float(os.environ.get("LOCAL_STACK_ALARM_SECONDS", "10"))
    _evaluator = AlarmEvaluator(context.client, context.region, context.account_id, interval=interval)
    _evaluator.start()
    return {}


def stop() -> None:
    if _evaluator is not None:
        _evaluator.stop()


api.register(EVALUATE_OPERATION, evaluate_now)
