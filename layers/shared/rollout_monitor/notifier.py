"""SNS adapters: the alert topic (text for people, JSON for machines) and the chat topic
(AWS Chatbot's custom notifications), each with the routing attributes."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from rollout_monitor.channels import EmailFormat, chatbot, document
from rollout_monitor.formatting import Alert
from rollout_monitor.ports import MAX_SUBJECT_LENGTH

if TYPE_CHECKING:
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sns.type_defs import MessageAttributeValueTypeDef

__all__ = ["MAX_MESSAGE_BYTES", "MAX_SUBJECT_LENGTH", "AlertTopic", "ChatTopic"]

MAX_MESSAGE_BYTES = 256 * 1024  # SNS: the whole message, every protocol's form included
JSON_PROTOCOLS = ("sqs", "lambda", "http", "https", "firehose", "application")


class _Topic:
    def __init__(self, topic_arn: str, client: SNSClient, email: EmailFormat) -> None:
        self._topic_arn = topic_arn
        self._client = client
        self._email = email

    def accepts(self, alert: Alert) -> bool:
        return True


class AlertTopic(_Topic):
    """The alert topic: email gets the text, SQS/Lambda/HTTPS subscribers the JSON."""

    name = ""  # its once-only claims are the alert keys themselves

    def send(self, alert: Alert) -> str:
        """Publish; return the message id."""
        subject = self._email.subject(alert)
        text = self._email.text(alert)
        # UTF-8 as is: escaped, a non-ASCII character costs up to 14 bytes in each of 8 copies
        machine = json.dumps(document(alert, subject), separators=(",", ":"), ensure_ascii=False)
        message = {"default": text, "email": text} | dict.fromkeys(JSON_PROTOCOLS, machine)
        body = json.dumps(message, ensure_ascii=False)
        return _publish(self._client, self._topic_arn, subject, body, alert, "json")


class ChatTopic(_Topic):
    """The chat topic, subscribed by AWS Chatbot: its custom-notification format only."""

    name = "chatbot"

    def send(self, alert: Alert) -> str:
        subject = self._email.subject(alert)
        message = json.dumps(chatbot(alert, subject), separators=(",", ":"), ensure_ascii=False)
        return _publish(self._client, self._topic_arn, subject, message, alert, "")


class AlertTooLargeError(ValueError):
    """An alert that SNS would refuse for its size (every field is bounded: a bug)."""


def attributes(alert: Alert) -> dict[str, MessageAttributeValueTypeDef]:
    """What a subscription filters on: severity, endpoint, status, team and labels (each
    ``key=value``, so ``{"labels": ["env=prod"]}`` matches)."""
    routed: dict[str, MessageAttributeValueTypeDef] = {
        name: {"DataType": "String", "StringValue": value}
        for name, value in alert.routing.items()
        if value  # SNS refuses an empty attribute value
    }
    if alert.labels:
        pairs = [f"{key}={value}" for key, value in sorted(alert.labels.items())]
        routed["labels"] = {"DataType": "String.Array", "StringValue": json.dumps(pairs)}
    return routed


def _publish(
    client: SNSClient, topic_arn: str, subject: str, message: str, alert: Alert, structure: str
) -> str:
    if len(message.encode()) > MAX_MESSAGE_BYTES:
        raise AlertTooLargeError(f"alert of {len(message.encode())} bytes exceeds SNS's limit")
    options: dict[str, Any] = {"MessageStructure": structure} if structure else {}
    answer = client.publish(
        TopicArn=topic_arn,
        Subject=subject,
        Message=message,
        MessageAttributes=attributes(alert),
        **options,
    )
    return answer["MessageId"]
