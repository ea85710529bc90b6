"""SQS adapter: the poll queue, whose delayed messages start the poller's next cycles."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient


class SqsPollTrigger:
    """The :class:`~rollout_monitor.ports.PollTrigger` of the stack's poll queue.

    SendMessage is not idempotent, but a duplicate here is harmless: a start that finds its
    slot taken does nothing (:mod:`rollout_monitor.chain`). So a failed send may be retried.
    """

    def __init__(self, queue_url: str, client: SQSClient) -> None:
        self._queue_url = queue_url
        self._client = client

    def start(self, shard: int, delay_seconds: int) -> None:
        self._client.send_message(
            QueueUrl=self._queue_url,
            MessageBody=json.dumps({"shard": shard}),
            DelaySeconds=delay_seconds,
        )


def shards_in(event: dict[str, Any]) -> list[int] | None:
    """The shards a poll-queue batch asks for (each once), or None for another trigger."""
    records = event.get("Records")
    if not isinstance(records, list):
        return None
    shards: set[int] = set()
    for record in records:
        try:
            shard = json.loads(record["body"])["shard"]
        except (KeyError, TypeError, ValueError):
            continue  # not ours: nothing to do with it
        if isinstance(shard, int) and not isinstance(shard, bool):
            shards.add(shard)
    return sorted(shards)
