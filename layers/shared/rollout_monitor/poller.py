"""The poller: reads every deployment in flight, records each change once, announces it once.

A cycle: one query of the InFlight index; pending announcements whose writer let its lease run
out are published (the outbox); statuses are read concurrently, one request per endpoint (or
per deployment with the configured route); each record is decided by :func:`decide` (pure) and
written conditionally on what was read, so two pollers never record or announce a change
twice; then the new events of every record are published together, in ``PutEvents`` calls of
up to ten entries, and each record's outbox is cleared (or released, if one of its events was
refused). DynamoDB and EventBridge calls run in a thread pool, at most ``aws_concurrency`` at
a time, so the event loop never blocks on them.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
import time
from collections.abc import AsyncGenerator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import aclosing, contextmanager
from dataclasses import dataclass, field
from functools import partial

from rollout_monitor.announcer import Announcer, batches
from rollout_monitor.cerebras.models import EndpointStatus
from rollout_monitor.events import OutboundDetail, RolloutStalled, dump_pending
from rollout_monitor.ports import (
    MAX_TRANSACTION_ITEMS,
    Deployments,
    EndpointRelease,
    Publisher,
    StatusReader,
)
from rollout_monitor.reads import GONE, CycleReport, Gone, Reads
from rollout_monitor.records import OUTBOX_LEASE_SECONDS, DeploymentRecord, HistoryEntry
from rollout_monitor.rules import Observation, StallPolicy, decide

__all__ = ["GONE", "CycleReport", "Poller"]

logger = logging.getLogger(__name__)


type _Change = tuple[DeploymentRecord, DeploymentRecord, HistoryEntry | None, int]
"""A record as read, as it should be stored, its history entry, its new stalls."""


@dataclass
class Poller:
    """One invocation's cycles, over the reader it was given (``wiring.py`` builds it)."""

    deployments: Deployments
    endpoints: EndpointRelease
    reader: StatusReader
    publisher: Publisher
    stall: StallPolicy = field(default_factory=StallPolicy)
    per_deployment_route: bool = False
    max_concurrency: int = 10  # status reads in flight at once
    aws_concurrency: int = 16  # DynamoDB and EventBridge calls in flight at once
    # Changes decided before they are written and announced while the other reads still
    # wait: one transaction's worth of status changes.
    group_size: int = MAX_TRANSACTION_ITEMS // 2
    now: Callable[[], float] = time.time
    # Endpoints the last cycle of this shard read (a warm container's memory): their reads
    # start at once, while the index is queried, and are used if they are still in flight.
    endpoints_hint: dict[int, list[str]] = field(default_factory=dict)
    _pool: ThreadPoolExecutor | None = field(default=None, init=False, repr=False)
    # The events this cycle decided, by their outbox text: announced as built, not re-parsed
    _decided: dict[str, OutboundDetail] = field(default_factory=dict, init=False, repr=False)

    async def cycle(self, shard: int = 0) -> CycleReport:
        """One cycle over the rollouts of one shard of the InFlight index; one at a time (its
        thread pool and events are the Poller's): concurrent shards each have their own."""
        if self._pool is not None:
            raise RuntimeError("a Poller runs one cycle at a time: build one per shard")
        started = time.perf_counter()
        report = CycleReport()
        self._decided = {}
        reads = Reads(
            self.reader, report, asyncio.Semaphore(self.max_concurrency), self.per_deployment_route
        )
        early: dict[str, asyncio.Task[EndpointStatus | Gone | None]] = {}
        read_early_at = self.now()
        if not self.per_deployment_route:
            early = {
                e: asyncio.create_task(reads.endpoint(e))
                for e in self.endpoints_hint.get(shard, [])
            }
        with _COLLECTOR.paused(), ThreadPoolExecutor(self.aws_concurrency, "aws") as pool:
            self._pool = pool
            try:
                records = await self._aws(self.deployments.in_flight, shard)
                report.indexed = len(records)
                report.in_flight = sum(1 for r in records if not r.terminal)
                flushed = await self._flush_outboxes(records, report)
                live = [flushed.get(r.deployment_id, r) for r in records if not r.terminal]
                self.endpoints_hint[shard] = sorted({r.endpoint_id for r in live})
                hinted = set(early)
                # An early read is older than the index: a record another poller wrote since
                # it started is newer than what was read, and waits for the next cycle.
                stale = {
                    r.deployment_id
                    for r in live
                    if r.endpoint_id in hinted and (r.last_observed_at or 0) > read_early_at
                }
                position = {r.deployment_id: n for n, r in enumerate(live)}
                await self._apply(reads.observe(live, early), stale, position, report)
            finally:
                for task in early.values():
                    task.cancel()  # an endpoint no longer in flight: its answer is not needed
                self._pool = None
        report.duration_ms = (time.perf_counter() - started) * 1000
        return report

    async def _aws[**P, T](self, call: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """One DynamoDB or EventBridge call, off the event loop (at most ``aws_concurrency``)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, partial(call, *args, **kwargs))

    # -- steps --------------------------------------------------------------------------------

    async def _flush_outboxes(
        self, records: list[DeploymentRecord], report: CycleReport
    ) -> dict[str, DeploymentRecord]:
        """Announce what earlier runs decided but could not confirm; return the records as
        they are after their outbox was cleared."""
        now = self.now()
        lapsed = [r for r in records if r.outbox_free(now)]
        taken = await asyncio.gather(
            *(self._aws(self.deployments.take_outbox, r, now, OUTBOX_LEASE_SECONDS) for r in lapsed)
        )
        announced = await self._announce(
            [r for r, ok in zip(lapsed, taken, strict=True) if ok], report
        )
        return {
            r.deployment_id: r.model_copy(update={"pending_events": [], "outbox_lease_until": 0.0})
            for r in announced
        }

    async def _apply(
        self,
        observed: AsyncGenerator[tuple[list[DeploymentRecord], dict[str, Observation]]],
        stale: set[str],
        position: dict[str, int],
        report: CycleReport,
    ) -> None:
        """Decide each record as its read returns; write and announce the changed ones in
        groups, each group while the remaining reads are still waited for."""
        commits: list[asyncio.Task[None]] = []
        changes: list[_Change] = []
        try:
            async with aclosing(observed):
                async for records, observations in observed:
                    now = self.now()
                    for record in records:
                        if record.deployment_id in stale:
                            continue
                        seen = observations.get(record.deployment_id)
                        change = self._decide(record, seen, now, report)
                        if change is not None:
                            changes.append(change)
                    if len(changes) >= self.group_size:
                        commits.append(asyncio.create_task(self._commit(changes, report)))
                        changes = []
            # the last group, in the index's order (a small fleet's cycle is this group alone)
            changes.sort(key=lambda change: position[change[0].deployment_id])
            commits.append(asyncio.create_task(self._commit(changes, report)))
        finally:
            await asyncio.gather(*commits)

    async def _commit(self, changes: list[_Change], report: CycleReport) -> None:
        """Write the changes concurrently, then announce them together."""
        # Status changes (two items each) go together, a transaction per group; progress
        # writes (one item) on their own, as plain conditional writes.
        grouped = [c for c in changes if c[2] is not None]
        alone = [c for c in changes if c[2] is None]
        groups = batches(grouped, MAX_TRANSACTION_ITEMS // 2)
        written = await asyncio.gather(
            *(self._write_group(group, report) for group in groups),
            *(self._write_one(*change, report) for change in alone),
        )
        stored = [after for batch in written for after in batch]
        await self._announce([after for after in stored if after.pending_events], report)

    def _decide(
        self, record: DeploymentRecord, seen: Observation | None, now: float, report: CycleReport
    ) -> _Change | None:
        """The record as it should now be stored, or None when nothing changed."""
        decision = decide(record, seen, now, self.stall)
        after = decision.record
        if decision.warn_unknown_status:
            report.unknown_statuses += 1
            logger.warning(
                "unknown rollout status, treated as in flight",
                extra={"deployment_id": record.deployment_id, "status": after.status},
            )
        if _same(after, record):
            return None  # nothing changed: no write
        pending = [dump_pending(e) for e in decision.events]
        self._decided.update(zip(pending, decision.events, strict=True))
        after = after.model_copy(
            update={
                "pending_events": record.pending_events + pending,
                "outbox_lease_until": now + OUTBOX_LEASE_SECONDS if pending else 0.0,
            }
        )
        stalls = sum(isinstance(e, RolloutStalled) for e in decision.events)
        return record, after, decision.entry, stalls

    async def _write_group(
        self, group: list[_Change], report: CycleReport
    ) -> list[DeploymentRecord]:
        """Several status changes in one transaction; if it is refused (a record lost its
        race, or DynamoDB failed), each is written on its own, so none holds back another."""
        if len(group) > 1:
            try:
                saved = await self._aws(
                    self.deployments.save_observations,
                    [(before, after, entry) for before, after, entry, _ in group if entry],
                )
            except Exception:
                logger.warning("a grouped write failed; writing each alone", exc_info=True)
                saved = False
            if saved:
                return list(
                    await asyncio.gather(
                        *(
                            self._stored(after, entry, stalls, report)
                            for _, after, entry, stalls in group
                        )
                    )
                )
        written = await asyncio.gather(*(self._write_one(*change, report) for change in group))
        return [after for batch in written for after in batch]

    async def _write_one(
        self,
        record: DeploymentRecord,
        after: DeploymentRecord,
        entry: HistoryEntry | None,
        stalls: int,
        report: CycleReport,
    ) -> list[DeploymentRecord]:
        """Store one record's change: [after], or [] if another poller was first or the write
        failed (one record's failure never holds back the others: the next cycle tries again)."""
        try:
            if not await self._aws(self.deployments.save_observation, record, after, entry):
                report.lost_races += 1
                return []
            return [await self._stored(after, entry, stalls, report)]
        except Exception:
            report.record_failures += 1
            logger.exception(
                "recording an observation failed; the next cycle tries again",
                extra={"deployment_id": record.deployment_id},
            )
            return []

    async def _stored(
        self, after: DeploymentRecord, entry: HistoryEntry | None, stalls: int, report: CycleReport
    ) -> DeploymentRecord:
        """Count a stored change; a finished rollout frees its endpoint."""
        report.writes += 1
        report.transitions += entry is not None
        if entry is not None:  # Cerebras's text is not a metric name: unknown ones are "other"
            report.transitions_by_status[after.status if after.status_known else "other"] += 1
        report.stalls += stalls
        if after.terminal:
            try:
                await self._aws(self.endpoints.free, after.endpoint_id, after.deployment_id)
            except Exception:  # the hold lapses, or the next deploy sees the rollout ended
                logger.exception(
                    "freeing the endpoint failed", extra={"endpoint": after.endpoint_id}
                )
        return after

    async def _announce(
        self, records: list[DeploymentRecord], report: CycleReport
    ) -> list[DeploymentRecord]:
        """Announce the records' pending events (:class:`Announcer`); count what was."""
        announcer = Announcer(self.deployments, self.publisher, self._aws, self._decided)
        outcome = await announcer.announce(records)
        report.announced += outcome.announced
        report.publish_failures += outcome.refused
        return outcome.cleared


class _CollectorPause:
    """Python's cycle collector off while any cycle runs, back on (if it was) after the last.

    A cycle keeps thousands of records, items and events alive at once, and the collector,
    run every 700 allocations, walked them again and again to find almost nothing: reference
    counting frees what a cycle leaves. That was a fifth of an all-change cycle's CPU at 1,000
    deployments (``make bench``; ``docs/decisions.md``). What a cycle does leave in reference
    cycles is collected by the first collection after it. Cycles of several shards may run at
    once in one process (an event of several shards, the benchmark's threads): they count, and
    the last one out restores the collector as the first one in found it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running = 0
        self._was_enabled = False

    @contextmanager
    def paused(self) -> Iterator[None]:
        with self._lock:
            if self._running == 0:
                self._was_enabled = gc.isenabled()
                gc.disable()
            self._running += 1
        try:
            yield
        finally:
            with self._lock:
                self._running -= 1
                if self._running == 0 and self._was_enabled:
                    gc.enable()


_COLLECTOR = _CollectorPause()


def _same(after: DeploymentRecord, before: DeploymentRecord) -> bool:
    """Nothing but the observation time changed (fields compared as stored, no dump)."""
    return vars(after) == vars(before) | {"last_observed_at": after.last_observed_at}
