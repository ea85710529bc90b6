"""Read back what the alert topic sent, from moto's record of it (tests)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SentAlert:
    message_id: str
    subject: str
    text: str  # what email receives
    document: dict[str, Any]  # what SQS, Lambda and HTTPS subscribers receive
    attributes: dict[str, str]
    published_bytes: int  # what SNS counts against its limit: message and attributes


def _alert(message_id: str, message: str, subject: str | None, attributes: Any) -> SentAlert:
    forms = json.loads(message)
    return SentAlert(
        message_id=message_id,
        subject=subject or "",
        text=forms["email"],
        document=json.loads(forms["sqs"]),
        attributes={k: v["Value"] for k, v in (attributes or {}).items()},
        published_bytes=len(message.encode())
        + sum(len(k.encode()) + len(v["Value"].encode()) for k, v in (attributes or {}).items()),
    )


def sent_alerts(topic_arn: str) -> list[SentAlert]:
    """Every message published to the topic, oldest first (moto in-process)."""
    from moto.sns.models import sns_backends  # noqa: PLC0415

    _, _, _, region, account, _ = topic_arn.split(":")
    topic = sns_backends[account][region].topics[topic_arn]
    return [_alert(m, msg, s, a) for m, msg, s, a, _ in topic.sent_notifications]
