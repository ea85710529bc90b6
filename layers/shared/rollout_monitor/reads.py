"""A cycle's status reads: concurrent, bounded, each failure counted, none fatal.

One request per endpoint (its listing serves every rollout on it), or one per deployment with
the configured route. What a read says of a deployment becomes an :class:`Observation`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable
from dataclasses import dataclass, field

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

    async def read[T](self, label: str, call: Awaitable[T]) -> T | Gone | None:
        """One status read (at most ``max_concurrency`` at once); None if it failed."""
        async with self.limit:
            self.report.status_requests += 1
            started = time.perf_counter()
            try:
                return await call
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
        """One endpoint's status; its request is made only once this runs, so a read
        cancelled before it started leaves nothing behind."""
        return await self.read(endpoint_id, self.reader.get_endpoint(endpoint_id))

    async def observe(
        self,
        records: list[DeploymentRecord],
        early: dict[str, asyncio.Task[EndpointStatus | Gone | None]],
    ) -> dict[str, Observation]:
        """What Cerebras says of each record now; a record whose read failed is absent."""
        if self.per_deployment_route:
            operations = await asyncio.gather(
                *(
                    self.read(
                        r.deployment_id,
                        self.reader.get_deployment(r.endpoint_id, r.deployment_id),
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
        statuses = await asyncio.gather(
            *(early.pop(e) if e in early else self.endpoint(e) for e in endpoints)
        )
        return {
            record.deployment_id: _from_endpoint(status, record.deployment_id)
            for endpoint_id, status in zip(endpoints, statuses, strict=True)
            if status is not None
            for record in by_endpoint[endpoint_id]
        }


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
