"""The monitor's records: what it knows of each deployment, request, endpoint and alert.

Plain pydantic models, owned by the domain; ``store/`` only maps them to DynamoDB items.
Records that announce something carry an :class:`Outbox`: the events decided but not yet
confirmed by ``PutEvents``, and until when their writer alone may publish them. One rule
for every writer (:meth:`Outbox.outbox_free`): a pending event is published by whoever takes
the lapsed lease, under the event's deterministic ``event_id``.
"""

from __future__ import annotations

import hashlib
import json
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict

from rollout_monitor.cerebras.status import TERMINAL_STATUSES

OUTBOX_LEASE_SECONDS = 60.0
EXTERNAL_REQUEST = "external:"  # the request id of an adopted rollout: "external:<deployment>"


class Outbox(BaseModel):
    """Events to announce, and the lease of the writer that decided them."""

    model_config = ConfigDict(frozen=True)

    pending_events: list[str] = []  # JSON of each detail (events.dump_pending)
    outbox_lease_until: float = 0.0

    def outbox_free(self, now: float) -> bool:
        """Pending events whose writer's lease has lapsed: anyone may take them."""
        return bool(self.pending_events) and self.outbox_lease_until <= now


class DeploymentRecord(Outbox):
    """A deployment as the monitor knows it: the API's metadata, the request, its progress."""

    deployment_id: str
    endpoint_id: str
    org_name: str
    model_arch_id: str
    version_id: int | str
    model: str
    version_alias: str | None = None
    request_id: str
    requested_by: str | None = None
    reason: str | None = None
    team: str | None = None
    labels: dict[str, str] = {}
    origin: str = "monitor"  # "external": started elsewhere, adopted by discovery
    submitted_at: float
    status: str
    status_known: bool = True
    sequence: int = 0
    updated_replicas: int | None = None
    total_replicas: int | None = None
    max_unavailable: int | None = None
    error_message: str | None = None
    last_observed_at: float | None = None
    last_progress_at: float
    listed: bool | None = None
    stall_episode: int = 0
    stalled: bool = False
    terminal_at: float | None = None
    api_response: dict[str, Any] = {}
    unknown_status_warned: str | None = None
    unlisted_since: float | None = None  # first seen missing from its endpoint (or 404)
    # The monitor stopped following it (endpoint gone, never or no longer listed, too old):
    # a terminal outcome of the monitor's own, whatever Cerebras's last status was.
    lost_reason: str | None = None

    @property
    def terminal(self) -> bool:
        if self.lost_reason is not None:
            return True
        # a StrEnum hashes as its text: no enum built per call (ten calls a record a cycle)
        return self.status_known and self.status in TERMINAL_STATUSES

    @property
    def in_flight(self) -> bool:
        """On the InFlight index: still rolling out, or with events still to announce."""
        return not self.terminal or bool(self.pending_events)


class HistoryEntry(BaseModel):
    """One status change of a deployment; ``sequence`` 0 is the submission."""

    model_config = ConfigDict(frozen=True)

    deployment_id: str
    sequence: int
    previous_status: str | None = None
    status: str
    observed_at: float
    updated_replicas: int | None = None
    total_replicas: int | None = None
    error_message: str | None = None

    @classmethod
    def of(
        cls, record: DeploymentRecord, *, previous_status: str | None, observed_at: float
    ) -> HistoryEntry:
        """``record`` as it is after the change (sequence already moved)."""
        return cls(
            previous_status=previous_status,
            observed_at=observed_at,
            **record.model_dump(include=_HISTORY_FACTS),
        )


_HISTORY_FACTS = {
    "deployment_id",
    "sequence",
    "status",
    "updated_replicas",
    "total_replicas",
    "error_message",
}


class RequestState(StrEnum):
    IN_PROGRESS = "in_progress"
    INTERRUPTED = "interrupted"
    SUBMITTED = "submitted"
    REJECTED = "rejected"
    WAITING = "waiting"  # for its model version's sync (a VersionWait), deployed once done


class RequestContent(BaseModel):
    """What a deploy request asks for: the same ``request_id`` must always ask the same."""

    model_config = ConfigDict(frozen=True)

    endpoint_id: str
    model: str
    force: bool = False

    @property
    def fingerprint(self) -> str:
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    def describe(self) -> str:
        return (
            f"endpoint_id={self.endpoint_id}, model={self.model}, force={str(self.force).lower()}"
        )


