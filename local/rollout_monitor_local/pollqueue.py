"""The poll queue on a test's clock: a started cycle becomes due after its delay.

moto's SQS keeps delayed messages hidden for real seconds; the local stack and the tests move
a virtual clock instead, so they hand the poller and the deploy function this queue.
"""

from __future__ import annotations

import heapq
import itertools
import json
from collections.abc import Callable
from typing import Any

from rollout_monitor.chain import MAX_QUEUE_DELAY_SECONDS


class VirtualPollQueue:
    """A :class:`~rollout_monitor.ports.PollTrigger` whose messages wait on ``now``."""

    def __init__(self, now: Callable[[], float]) -> None:
        self._now = now
        self._due: list[tuple[float, int, int]] = []  # (due at, order, shard)
        self._order = itertools.count()
        self.sent = 0

    def start(self, shard: int, delay_seconds: int) -> None:
        if not 0 <= delay_seconds <= MAX_QUEUE_DELAY_SECONDS:
            raise ValueError(f"DelaySeconds must be 0 to {MAX_QUEUE_DELAY_SECONDS}")
        heapq.heappush(self._due, (self._now() + delay_seconds, next(self._order), shard))
        self.sent += 1

    def waiting(self) -> int:
        return len(self._due)

    def next_due(self) -> float | None:
        return self._due[0][0] if self._due else None

    def receive(self) -> list[dict[str, Any]]:
        """Every message due now, each as the poller's SQS event of one record."""
        events = []
        while self._due and self._due[0][0] <= self._now():
            _, order, shard = heapq.heappop(self._due)
            events.append(sqs_event(shard, f"m-{order}"))
        return events


def sqs_event(shard: int, message_id: str = "m-0") -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": message_id,
                "eventSource": "aws:sqs",
                "body": json.dumps({"shard": shard}),
            }
        ]
    }
