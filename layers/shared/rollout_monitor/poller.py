"""The poller: reads every deployment in flight, records each change once, announces it once.

A cycle: one query of the InFlight index; pending announcements whose writer let its lease run
out are published (the outbox); statuses are read concurrently, one request per endpoint (or
per deployment with the configured route); each record is decided by :func:`decide` (pure) and
written conditionally on what was read, so two pollers never record or announce a change
twice; then the new events are published and the outbox cleared.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from rollout_monitor.cerebras.credentials import CerebrasSettings, build_async_client
from rollout_monitor.cerebras.errors import CerebrasError
from rollout_monitor.cerebras.models import DeployOperation, EndpointStatus
from rollout_monitor.cerebras.status import ObservedStatus, RolloutStatus
from rollout_monitor.config import PollerSettings
from rollout_monitor.events import (
    OutboundDetail,
    Outcome,
    RolloutStalled,
    RolloutStatusChanged,
    dump_pending,
    load_pending,
)
from rollout_monitor.store import DeploymentRecord, DeploymentStore, HistoryEntry

logger = logging.getLogger(__name__)

OUTBOX_LEASE_SECONDS = 60.0
FUNCTION_TIME_MARGIN_SECONDS = 15.0  # left for the last cycle's writes and the metrics flush


class StatusReader(Protocol):
    async def get_endpoint(self, endpoint_id: str) -> EndpointStatus: ...
    async def get_deployment(self, endpoint_id: str, deployment_id: str) -> DeployOperation: ...


class Publisher(Protocol):
    def publish(self, details: Sequence[OutboundDetail]) -> None: ...


@dataclass(frozen=True, slots=True)
class Observation:
    """What Cerebras says of one deployment now; ``status`` is None when it is not listed."""

    status: ObservedStatus | None
    updated_replicas: int | None = None
    total_replicas: int | None = None
    error_message: str | None = None


@dataclass(frozen=True, slots=True)
class StallPolicy:
    after_seconds: float = 1800.0
    by_status: Mapping[str, float] = field(default_factory=dict)

    def deadline(self, status: str) -> float:
        return self.by_status.get(status, self.after_seconds)


_OUTCOMES = {
    RolloutStatus.DONE.value: Outcome.SUCCEEDED,
    RolloutStatus.ERROR.value: Outcome.FAILED,
    RolloutStatus.ROLLED_BACK.value: Outcome.FAILED,
    RolloutStatus.CANCELLED.value: Outcome.CANCELLED,
}


def decide(
    record: DeploymentRecord, seen: Observation | None, now: float, stall: StallPolicy
) -> tuple[DeploymentRecord, HistoryEntry | None, list[OutboundDetail], bool]:
    """Decide what an observation (``None``: the read failed) changes. Pure.

    Returns the new record, the history entry of a transition, the events to announce, and
    whether an unknown status should be warned about.
    """
    after = record
    entry: HistoryEntry | None = None
    events: list[OutboundDetail] = []
    warn = False
    if seen is not None:
        after = after.model_copy(
            update={"last_observed_at": now, "listed": seen.status is not None}
        )
    if seen is not None and seen.status is not None:
        status = seen.status
        replicas = seen.updated_replicas
        progressed = replicas is not None and replicas != record.updated_replicas
        changes: dict[str, object] = {
            "total_replicas": seen.total_replicas or record.total_replicas,
            "updated_replicas": replicas if replicas is not None else record.updated_replicas,
            "error_message": seen.error_message or record.error_message,
        }
        if not status.known and record.unknown_status_warned != status.value:
            warn = True
            changes["unknown_status_warned"] = status.value
        if status.value != record.status:
            sequence = record.sequence + 1
            changes |= {
                "status": status.value,
                "status_known": status.known,
                "sequence": sequence,
                "last_progress_at": now,
                "stalled": False,
                "terminal_at": now if status.terminal else None,
            }
            after = after.model_copy(update=changes)
            entry = HistoryEntry(
                deployment_id=record.deployment_id,
                sequence=sequence,
                previous_status=record.status,
                status=status.value,
                observed_at=now,
                updated_replicas=after.updated_replicas,
                total_replicas=after.total_replicas,
                error_message=after.error_message,
            )
            events.append(_status_changed(record, after, now))
        else:
            if progressed:
                changes |= {"last_progress_at": now, "stalled": False}
            after = after.model_copy(update=changes)
    if not after.terminal and not after.stalled:
        deadline = stall.deadline(after.status)
        idle = now - after.last_progress_at
        if idle >= deadline:
            episode = after.stall_episode + 1
            after = after.model_copy(update={"stalled": True, "stall_episode": episode})
            events.append(_stalled(after, idle, deadline, now))
    return after, entry, events, warn


def _status_changed(
    before: DeploymentRecord, after: DeploymentRecord, now: float
) -> RolloutStatusChanged:
    return RolloutStatusChanged(
        event_id=f"{after.deployment_id}:{after.sequence}",
        deployment_id=after.deployment_id,
        endpoint_id=after.endpoint_id,
        model=after.model,
        org_name=after.org_name,
        model_arch_id=after.model_arch_id,
        version_id=after.version_id,
        previous_status=before.status,
        rollout_status=after.status,
        terminal=after.terminal,
        outcome=_OUTCOMES.get(after.status) if after.terminal else None,
        error_message=after.error_message,
        updated_replicas=after.updated_replicas,
        total_replicas=after.total_replicas,
        observed_at=now,
        submitted_at=after.submitted_at,
        seconds_since_submission=round(now - after.submitted_at, 3),
        requested_by=after.requested_by,
        reason=after.reason,
        request_id=after.request_id,
        sequence=after.sequence,
    )


def _stalled(record: DeploymentRecord, idle: float, deadline: float, now: float) -> RolloutStalled:
    return RolloutStalled(
        event_id=f"{record.deployment_id}:stall:{record.stall_episode}",
        deployment_id=record.deployment_id,
        endpoint_id=record.endpoint_id,
        model=record.model,
        version_id=record.version_id,
        rollout_status=record.status,
        listed_by_endpoint=record.listed is not False,
        stalled_for_seconds=round(idle, 3),
        stall_after_seconds=deadline,
        last_progress_at=record.last_progress_at,
        submitted_at=record.submitted_at,
        requested_by=record.requested_by,
        episode=record.stall_episode,
        observed_at=now,
    )


@dataclass
class CycleReport:
    """What one cycle saw and did; the handler turns it into metrics."""

    in_flight: int = 0
    status_requests: int = 0
    transitions: int = 0
    stalls: int = 0
    announced: int = 0
    writes: int = 0
    lost_races: int = 0
    unknown_statuses: int = 0
    poll_errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    publish_failures: int = 0
    read_latencies_ms: list[float] = field(default_factory=list)
    duration_ms: float = 0.0


@dataclass
class Poller:
    store: DeploymentStore
    reader: StatusReader
    publisher: Publisher
    stall: StallPolicy = field(default_factory=StallPolicy)
    per_deployment_route: bool = False
    max_concurrency: int = 10
    now: Callable[[], float] = time.time

    async def cycle(self) -> CycleReport:
        started = time.perf_counter()
        report = CycleReport()
        records = self.store.in_flight()
        report.in_flight = sum(1 for r in records if not r.terminal)
        if records:
            flushed = self._flush_outboxes(records, report)
            live = [flushed.get(r.deployment_id, r) for r in records if not r.terminal]
            observations = await self._observe(live, report)
            self._apply(live, observations, report)
        report.duration_ms = (time.perf_counter() - started) * 1000
        return report

    async def run(
        self,
        budget_seconds: float,
        interval_seconds: float,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> list[CycleReport]:
        """Cycle every ``interval_seconds`` while rollouts are in flight and the budget lasts.

        A budget of 0 is exactly one cycle; with nothing in flight, one cycle too.
        """
        reports: list[CycleReport] = []
        deadline = self.now() + budget_seconds
        while True:
            cycle_started = self.now()
            report = await self.cycle()
            reports.append(report)
            next_start = cycle_started + interval_seconds
            cycle_seconds = self.now() - cycle_started
            if report.in_flight == 0 or next_start + cycle_seconds > deadline:
                return reports
            await sleep(max(0.0, next_start - self.now()))

    # -- steps --------------------------------------------------------------------------------

    def _flush_outboxes(
        self, records: list[DeploymentRecord], report: CycleReport
    ) -> dict[str, DeploymentRecord]:
        """Announce what earlier runs decided but could not confirm; return the records as
        they are after their outbox was cleared."""
        now = self.now()
        flushed: dict[str, DeploymentRecord] = {}
        for record in records:
            if not record.pending_events or record.outbox_lease_until > now:
                continue
            if not self.store.take_outbox(record, now, OUTBOX_LEASE_SECONDS):
                continue
            if self._announce(record, record.pending_events, report):
                flushed[record.deployment_id] = record.model_copy(
                    update={"pending_events": [], "outbox_lease_until": 0.0}
                )
        return flushed

    async def _observe(
        self, records: list[DeploymentRecord], report: CycleReport
    ) -> dict[str, Observation]:
        limit = asyncio.Semaphore(self.max_concurrency)
        seen: dict[str, Observation] = {}

        async def timed[T](label: str, call: Awaitable[T]) -> T | None:
            async with limit:
                report.status_requests += 1
                started = time.perf_counter()
                try:
                    return await call
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
            for record, operation in zip(records, operations, strict=True):
                if operation is not None:
                    metadata = operation.response
                    seen[record.deployment_id] = Observation(
                        metadata.status,
                        metadata.updated_replicas,
                        metadata.total_replicas,
                        metadata.error_message,
                    )
            return seen

        by_endpoint: dict[str, list[DeploymentRecord]] = defaultdict(list)
        for record in records:
            by_endpoint[record.endpoint_id].append(record)
        endpoints = list(by_endpoint)
        statuses = await asyncio.gather(*(timed(e, self.reader.get_endpoint(e)) for e in endpoints))
        for endpoint_id, status in zip(endpoints, statuses, strict=True):
            if status is None:
                continue
            for record in by_endpoint[endpoint_id]:
                listed = status.find(record.deployment_id)
                seen[record.deployment_id] = (
                    Observation(None)
                    if listed is None
                    else Observation(
                        listed.status,
                        listed.updated_replicas,
                        listed.total_replicas,
                        listed.error_message,
                    )
                )
        return seen

    def _apply(
        self,
        records: list[DeploymentRecord],
        observations: dict[str, Observation],
        report: CycleReport,
    ) -> None:
        now = self.now()
        for record in records:
            after, entry, events, warn = decide(
                record, observations.get(record.deployment_id), now, self.stall
            )
            if warn:
                report.unknown_statuses += 1
                logger.warning(
                    "unknown rollout status, treated as in flight",
                    extra={"deployment_id": record.deployment_id, "status": after.status},
                )
            if _same(after, record):
                continue  # nothing changed: no write
            pending = [dump_pending(e) for e in events]
            after = after.model_copy(
                update={
                    "pending_events": record.pending_events + pending,
                    "outbox_lease_until": now + OUTBOX_LEASE_SECONDS if pending else 0.0,
                }
            )
            if not self.store.save_observation(record, after, entry):
                report.lost_races += 1
                continue
            report.writes += 1
            report.transitions += entry is not None
            report.stalls += sum(isinstance(e, RolloutStalled) for e in events)
            if after.terminal:
                self.store.free_endpoint(after.endpoint_id, after.deployment_id)
            if after.pending_events:
                self._announce(after, after.pending_events, report)

    def _announce(self, record: DeploymentRecord, pending: list[str], report: CycleReport) -> bool:
        details = [load_pending(e) for e in pending]
        try:
            self.publisher.publish(details)
        except Exception:
            report.publish_failures += 1
            logger.exception("publishing failed", extra={"deployment_id": record.deployment_id})
            self.store.release_outbox(record)
            return False
        report.announced += len(details)
        self.store.clear_outbox(record)
        return True


_UNCHANGED_FIELDS = {"last_observed_at"}


def _same(after: DeploymentRecord, before: DeploymentRecord) -> bool:
    return after.model_dump(exclude=_UNCHANGED_FIELDS) == before.model_dump(
        exclude=_UNCHANGED_FIELDS
    )


@dataclass
class PollerRuntime:
    """What one poller container needs, built once; a run builds its async client per loop."""

    settings: PollerSettings
    cerebras: CerebrasSettings
    store: DeploymentStore
    publisher: Publisher
    now: Callable[[], float] = time.time
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep

    def budget(self, remaining_millis: int) -> float:
        """The polling budget: the configured one, within the function's time left."""
        available = remaining_millis / 1000 - FUNCTION_TIME_MARGIN_SECONDS
        return max(0.0, min(self.settings.poll_budget_seconds, available))

    async def poll(self, budget_seconds: float) -> list[CycleReport]:
        client = build_async_client(self.cerebras, self.settings.poll_max_concurrency)
        try:
            poller = Poller(
                store=self.store,
                reader=client,
                publisher=self.publisher,
                stall=StallPolicy(
                    self.settings.stall_after_seconds, self.settings.stall_after_seconds_by_status
                ),
                per_deployment_route=self.cerebras.deployment_status_route is not None,
                max_concurrency=self.settings.poll_max_concurrency,
                now=self.now,
            )
            return await poller.run(budget_seconds, self.settings.poll_interval_seconds, self.sleep)
        finally:
            await client.aclose()


def runtime_from_environment() -> PollerRuntime:
    from rollout_monitor.bus import EventPublisher  # noqa: PLC0415

    settings = PollerSettings()
    return PollerRuntime(
        settings=settings,
        cerebras=CerebrasSettings(),
        store=DeploymentStore(settings.table_name, settings.retention_seconds),
        publisher=EventPublisher(settings.event_bus_name),
    )
