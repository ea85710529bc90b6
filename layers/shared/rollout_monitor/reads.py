"""A cycle's status reads: concurrent, bounded, each failure counted, none fatal.

One request per endpoint (its listing serves every rollout on it), or one per deployment with
the configured route. What a read says of a deployment becomes an :class:`Observation`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from rollout_monitor.cerebras.errors import CerebrasError, CerebrasNotFoundError
from rollout_monitor.cerebras.models import DeployOperation, EndpointStatus
from rollout_monitor.ports import StatusReader
from rollout_monitor.records import DeploymentRecord
from rollout_monitor.rules import Observation

logger = logging.getLogger(__name__)


class Gone:
    """A status read answered 404: what was read does not exist (any more)."""


GONE = Gone()


@dataclass
class CycleReport:
    """What one cycle saw and did; the handler turns it into metrics."""

    in_flight: int = 0  # rollouts not finished
    indexed: int = 0  # records on the shard's index: those in flight, and finished ones
    # whose announcement is still pending
    status_requests: int = 0
    transitions: int = 0
    transitions_by_status: dict[str, int] = field(default_factory=lambda: defaultdict(int))
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
class Reads:
    """One cycle's reads, at most ``limit`` at once, counted in ``report``."""

    reader: StatusReader
    report: CycleReport
    limit: asyncio.Semaphore
    per_deployment_route: bool = False

    async def read[T](self, label: str, call: Callable[[], Awaitable[T]]) -> T | Gone | None:
        """One status read (at most ``max_concurrency`` at once); None if it failed. The
        request is made only once a place is free: a read cancelled while it waited for one
        leaves nothing behind."""
        async with self.limit:
            self.report.status_requests += 1
            started = time.perf_counter()
            try:
                return await call()
            except CerebrasNotFoundError:
                self.report.poll_errors["CerebrasNotFoundError"] += 1
                logger.warning("status read found nothing (404)", extra={"target": label})
                return GONE
            except CerebrasError as exc:
                self.report.poll_errors[type(exc).__name__] += 1
                logger.warning("status read failed", extra={"target": label, "error": str(exc)})
                return None
            finally:
                self.report.read_latencies_ms.append((time.perf_counter() - started) * 1000)

    async def endpoint(self, endpoint_id: str) -> EndpointStatus | Gone | None:
        """One endpoint's status."""
        return await self.read(endpoint_id, partial(self.reader.get_endpoint, endpoint_id))

    async def observe(
        self,
        records: list[DeploymentRecord],
        early: dict[str, asyncio.Task[EndpointStatus | Gone | None]],
    ) -> AsyncGenerator[tuple[list[DeploymentRecord], dict[str, Observation]]]:
        """What Cerebras says of each record now, read by read as the answers arrive (so the
        caller works while the other reads wait): the records one read covers, with their
        observations; a record whose read failed has none."""
        if self.per_deployment_route:
            operations = [asyncio.ensure_future(self._operation(r)) for r in records]
            try:
                for operation in asyncio.as_completed(operations):
                    record, answer = await operation
                    yield (
                        [record],
                        ({} if answer is None else {record.deployment_id: _from_operation(answer)}),
                    )
            finally:
                _cancel(operations)
            return
        by_endpoint: dict[str, list[DeploymentRecord]] = defaultdict(list)
        for record in records:
            by_endpoint[record.endpoint_id].append(record)
        listings = [
            asyncio.ensure_future(self._listing(e, early.pop(e, None))) for e in by_endpoint
        ]
        try:
            for listing in asyncio.as_completed(listings):
                endpoint_id, status = await listing
                covered = by_endpoint[endpoint_id]
                yield (
                    covered,
                    (
                        {}
                        if status is None
                        else {
                            r.deployment_id: _from_endpoint(status, r.deployment_id)
                            for r in covered
                        }
                    ),
                )
        finally:
            _cancel(listings)

    async def _operation(
        self, record: DeploymentRecord
    ) -> tuple[DeploymentRecord, DeployOperation | Gone | None]:
        call = partial(self.reader.get_deployment, record.endpoint_id, record.deployment_id)
        return record, await self.read(record.deployment_id, call)

    async def _listing(
        self, endpoint_id: str, early: asyncio.Task[EndpointStatus | Gone | None] | None
    ) -> tuple[str, EndpointStatus | Gone | None]:
        """The endpoint's read: the one started early, or one started now."""
        return endpoint_id, await (self.endpoint(endpoint_id) if early is None else early)


def _cancel(reads: Sequence[asyncio.Future[Any]]) -> None:
    """Reads the caller no longer waits for (it failed, or was cancelled) are stopped."""
    for read in reads:
        read.cancel()


def _from_operation(answer: DeployOperation | Gone) -> Observation:
    if isinstance(answer, Gone):
        return Observation(None)  # the deployment route does not know it
    metadata = answer.response
    return Observation(
        metadata.status, metadata.updated_replicas, metadata.total_replicas, metadata.error_message
    )


def _from_endpoint(status: EndpointStatus | Gone, deployment_id: str) -> Observation:
    if isinstance(status, Gone):
        return Observation(None, endpoint_gone=True)
    listed = status.find(deployment_id)
    if listed is None:
        return Observation(None)
    return Observation(
        listed.status, listed.updated_replicas, listed.total_replicas, listed.error_message
    )
