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
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial

from rollout_monitor.cerebras.errors import CerebrasError, CerebrasNotFoundError
from rollout_monitor.cerebras.models import DeployOperation, EndpointStatus
from rollout_monitor.events import OutboundDetail, RolloutStalled, dump_pending, load_pending
from rollout_monitor.ports import (
    MAX_ENTRIES_PER_PUT,
    Deployments,
    EndpointHolds,
    Publisher,
    PublishError,
    StatusReader,
)
from rollout_monitor.records import OUTBOX_LEASE_SECONDS, DeploymentRecord, HistoryEntry
from rollout_monitor.rules import Observation, StallPolicy, decide

logger = logging.getLogger(__name__)


class _Gone:
    """A status read answered 404: what was read does not exist (any more)."""


GONE = _Gone()


@dataclass
class CycleReport:
    """What one cycle saw and did; the handler turns it into metrics."""

    in_flight: int = 0  # rollouts not finished
    indexed: int = 0  # records on the shard's index: those in flight, and finished ones
    # whose announcement is still pending
    status_requests: int = 0
    transitions: int = 0
    stalls: int = 0
    announced: int = 0
    writes: int = 0
    lost_races: int = 0
    unknown_statuses: int = 0
    poll_errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    publish_failures: int = 0
    record_failures: int = 0  # records whose write failed; the others went on
    read_latencies_ms: list[float] = field(default_factory=list)
    duration_ms: float = 0.0


