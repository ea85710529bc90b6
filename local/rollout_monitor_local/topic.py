"""Read back what the alert topic sent, from moto (in-process or server mode)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass(frozen=True)
class SentAlert:
    message_id: str
    subject: str
    text: str  # what email receives
    document: dict[str, Any]  # what SQS, Lambda and HTTPS subscribers receive
    attributes: dict[str, str]


def _alert(message_id: str, message: str, subject: str | None, attributes: Any) -> SentAlert:
    forms = json.loads(message)
    return SentAlert(
        message_id=message_id,
        subject=subject or "",
        text=forms["email"],
        document=json.loads(forms["sqs"]),
        attributes={
            k: v["Value"] if "Value" in v else v["StringValue"]
            for k, v in (attributes or {}).items()
        },
    )


def sent_alerts(topic_arn: str, moto_url: str | None = None) -> list[SentAlert]:
    """Every message published to the topic, oldest first."""
    if moto_url is None:
        from moto.sns.models import sns_backends  # noqa: PLC0415

        _, _, _, region, account, _ = topic_arn.split(":")
        topic = sns_backends[account][region].topics[topic_arn]
        return [_alert(m, msg, s, a) for m, msg, s, a, _ in topic.sent_notifications]
    data = httpx.get(f"{moto_url}/moto-api/data.json", timeout=5).json()
    topics = data.get("sns", {}).get("Topic", [])
    for topic in topics:
        if topic.get("arn") == topic_arn:
            return [_alert(*n[:4]) for n in topic.get("sent_notifications", [])]
    return []
