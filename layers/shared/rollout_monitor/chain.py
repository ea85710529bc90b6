"""The poll chain: one cycle per shard every interval while anything is in flight, each its
own short invocation, and never two cycles of a shard in one interval.

Time is cut into slots of ``interval_seconds``. Whatever starts a cycle (the chain's queue
message, the schedule, a deploy's kick, a redelivered message) first claims the current slot
of its shard; only the winner runs the cycle, and only the winner queues the next one, for
the start of the next slot. So however many starts arrive, they merge into one chain: one
cycle per slot. A chain ends when its shard has nothing in flight; the schedule (every
minute) and each deploy start it again. Nothing waits inside an invocation.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from rollout_monitor.poller import CycleReport
from rollout_monitor.ports import PollSlots, PollTrigger

logger = logging.getLogger(__name__)

MAX_QUEUE_DELAY_SECONDS = 900  # SQS: DelaySeconds of one message


@dataclass
class PollChain:
    slots: PollSlots
    trigger: PollTrigger
    interval_seconds: float
    now: Callable[[], float] = time.time

    async def run(
        self, shard: int, cycle: Callable[[int], Awaitable[CycleReport]]
    ) -> CycleReport | None:
        """Run this slot's cycle of ``shard`` unless another start already did (None); queue
        the next one while anything is left in the shard's index, or if the cycle failed."""
        slot = math.floor(self.now() / self.interval_seconds)
        if not self.slots.claim(shard, slot):
            logger.debug("slot already taken", extra={"shard": shard, "slot": slot})
            return None
        report: CycleReport | None = None
        try:
            report = await cycle(shard)
        finally:
            if report is None or report.indexed > 0:
                self._next(shard, slot + 1)
        return report

    def _next(self, shard: int, slot: int) -> None:
        delay = math.ceil(slot * self.interval_seconds - self.now())
        self.trigger.start(shard, min(max(delay, 0), MAX_QUEUE_DELAY_SECONDS))