@dataclass
class Poller:
    """One invocation's cycles, over the reader it was given (``wiring.py`` builds it)."""

    deployments: Deployments
    endpoints: EndpointHolds
    reader: StatusReader
    publisher: Publisher
    stall: StallPolicy = field(default_factory=StallPolicy)
    per_deployment_route: bool = False
    max_concurrency: int = 10  # status reads in flight at once
    aws_concurrency: int = 16  # DynamoDB and EventBridge calls in flight at once
    now: Callable[[], float] = time.time
    _pool: ThreadPoolExecutor | None = field(default=None, init=False, repr=False)

    async def cycle(self, shard: int = 0) -> CycleReport:
        """One cycle over the rollouts of one shard of the InFlight index."""
        started = time.perf_counter()
        report = CycleReport()
        with ThreadPoolExecutor(self.aws_concurrency, "aws") as self._pool:
            records = await self._aws(self.deployments.in_flight, shard)
            report.indexed = len(records)
            report.in_flight = sum(1 for r in records if not r.terminal)
            if records:
                flushed = await self._flush_outboxes(records, report)
                live = [flushed.get(r.deployment_id, r) for r in records if not r.terminal]
                observations = await self._observe(live, report)
                await self._apply(live, observations, report)
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

    async def _observe(
        self, records: list[DeploymentRecord], report: CycleReport
    ) -> dict[str, Observation]:
        """What Cerebras says of each record now; a record whose read failed is absent."""
        limit = asyncio.Semaphore(self.max_concurrency)

        async def timed[T](label: str, call: Awaitable[T]) -> T | _Gone | None:
            async with limit:
                report.status_requests += 1
                started = time.perf_counter()
                try:
                    return await call
                except CerebrasNotFoundError:
                    report.poll_errors["CerebrasNotFoundError"] += 1
                    logger.warning("status read found nothing (404)", extra={"target": label})
                    return GONE
                except CerebrasError as exc:
                    report.poll_errors[type(exc).__name__] += 1
                    logger.warning("status read failed", extra={"target": label, "error": str(exc)})
                    return None
                finally:
                    report.read_latencies_ms.append((time.perf_counter() - started) * 1000)

        if self.per_deployment_route:
            operations = await asyncio.gather(
                *(
                    timed(
                        r.deployment_id, self.reader.get_deployment(r.endpoint_id, r.deployment_id)
                    )
                    for r in records
                )
            )
            return {
                record.deployment_id: _from_operation(answer)
                for record, answer in zip(records, operations, strict=True)
                if answer is not None
            }
        by_endpoint: dict[str, list[DeploymentRecord]] = defaultdict(list)
        for record in records:
            by_endpoint[record.endpoint_id].append(record)
        endpoints = list(by_endpoint)
        statuses = await asyncio.gather(*(timed(e, self.reader.get_endpoint(e)) for e in endpoints))
        return {
            record.deployment_id: _from_endpoint(status, record.deployment_id)
            for endpoint_id, status in zip(endpoints, statuses, strict=True)
            if status is not None
            for record in by_endpoint[endpoint_id]
        }

    async def _apply(
        self,
        records: list[DeploymentRecord],
        observations: dict[str, Observation],
        report: CycleReport,
    ) -> None:
        """Decide every record, write the changed ones concurrently, then announce them all."""
        now = self.now()
        changes = []
        for record in records:
            change = self._decide(record, observations.get(record.deployment_id), now, report)
            if change is not None:
                changes.append(change)
        written = await asyncio.gather(*(self._write(*change, report) for change in changes))
        await self._announce([after for after in written if after and after.pending_events], report)

    def _decide(
        self, record: DeploymentRecord, seen: Observation | None, now: float, report: CycleReport
    ) -> tuple[DeploymentRecord, DeploymentRecord, HistoryEntry | None, int] | None:
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
        after = after.model_copy(
            update={
                "pending_events": record.pending_events + pending,
                "outbox_lease_until": now + OUTBOX_LEASE_SECONDS if pending else 0.0,
            }
        )
        stalls = sum(isinstance(e, RolloutStalled) for e in decision.events)
        return record, after, decision.entry, stalls

    async def _write(
        self,
        record: DeploymentRecord,
        after: DeploymentRecord,
        entry: HistoryEntry | None,
        stalls: int,
        report: CycleReport,
    ) -> DeploymentRecord | None:
        """Store one record's change; None if another poller was first or the write failed
        (one record's failure never holds back the others: the next cycle tries again)."""
        try:
            if not await self._aws(self.deployments.save_observation, record, after, entry):
                report.lost_races += 1
                return None
            report.writes += 1
            report.transitions += entry is not None
            report.stalls += stalls
            if after.terminal:
                await self._aws(self.endpoints.free, after.endpoint_id, after.deployment_id)
        except Exception:
            report.record_failures += 1
            logger.exception(
                "recording an observation failed; the next cycle tries again",
                extra={"deployment_id": record.deployment_id},
            )
            return None
        return after

    async def _announce(
        self, records: list[DeploymentRecord], report: CycleReport
    ) -> list[DeploymentRecord]:
        """Publish every record's pending events, up to ten per ``PutEvents`` call across
        records, then clear each record whose events were all accepted (or release its
        outbox at once, so the next cycle announces the rest). Returns the cleared records."""
        owner: dict[str, DeploymentRecord] = {}
        details: list[OutboundDetail] = []
        for record in records:
            for pending in record.pending_events:
                detail = load_pending(pending)
                owner[detail.event_id] = record
                details.append(detail)
        refused = set().union(
            *await asyncio.gather(
                *(self._publish(batch) for batch in _batches(details, MAX_ENTRIES_PER_PUT))
            )
        )
        report.announced += len(details) - len(refused)
        report.publish_failures += len(refused)
        failed = {owner[event_id].deployment_id for event_id in refused}
        done = [r for r in records if r.deployment_id not in failed]
        await asyncio.gather(
            *(self._aws(self.deployments.release_outbox, r) for r in records if r not in done),
            *(self._aws(self.deployments.clear_outbox, r) for r in done),
        )
        return done

    async def _publish(self, batch: list[OutboundDetail]) -> set[str]:
        """Publish one batch; return the ids of the events still refused after retries."""
        try:
            await self._aws(self.publisher.publish, batch)
        except PublishError as exc:
            logger.warning("events not published", extra={"event_ids": exc.failed_event_ids})
            return set(exc.failed_event_ids)
        except Exception:
            logger.exception("publishing failed", extra={"events": len(batch)})
            return {d.event_id for d in batch}
        return set()


def _batches[T](items: Iterable[T], size: int) -> list[list[T]]:
    listed = list(items)
    return [listed[start : start + size] for start in range(0, len(listed), size)]


def _from_operation(answer: DeployOperation | _Gone) -> Observation:
    if isinstance(answer, _Gone):
        return Observation(None)  # the deployment route does not know it
    metadata = answer.response
    return Observation(
        metadata.status, metadata.updated_replicas, metadata.total_replicas, metadata.error_message
    )


def _from_endpoint(status: EndpointStatus | _Gone, deployment_id: str) -> Observation:
    if isinstance(status, _Gone):
        return Observation(None, endpoint_gone=True)
    listed = status.find(deployment_id)
    if listed is None:
        return Observation(None)
    return Observation(
        listed.status, listed.updated_replicas, listed.total_replicas, listed.error_message
    )


_UNCHANGED_FIELDS = {"last_observed_at"}


def _same(after: DeploymentRecord, before: DeploymentRecord) -> bool:
    return after.model_dump(exclude=_UNCHANGED_FIELDS) == before.model_dump(
        exclude=_UNCHANGED_FIELDS
    )
