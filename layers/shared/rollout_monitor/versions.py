"""Deploys that wait for their model version's sync: the version guard and the follower.

A version reaches Cerebras asynchronously (``models:upload``; its ``sync_status`` goes
``queued``, ``in_progress``, ``done``), and a deploy of a version not yet synced fails or,
worse, is accepted and errors later. So:

- the deploy function's :class:`VersionGuard` reads the version before ``deployModel``; one
  not synced is not sent: the request waits (``WAIT#<request_id>``, its request ``waiting``),
  announced as ``Model Version Sync Changed`` with its deadline;
- the schedule's poller runs :class:`SyncFollower`: each waiting version is read once a run;
  each change of its sync status, and the wait's end, is announced once (the wait's outbox);
- the end (``outcome`` ``ready``, ``failed`` or ``stalled``) goes to the deploy function
  (:mod:`rollout_monitor.release`), which deploys the version or rejects the request
  ``version_not_ready``; a failed or stalled sync is alerted.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from rollout_monitor.cerebras.errors import (
    CerebrasError,
    CerebrasNotFoundError,
    CerebrasRefusedError,
)
from rollout_monitor.cerebras.models import clean_text
from rollout_monitor.cerebras.names import ModelVersionName
from rollout_monitor.events import (
    DeploymentRejected,
    DeployRequested,
    ModelVersionSyncChanged,
    RejectionReason,
    dump_pending,
    load_pending,
)
from rollout_monitor.ports import Publisher, SyncReader, SyncWaits, VersionApi, VersionWaits
from rollout_monitor.records import (
    OUTBOX_LEASE_SECONDS,
    RequestClaim,
    SyncOutcome,
    VersionWait,
)
from rollout_monitor.rejections import rejection

logger = logging.getLogger(__name__)

SYNCED = "done"
MAX_SYNC_STATUS = 64  # of a status from the API, as stored and announced
MAX_CONCURRENT_READS = 10
NOT_FOUND_GRACE_SECONDS = 300.0  # a 404 this soon after the wait began is "not yet", not gone


class WaitTakenOverError(Exception):
    """The request is no longer this delivery's: another took it over, or it already waits."""


def sync_outcome(sync_status: str | None, now: float, wait_until: float) -> SyncOutcome:
    """What a reading means for the deploy: ``None`` is a version that no longer exists.

    Only ``done`` is synced; a status naming a failure ends the wait at once; any other
    (``queued``, ``in_progress``, one never seen before) waits, until the deadline.
    """
    if sync_status == SYNCED:
        return SyncOutcome.READY
    if sync_status is None or any(word in sync_status for word in ("fail", "error")):
        return SyncOutcome.FAILED
    return SyncOutcome.STALLED if now >= wait_until else SyncOutcome.WAITING


def _status(raw: str) -> str:
    return str(clean_text(raw, MAX_SYNC_STATUS)).lower()


def new_wait(
    request: DeployRequested,
    request_id: str,
    *,
    release: bool,
    sync_status: str,
    now: float,
    wait_seconds: float,
) -> VersionWait:
    """A deploy's wait, its first reading announced in its outbox."""
    wait = VersionWait(
        request_id=request_id,
        release=release,
        sync_status=_status(sync_status),
        sequence=1,
        started_at=now,
        wait_until=now + wait_seconds,
        observed_at=now,
        outcome=SyncOutcome.WAITING,
        **request.model_dump(
            include={"endpoint_id", "model", "force", "requested_by", "reason", "team", "labels"}
        ),
    )
    wait = wait.model_copy(update={"outcome": sync_outcome(wait.sync_status, now, wait.wait_until)})
    event = ModelVersionSyncChanged.of(wait, previous_sync_status=None)
    return wait.model_copy(
        update={
            "pending_events": [dump_pending(event)],
            "outbox_lease_until": now + OUTBOX_LEASE_SECONDS,
        }
    )


def advance(wait: VersionWait, sync_status: str | None, now: float) -> VersionWait | None:
    """The wait after a reading, its event added to its outbox; None if nothing changed."""
    status = None if sync_status is None else _status(sync_status)
    outcome = sync_outcome(status, now, wait.wait_until)
    if status == wait.sync_status and outcome == wait.outcome:
        return None
    after = wait.model_copy(
        update={
            "sync_status": status,
            "outcome": outcome,
            "sequence": wait.sequence + 1,
            "observed_at": now,
        }
    )
    event = ModelVersionSyncChanged.of(after, previous_sync_status=wait.sync_status)
    return after.model_copy(
        update={
            "pending_events": [*wait.pending_events, dump_pending(event)],
            "outbox_lease_until": now + OUTBOX_LEASE_SECONDS,
        }
    )


