"""SNS adapter: publish one alert, text for people and JSON for machines, with attributes."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from rollout_monitor.ports import MAX_SUBJECT_LENGTH, Notification

if TYPE_CHECKING:
    from mypy_boto3_sns import SNSClient

__all__ = ["MAX_MESSAGE_BYTES", "MAX_SUBJECT_LENGTH", "Notification", "SnsNotifier"]

MAX_MESSAGE_BYTES = 256 * 1024  # SNS: the whole message, every protocol's form included
JSON_PROTOCOLS = ("sqs", "lambda", "http", "https", "firehose", "application")


class SnsNotifier:
    def __init__(self, topic_arn: str, client: SNSClient) -> None:
        self._topic_arn = topic_arn
        self._client = client

    def send(self, notification: Notification) -> str:
        """Publish; email gets the text, SQS/Lambda/HTTPS subscribers the JSON. Returns the id."""
        machine = json.dumps(notification.document, separators=(",", ":"))
        message = {"default": notification.text, "email": notification.text}
        message |= dict.fromkeys(JSON_PROTOCOLS, machine)
        body = json.dumps(message)
        if len(body.encode()) > MAX_MESSAGE_BYTES:
            raise ValueError(f"alert of {len(body.encode())} bytes exceeds SNS's limit")
        answer = self._client.publish(
            TopicArn=self._topic_arn,
            Subject=notification.subject,
            Message=body,
            MessageStructure="json",
            MessageAttributes={
                name: {"DataType": "String", "StringValue": value}
                for name, value in notification.attributes.items()
                if value  # SNS refuses an empty attribute value
            },
        )
        return answer["MessageId"]