MAX_KNOWN_BEFORE = 200  # deployment ids kept from the endpoint's listing before deployModel


class RequestClaim(Outbox):
    """A deploy request's claim by ``request_id``, and its result once decided."""

    request_id: str
    state: RequestState
    claimed_at: float
    lease_until: float
    first_claimed_at: float | None = None
    taken_over: bool = False  # an earlier delivery held it and may have called the API
    deployment_id: str | None = None
    endpoint_id: str | None = None
    model: str | None = None
    force: bool = False
    fingerprint: str | None = None
    # Written just before deployModel is sent: a later delivery knows the API may have acted
    # then, and which deployments the endpoint already listed (none of them is this one's).
    sent_at: float | None = None
    known_before: list[str] | None = None
    # A rejection's reason and message, kept after its event is announced: what a caller
    # waiting on the request (`rollout-monitor deploy`) is told.
    rejection_reason: str | None = None
    rejection_message: str | None = None
    # A release's upload, as sent_at and known_before are deployModel's: the versions listed
    # before it was sent are none of them this one.
    upload_sent_at: float | None = None
    upload_known_before: list[str] | None = None

    @property
    def content(self) -> RequestContent | None:
        if self.endpoint_id is None or self.model is None:
            return None
        return RequestContent(endpoint_id=self.endpoint_id, model=self.model, force=self.force)

    @property
    def finished(self) -> bool:
        return self.state in {RequestState.SUBMITTED, RequestState.REJECTED}


class EndpointHolder(BaseModel):
    """Which request (and, once recorded, which deployment) holds an endpoint."""

    model_config = ConfigDict(frozen=True)

    endpoint_id: str
    request_id: str
    deployment_id: str | None = None
    claimed_at: float


class LastOutcome(BaseModel):
    """An endpoint's latest finished rollout, for recovery notices (what one says of it)."""

    model_config = ConfigDict(frozen=True)

    outcome: str  # "succeeded" | "failed"
    deployment_id: str
    observed_at: float
    model: str | None = None
    version_id: int | str | None = None
    requested_by: str | None = None
    seconds_since_submission: float | None = None
    team: str | None = None
    labels: dict[str, str] = {}


class AlertClaimState(StrEnum):
    CLAIMED = "claimed"  # this caller may send it
    SENT = "sent"  # an earlier delivery sent it
    BUSY = "busy"  # another delivery is sending it now


class Reachability(Outbox):
    """Whether Cerebras answers the poller (``HEALTH#cerebras``): one episode at a time.

    An episode starts with a cycle whose every status read failed, is announced once it has
    lasted the configured time, and ends with the first cycle that reads anything; ``episode``
    moves on then, so each episode is announced (and its end) once.
    """

    revision: int = 0  # moved by every write but the outbox's: the guard of each
    episode: int = 0
    failing_since: float | None = None
    announced: bool = False
    error_kinds: list[str] = []
    # The last episodes whose start was announced (at most MAX_ANNOUNCED_EPISODES): what the
    # alert function checks an episode's events against.
    announced_episodes: list[int] = []


class SyncOutcome(StrEnum):
    WAITING = "waiting"  # not synced yet: the deploy waits
    READY = "ready"  # synced: the deploy goes ahead
    FAILED = "failed"  # the sync failed (or the version is gone): rejected version_not_ready
    STALLED = "stalled"  # not synced by the deadline: rejected version_not_ready


class VersionWait(Outbox):
    """A deploy waiting for its model version's sync (``WAIT#<request_id>``), a release's
    or a ``Deploy Requested`` the version guard held back."""

    request_id: str
    release: bool
    endpoint_id: str
    model: str  # the version's full name: what is deployed once it is synced
    force: bool = False
    requested_by: str | None = None
    reason: str | None = None
    team: str | None = None
    labels: dict[str, str] = {}
    sync_status: str | None = None
    outcome: SyncOutcome = SyncOutcome.WAITING
    sequence: int = 0
    started_at: float
    wait_until: float
    observed_at: float

    @property
    def finished(self) -> bool:
        return self.outcome != SyncOutcome.WAITING

    def deploy_request(self) -> dict[str, Any]:
        """The ``Deploy Requested`` detail it stands for (validated by its reader)."""
        return self.model_dump(
            include={
                "endpoint_id",
                "model",
                "request_id",
                "requested_by",
                "reason",
                "force",
                "team",
                "labels",
            },
            exclude_none=True,
        )