def _announce(publisher: Publisher, waits: VersionWaits | SyncWaits, wait: VersionWait) -> bool:
    """Publish a wait's outbox, then clear it; on failure give the lease up for the next run."""
    try:
        publisher.publish([load_pending(e) for e in wait.pending_events])
    except Exception:
        logger.warning("sync events not published", extra={"request_id": wait.request_id})
        waits.release_outbox(wait)
        return False
    waits.clear_outbox(wait)
    return True


def not_ready(request: DeployRequested, wait: VersionWait, now: float) -> DeploymentRejected:
    """The rejection of a request whose version's wait ended without a sync."""
    if wait.outcome == SyncOutcome.STALLED:
        why = f"it was still {wait.sync_status} at the deadline"
    elif wait.sync_status is None:
        why = "it no longer exists"
    else:
        why = f"its sync ended {wait.sync_status}"
    message = f"model version {wait.model} is not ready to deploy: {why}"
    return rejection(request, wait.request_id, RejectionReason.VERSION_NOT_READY, message, now)


@dataclass
class VersionGuard:
    """The deploy function's check before ``deployModel``: is the version synced?"""

    cerebras: VersionApi
    waits: VersionWaits
    publisher: Publisher
    wait_seconds: float = 1800.0

    def holds(
        self, request: DeployRequested, claim: RequestClaim, now: float
    ) -> bool | DeploymentRejected:
        """True when the request now waits for its version (recorded and announced); its
        rejection when its wait already ended unsynced (a retry after a resume that died)."""
        version = request.version
        try:
            answer = self.cerebras.get_model_version(
                version.org_name, version.model_arch_id, version.version
            )
        except CerebrasRefusedError:
            return False  # no such version, no access: deployModel's refusal says it, as before
        if answer.response.sync_status == SYNCED:
            return False
        earlier = self.waits.get(claim.request_id)
        if earlier is not None and earlier.finished:  # this request waited already
            if earlier.outcome == SyncOutcome.READY:
                return False  # it synced then: go ahead
            return not_ready(request, earlier, now)
        self.wait(claim, request, answer.response.sync_status, now, release=False)
        return True

    def wait(
        self,
        claim: RequestClaim,
        request: DeployRequested,
        sync_status: str,
        now: float,
        *,
        release: bool,
    ) -> VersionWait:
        """Record the request's wait, set it waiting, and announce it."""
        wait = new_wait(
            request,
            claim.request_id,
            release=release,
            sync_status=sync_status,
            now=now,
            wait_seconds=self.wait_seconds,
        )
        if not self.waits.start(claim, wait):
            raise WaitTakenOverError(f"request {claim.request_id} is no longer this delivery's")
        logger.info(
            "deploy waits for its version's sync",
            extra={"request_id": claim.request_id, "model": wait.model, "sync": wait.sync_status},
        )
        _announce(self.publisher, self.waits, wait)  # if not now, the follower's next run
        return wait


@dataclass
class SyncReport:
    followed: int = 0
    changed: int = 0
    announced: int = 0
    failed_reads: int = 0


@dataclass
class SyncFollower:
    """The poller's part: read each waiting version, record and announce each change."""

    waits: SyncWaits
    reader: SyncReader
    publisher: Publisher
    now: Callable[[], float] = time.time
    report: SyncReport = field(default_factory=SyncReport)

    async def follow(self) -> SyncReport:
        self.report = SyncReport()
        places = asyncio.Semaphore(MAX_CONCURRENT_READS)

        async def one(wait: VersionWait) -> None:
            async with places:
                await self._follow(wait)

        await asyncio.gather(*(one(w) for w in self.waits.waiting()))
        return self.report

    async def _follow(self, wait: VersionWait) -> None:
        self.report.followed += 1
        now = self.now()
        if (  # an earlier run's events, not confirmed
            wait.outbox_free(now)
            and self.waits.take_outbox(wait, now, OUTBOX_LEASE_SECONDS)
            and _announce(self.publisher, self.waits, wait)
        ):
            self.report.announced += len(wait.pending_events)
            wait = wait.model_copy(update={"pending_events": [], "outbox_lease_until": 0})
        if wait.finished:
            return
        name = ModelVersionName.parse(wait.model)
        try:
            answer = await self.reader.get_model_version(
                name.org_name, name.model_arch_id, name.version
            )
            sync_status: str | None = answer.response.sync_status
        except CerebrasNotFoundError:
            if now - wait.started_at < NOT_FOUND_GRACE_SECONDS:
                return  # a version just uploaded may not be served yet
            sync_status = None  # the version is gone
        except CerebrasError as exc:
            self.report.failed_reads += 1
            logger.warning(
                "could not read a waiting version",
                extra={"request_id": wait.request_id, "error": type(exc).__name__},
            )
            if now < wait.wait_until:
                return  # the next run reads again
            sync_status = wait.sync_status  # unread past its deadline: stalled, as last seen
        after = advance(wait, sync_status, self.now())
        if after is None or not self.waits.save(wait, after):
            return
        self.report.changed += 1
        if _announce(self.publisher, self.waits, after):
            self.report.announced += len(after.pending_events)
