"""The alert topic's outbox: what a subscriber (a person's e-mail) would have received.

    topic_arn, queue_url = ensure(client, "sagemaker-abalone-alerts")   # at `up`: topic + subscribed queue
    for message in drain(client, queue_url): print(message.subject, message.text)

moto's SNS delivers to SQS subscriptions in server mode, so the outbox is an SQS queue subscribed to the topic:
whatever reaches the topic (an EventBridge target, an alarm action, the alert gate's Publish) lands there in
SNS's own envelope (Type, Subject, Message, TopicArn, Timestamp), as an SQS subscriber on AWS receives it. The
e-mail subscription of the template is not made locally (moto sends no mail).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

OUTBOX_SUFFIX = "-outbox"


@dataclass(frozen=True)
class Message:
    subject: str
    text: str
    topic_arn: str
    timestamp: str


def ensure(client: Callable[[str], Any], topic_name: str) -> tuple[str, str]:
    """The topic and its outbox queue, subscribed (idempotent: CreateTopic and CreateQueue return what exists)."""
    sns, sqs = client("sns"), client("sqs")
    topic_arn = sns.create_topic(Name=topic_name)["TopicArn"]
    queue_url = sqs.create_queue(QueueName=topic_name + OUTBOX_SUFFIX)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    subscribed = sns.list_subscriptions_by_topic(TopicArn=topic_arn)["Subscriptions"]
    if not any(subscription["Endpoint"] == queue_arn for subscription in subscribed):
        sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
    return topic_arn, queue_url


def queue_url(client: Callable[[str], Any], topic_name: str) -> str:
    return client("sqs").get_queue_url(QueueName=topic_name + OUTBOX_SUFFIX)["QueueUrl"]


def drain(client: Callable[[str], Any], url: str) -> list[Message]:
    """Every message in the outbox, oldest first; they are removed (each is shown once)."""
    sqs = client("sqs")
    found = []
    while True:
        batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
        if not batch:
            break
        for received in batch:
            envelope = json.loads(received["Body"])
            found.append(
                Message(
                    subject=envelope.get("Subject") or "",
                    text=envelope.get("Message", ""),
                    topic_arn=envelope.get("TopicArn", ""),
                    timestamp=envelope.get("Timestamp", ""),
                )
            )
            sqs.delete_message(QueueUrl=url, ReceiptHandle=received["ReceiptHandle"])
    return sorted(found, key=lambda message: message.timestamp)
