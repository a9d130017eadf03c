"""Alert gate Lambda: one alert per failing thing per window, then SNS.

The project's failure rules (pipeline execution Failed/Stopped, pipeline step Failed) render the message with
their EventBridge input transformer and target this function with it:

    {"key": "<what failed, e.g. the pipeline ARN and outcome>", "subject": "...", "message": "...", "reason": ...}

`reason` (optional, any JSON value) is the event's free text, e.g. a step's failure reason: the template passes
it as a JSON value because EventBridge does not escape values it inserts inside a string. It is appended.

An EventBridge rule cannot remember what it sent, so a pipeline that fails every hour (a schedule, a retry
loop, a step failure followed by its execution failure) would send a message each time. This function
records `key` in DynamoDB with a conditional write that only succeeds when the key is new or its window has
passed; the first event of a window publishes to the alert topic, the others are counted in the log and
dropped. The window is ALERT_WINDOW_MINUTES long. TTL removes old keys eventually (DynamoDB deletes expired
items within days, not on time), so the condition compares `expiration` itself rather than relying on TTL.

Environment: ALERT_TOPIC_ARN, ALERT_WINDOW_TABLE, ALERT_WINDOW_MINUTES.
"""

from __future__ import annotations

import json
import logging
import os
import time

import boto3
from botocore.exceptions import ClientError

logger = logging.getLogger()
logger.setLevel(logging.INFO)

SUBJECT_LIMIT = 100  # SNS refuses longer subjects (and e-mail clients cut them anyway)
REQUIRED = ("key", "subject", "message")


def open_window(table, key: str, now: float, window_seconds: float) -> bool:
    """True when `key` had no alert in the last window (and starts one now)."""
    try:
        table.put_item(
            Item={"id": f"alert#{key}", "expiration": int(now + window_seconds), "first": int(now)},
            ConditionExpression="attribute_not_exists(id) OR expiration < :now",
            ExpressionAttributeValues={":now": int(now)},
        )
    except ClientError as error:
        if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return False
        raise
    return True


def subject(text: str) -> str:
    """SNS subjects are one line of at most 100 printable characters."""
    return " ".join(text.split())[:SUBJECT_LIMIT]


def message(event: dict) -> str:
    reason = event.get("reason")
    if reason in (None, ""):
        return event["message"]
    return f"{event['message']}\n\nReason: {reason if isinstance(reason, str) else json.dumps(reason)}"


def lambda_handler(event, _context=None):
    if not isinstance(event, dict) or any(not isinstance(event.get(name), str) for name in REQUIRED):
        # A template change that broke the shape must be seen, not silently dropped: raise, so Lambda retries
        # and the dead-letter queue (and its alarm) keep it.
        raise ValueError(f"alert gate: expected {', '.join(REQUIRED)} as strings, got {json.dumps(event)[:500]}")
    window = float(os.environ.get("ALERT_WINDOW_MINUTES", "60")) * 60
    table = boto3.resource("dynamodb").Table(os.environ["ALERT_WINDOW_TABLE"])
    if not open_window(table, event["key"], time.time(), window):
        logger.info("alert for %s suppressed: one was sent less than %.0f minutes ago", event["key"], window / 60)
        return {"published": False, "key": event["key"]}
    answer = boto3.client("sns").publish(
        TopicArn=os.environ["ALERT_TOPIC_ARN"], Subject=subject(event["subject"]), Message=message(event)
    )
    logger.info("alert for %s published: %s", event["key"], answer["MessageId"])
    return {"published": True, "key": event["key"], "message_id": answer["MessageId"]}
