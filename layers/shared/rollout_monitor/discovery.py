"""Discovery: every rollout in flight on the configured orgs' endpoints, not only the
monitor's own.

On its own cadence (``DiscoveryMinutes``), the schedule's poller lists each org's endpoints,
reads the status of each endpoint the include and exclude patterns let through (an excluded
endpoint is never read), and adopts each deployment in flight that the table does not know:
recorded with ``origin`` external on the InFlight index, so the poller follows it and the
alert function alerts on it like any other, and announced once as ``Deployment Discovered``
(through the record's outbox, as every announcement). The adoption is one conditional write:
a deployment already recorded, by the deploy function or an earlier discovery, is left alone.
"""

from __future__ import annotations

import asyncio
import fnmatch
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from rollout_monitor.announcer import Announcer
from rollout_monitor.cerebras.errors import CerebrasError
from rollout_monitor.cerebras.models import DeployedModel, EndpointStatus
from rollout_monitor.events import DeploymentDiscovered, dump_pending
from rollout_monitor.ports import Deployments, EndpointLister, EndpointRelease, Publisher
from rollout_monitor.records import EXTERNAL_REQUEST, OUTBOX_LEASE_SECONDS, DeploymentRecord

logger = logging.getLogger(__name__)

MAX_ENDPOINTS = 1000  # read in one run, every org together: the rest wait for the next runs
HOLD_STALE_SECONDS = 900.0  # the deploy function's: a request's hold with nothing recorded
MAX_AGE_SECONDS = 7 * 86_400.0  # the poller's: older, a listed model is no rollout in flight
MAX_LOGGED = 200  # of an id from the API, in a log line


@dataclass(frozen=True)
class DiscoveryScope:
    """Which endpoints discovery reads: the orgs', minus what the patterns leave out."""

    orgs: tuple[str, ...]
    include: tuple[str, ...] = ("*",)
    exclude: tuple[str, ...] = ()

    @classmethod
    def of(cls, orgs: str, include: str, exclude: str) -> DiscoveryScope:
        def split(text: str) -> tuple[str, ...]:
            return tuple(p.strip() for p in text.split(",") if p.strip())

        return cls(split(orgs), split(include) or ("*",), split(exclude))

    def wants(self, endpoint_id: str) -> bool:
        def matches(patterns: tuple[str, ...]) -> bool:
            return any(fnmatch.fnmatchcase(endpoint_id, p) for p in patterns)

        return matches(self.include) and not matches(self.exclude)


@dataclass
class DiscoveryReport:
    endpoints_read: int = 0
    endpoints_excluded: int = 0
    adopted: list[str] = field(default_factory=list)
    read_failures: int = 0


@dataclass
class Discovery:
    scope: DiscoveryScope
    reader: EndpointLister
    deployments: Deployments
    endpoints: EndpointRelease
    publisher: Publisher
    run: Callable[..., Awaitable[Any]]  # a blocking AWS call, off the event loop
    max_concurrency: int = 10
    now: Callable[[], float] = time.time

    async def discover(self) -> DiscoveryReport:
        report = DiscoveryReport()
        known = {r.deployment_id for r in await self.run(self.deployments.in_flight, None)}
        endpoints = await self._endpoints(report)
        limit = asyncio.Semaphore(self.max_concurrency)
        statuses = await asyncio.gather(*(self._read(e, limit, report) for e in endpoints))
        now = self.now()
        adopted = [
            record
            for endpoint_id, status in zip(endpoints, statuses, strict=True)
            if status is not None
            for model in status.deployed_models
            if model.id not in known and _in_flight(model, now)
            for record in [_adopted(endpoint_id, status, model, now)]
            if await self.run(self.deployments.record_discovery, record, now - HOLD_STALE_SECONDS)
        ]
        report.adopted = [r.deployment_id for r in adopted]
        for record in adopted:  # a free endpoint is held, so a deploy to it is refused busy
            await self.run(
                self.endpoints.hold_external, record.endpoint_id, record.deployment_id, now
            )
        if adopted:
            logger.info("rollouts started elsewhere adopted", extra={"deployments": report.adopted})
            await Announcer(self.deployments, self.publisher, self.run).announce(adopted)
        return report

    async def _endpoints(self, report: DiscoveryReport) -> list[str]:
        wanted = []
        for org in self.scope.orgs:
            listing = await _tried(self.reader.list_endpoints(org), report, org)
            for summary in listing.endpoints if listing else []:
                if self.scope.wants(summary.endpoint_id):
                    wanted.append(summary.endpoint_id)
                else:
                    report.endpoints_excluded += 1
        if len(wanted) > MAX_ENDPOINTS:
            logger.warning("too many endpoints for one run", extra={"endpoints": len(wanted)})
        return wanted[:MAX_ENDPOINTS]

    async def _read(
        self, endpoint_id: str, limit: asyncio.Semaphore, report: DiscoveryReport
    ) -> EndpointStatus | None:
        async with limit:
            status = await _tried(self.reader.get_endpoint(endpoint_id), report, endpoint_id)
        report.endpoints_read += status is not None
        return status


async def _tried[T](call: Awaitable[T], report: DiscoveryReport, what: str) -> T | None:
    """A Cerebras read; a failure is counted and logged, and the rest of the run goes on
    (the next run reads it again)."""
    try:
        return await call
    except CerebrasError as exc:
        report.read_failures += 1
        logger.warning(
            "a discovery read failed", extra={"target": what[:MAX_LOGGED], "error": str(exc)}
        )
        return None


def _in_flight(model: DeployedModel, now: float) -> bool:
    """A rollout in flight, as far as the listing says: a known status that has not ended
    (an unknown state may be a finished model's), created within the last week."""
    seen = model.status
    recent = model.created is None or now - model.created < MAX_AGE_SECONDS
    return seen.known and not seen.terminal and recent


def _adopted(
    endpoint_id: str, status: EndpointStatus, model: DeployedModel, now: float
) -> DeploymentRecord:
    """The record of a rollout started elsewhere, as the endpoint read lists it."""
    seen = model.status
    org, arch = status.managing_org_name, status.model_arch_id
    version = model.model.rpartition("/versions/")[2] or "unknown"
    record = DeploymentRecord(
        deployment_id=model.id,
        endpoint_id=endpoint_id,
        org_name=org,
        model_arch_id=arch,
        version_id=int(version) if version.isdigit() else version,
        model=model.model or f"orgs/{org}/models/{arch}/versions/unknown",
        version_alias=model.version_alias,
        request_id=f"{EXTERNAL_REQUEST}{model.id}",
        origin="external",
        submitted_at=float(model.created or now),
        status=seen.value,
        status_known=seen.known,
        updated_replicas=model.updated_replicas,
        total_replicas=model.total_replicas,
        error_message=model.error_message,
        last_observed_at=now,
        last_progress_at=now,
        listed=True,
    )
    event = DeploymentDiscovered.of(record, discovered_at=now)
    return record.model_copy(
        update={
            "pending_events": [dump_pending(event)],
            "outbox_lease_until": now + OUTBOX_LEASE_SECONDS,
        }
    )
