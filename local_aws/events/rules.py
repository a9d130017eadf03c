"""EventBridge routing on the local stack: every emitted event, matched against the rules moto holds, and
delivered to their targets.

    router = Router(context)          # in the server process
    bus.subscribe(router.route)       # done by local_aws.events.start()

The rules live in moto's EventBridge, as on AWS: the project template's rules are put there by the stack's
bootstrap (`local_aws.cloudformation.event_routing`), and any stack or client that calls PutRule adds its own.
Matching is EventBridge's own as moto implements it (the matcher behind moto's PutEvents and our
TestEventPattern, `local_aws.events.responses`), never a matcher of ours. Targets:
- a Lambda function: its real handler runs (`local_aws.awslambda.invoke`);
- an SQS queue: SendMessage; an SNS topic: Publish (both moto's);
- a SageMaker pipeline: StartPipelineExecution with the target's `SageMakerPipelineParameters`, as the target's
  `RoleArn` assumed by events.amazonaws.com after its trust is checked (`local_aws.sagemaker.pipeline_targets`);
  the event itself is not passed to the pipeline, as on AWS.
A target's `Input`, `InputPath` or `InputTransformer` shapes what it receives, as on AWS (`transform`).
Any other target type is recorded as not delivered, naming it. Each delivery, matched or failed, is one line of
`<state>/event-deliveries.jsonl`. A target that fails is logged with the rule and event; EventBridge's retries
(RetryPolicy) are not replayed locally.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
from pathlib import Path
from typing import Any

from local_aws.awslambda.invoke import invoke
from local_aws.core import api, journal
from local_aws.events import transform
from local_aws.events.responses import matches
from local_aws.sagemaker.pipeline_targets import start_as_service

log = logging.getLogger(__name__)

DELIVERIES_FILE = "event-deliveries.jsonl"
DEFAULT_BUS = "default"


class Router:
    def __init__(self, context: api.Context):
        self.context = context
        self.deliveries = Path(context.state_dir) / DELIVERIES_FILE
        self._lock = threading.Lock()

    def route(self, event: dict[str, Any]) -> None:
        # An event goes to the default bus of the account it happened in, never to another account's rules.
        context = self.context.in_account(event.get("account") or self.context.account_id)
        events = context.client("events")
        for rule in _rules(events):
            if rule.get("State") != "ENABLED" or not rule.get("EventPattern"):
                continue
            if not matches(rule["EventPattern"], event):
                continue
            for target in events.list_targets_by_rule(Rule=rule["Name"], EventBusName=DEFAULT_BUS)["Targets"]:
                self._deliver(rule["Name"], target, event, rule.get("Arn", ""), context)

    def _deliver(
        self,
        rule: str,
        target: dict[str, Any],
        event: dict[str, Any],
        rule_arn: str = "",
        context: api.Context | None = None,
    ) -> None:
        record = {
            "event": event.get("id"),
            "detail-type": event.get("detail-type"),
            "rule": rule,
            "target": target["Arn"],
        }
        try:
            if _is_pipeline(target):
                record["result"] = start_as_service(
                    target,
                    service="events.amazonaws.com",
                    source_arn=rule_arn,
                    source_account=(context or self.context).account_id,
                    environ=(context or self.context).environment,
                    session_name=f"events-{rule}"[:64],
                ).execution_arn
            else:
                record["result"] = self._send(target, transform.render(target, event, rule_arn=rule_arn), context)
            record["status"] = "delivered"
        except Exception as error:  # noqa: BLE001 - one failing target must not stop the others
            log.exception("rule %s: target %s failed on event %s", rule, target["Arn"], event.get("id"))
            record |= {"status": "failed", "error": f"{type(error).__name__}: {error}"}
        record["time"] = dt.datetime.now(dt.UTC).isoformat()
        with self._lock:
            journal.append(self.deliveries, record)

    def _send(self, target: dict[str, Any], payload: Any, context: api.Context | None = None) -> Any:
        context = context or self.context
        arn = target["Arn"]
        service, resource = arn.split(":")[2], arn.split(":", 5)[5]
        if service == "lambda":
            return invoke(
                resource.removeprefix("function:"),
                payload,
                client=context.client,
                stack_environment=context.environment,
                task_roots=Path(context.state_dir) / "lambda",
                logs=Path(context.state_dir) / "logs" / "lambda",
            )
        if service == "sqs":
            sqs = context.client("sqs")
            url = sqs.get_queue_url(QueueName=resource)["QueueUrl"]
            return sqs.send_message(QueueUrl=url, MessageBody=json.dumps(payload, default=str))["MessageId"]
        if service == "sns":
            message = payload if isinstance(payload, str) else json.dumps(payload, default=str)
            return context.client("sns").publish(TopicArn=arn, Message=message)["MessageId"]
        raise NotImplementedError(f"the local stack does not deliver to {service} targets ({arn})")


def _is_pipeline(target: dict[str, Any]) -> bool:
    return ":sagemaker:" in target["Arn"] and ":pipeline/" in target["Arn"]


def _rules(events) -> list[dict[str, Any]]:
    rules, token = [], None
    while True:
        page = events.list_rules(EventBusName=DEFAULT_BUS, **({"NextToken": token} if token else {}))
        rules += page["Rules"]
        token = page.get("NextToken")
        if not token:
            return rules


def read_deliveries(state_dir: Path) -> list[dict[str, Any]]:
    return journal.read(Path(state_dir) / DELIVERIES_FILE).entries  # a line a crash cut short is left out
