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
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from rollout_monitor.cerebras.errors import CerebrasError, CerebrasNotFoundError
from rollout_monitor.cerebras.models import DeployOperation, EndpointStatus
from rollout_monitor.events import RolloutStalled, dump_pending, load_pending
from rollout_monitor.ports import Deployments, EndpointHolds, Publisher, StatusReader
from rollout_monitor.records import OUTBOX_LEASE_SECONDS, DeploymentRecord
from rollout_monitor.rules import Observation, StallPolicy, decide

logger = logging.getLogger(__name__)


class _Gone:
    """A status read answered 404: what was read does not exist (any more)."""


GONE = _Gone()


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
    max_concurrency: int = 10
    now: Callable[[], float] = time.time

    async def cycle(self) -> CycleReport:
        started = time.perf_counter()
        report = CycleReport()
        records = self.deployments.in_flight()
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
            if not record.outbox_free(now):
                continue
            if not self.deployments.take_outbox(record, now, OUTBOX_LEASE_SECONDS):
                continue
            if self._announce(record, record.pending_events, report):
                flushed[record.deployment_id] = record.model_copy(
                    update={"pending_events": [], "outbox_lease_until": 0.0}
                )
        return flushed

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

    def _apply(
        self,
        records: list[DeploymentRecord],
        observations: dict[str, Observation],
        report: CycleReport,
    ) -> None:
        now = self.now()
        for record in records:
            try:
                self._apply_one(record, observations.get(record.deployment_id), now, report)
            except Exception:  # one record's failure never holds back the others
                report.record_failures += 1
                logger.exception(
                    "recording an observation failed; the next cycle tries again",
                    extra={"deployment_id": record.deployment_id},
                )

    def _apply_one(
        self,
        record: DeploymentRecord,
        seen: Observation | None,
        now: float,
        report: CycleReport,
    ) -> None:
        decision = decide(record, seen, now, self.stall)
        after = decision.record
        if decision.warn_unknown_status:
            report.unknown_statuses += 1
            logger.warning(
                "unknown rollout status, treated as in flight",
                extra={"deployment_id": record.deployment_id, "status": after.status},
            )
        if _same(after, record):
            return  # nothing changed: no write
        pending = [dump_pending(e) for e in decision.events]
        after = after.model_copy(
            update={
                "pending_events": record.pending_events + pending,
                "outbox_lease_until": now + OUTBOX_LEASE_SECONDS if pending else 0.0,
            }
        )
        if not self.deployments.save_observation(record, after, decision.entry):
            report.lost_races += 1
            return
        report.writes += 1
        report.transitions += decision.transition
        report.stalls += sum(isinstance(e, RolloutStalled) for e in decision.events)
        if after.terminal:
            self.endpoints.free(after.endpoint_id, after.deployment_id)
        if after.pending_events:
            self._announce(after, after.pending_events, report)

    def _announce(self, record: DeploymentRecord, pending: list[str], report: CycleReport) -> bool:
        details = [load_pending(e) for e in pending]
        try:
            self.publisher.publish(details)
        except Exception:
            report.publish_failures += 1
            logger.exception("publishing failed", extra={"deployment_id": record.deployment_id})
            self.deployments.release_outbox(record)
            return False
        report.announced += len(details)
        self.deployments.clear_outbox(record)
        return True


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
