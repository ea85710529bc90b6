"""What the domain needs from the outside world, as narrow Protocols.

Deploy, poller and alerts depend on these only; ``store/``, ``bus.py``, ``notifier.py`` and
``cerebras/`` implement them, ``wiring.py`` plugs them in, and tests hand in fakes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from rollout_monitor.cerebras.models import (
    DeployOperation,
    EndpointList,
    EndpointStatus,
    ModelVersionList,
    ModelVersionOperation,
)
from rollout_monitor.events import OutboundDetail
from rollout_monitor.records import (
    AlertClaimState,
    DeploymentRecord,
    EndpointHolder,
    HistoryEntry,
    LastOutcome,
    Reachability,
    RequestClaim,
    RequestContent,
    VersionWait,
)

if TYPE_CHECKING:
    from rollout_monitor.formatting import Alert

MAX_SUBJECT_LENGTH = 99  # every alert's subject: SNS's (ASCII, one line, < 100)


class Deployments(Protocol):
    """The poller's view of the deployment records: those in flight, and their changes."""

    def in_flight(self, shard: int | None = None) -> list[DeploymentRecord]: ...
    def save_observation(
        self, before: DeploymentRecord, after: DeploymentRecord, entry: HistoryEntry | None
    ) -> bool: ...
    def save_observations(
        self, changes: Sequence[tuple[DeploymentRecord, DeploymentRecord, HistoryEntry]]
    ) -> bool: ...
    def take_outbox(self, record: DeploymentRecord, now: float, lease_seconds: float) -> bool: ...
    def clear_outbox(self, record: DeploymentRecord) -> None: ...
    def record_discovery(self, record: DeploymentRecord, hold_stale_before: float) -> bool: ...
    def clear_outboxes(self, records: Sequence[DeploymentRecord]) -> bool: ...
    def release_outbox(self, record: DeploymentRecord) -> None: ...


class DeploymentLookup(Protocol):
    """What the alert function reads to check an event against the table."""

    def get(self, deployment_id: str) -> DeploymentRecord | None: ...
    def history(self, deployment_id: str) -> list[HistoryEntry]: ...


class Submissions(Protocol):
    """The deploy path's one transaction: record, history, request result, endpoint hold."""

    def get(self, deployment_id: str) -> DeploymentRecord | None: ...
    def record_submission(self, record: DeploymentRecord, lease_until: float) -> None: ...


class Requests(Protocol):
    """Deploy requests' claims, results and outboxes."""

    def claim(
        self, request_id: str, content: RequestContent, now: float, lease_seconds: float
    ) -> tuple[bool, RequestClaim]: ...
    def get(self, request_id: str) -> RequestClaim | None: ...
    def mark_sent(self, claim: RequestClaim, sent_at: float, known_before: list[str]) -> bool: ...
    def mark_upload_sent(
        self, claim: RequestClaim, sent_at: float, known_before: list[str]
    ) -> bool: ...
    def unmark_upload_sent(self, claim: RequestClaim) -> None: ...
    def resume(
        self, claim: RequestClaim, now: float, lease_seconds: float
    ) -> RequestClaim | None: ...
    def interrupt(self, request_id: str, claimed_at: float) -> None: ...
    def finish_rejected(
        self, claim: RequestClaim, pending_event: str, lease_until: float
    ) -> None: ...
    def take_outbox(self, claim: RequestClaim, now: float, lease_seconds: float) -> bool: ...
    def clear_outbox(self, claim: RequestClaim) -> None: ...
    def release_outbox(self, claim: RequestClaim) -> None: ...


class VersionWaits(Protocol):
    """Deploys waiting for their version's sync: started and resumed by the deploy function."""

    def start(self, claim: RequestClaim, wait: VersionWait) -> bool: ...
    def get(self, request_id: str) -> VersionWait | None: ...
    def clear_outbox(self, wait: VersionWait) -> None: ...
    def release_outbox(self, wait: VersionWait) -> None: ...


class SyncWaits(Protocol):
    """Deploys waiting for their version's sync: followed by the poller."""

    def waiting(self) -> list[VersionWait]: ...
    def save(self, before: VersionWait, after: VersionWait) -> bool: ...
    def take_outbox(self, wait: VersionWait, now: float, lease_seconds: float) -> bool: ...
    def clear_outbox(self, wait: VersionWait) -> None: ...
    def release_outbox(self, wait: VersionWait) -> None: ...


class EndpointHolds(Protocol):
    """One rollout per endpoint: the deploy function takes the hold (or gives it back)."""

    def claim(
        self, endpoint_id: str, request_id: str, now: float, *, force: bool, stale_after: float
    ) -> EndpointHolder | None: ...
    def release(self, endpoint_id: str, request_id: str) -> None: ...


class EndpointRelease(Protocol):
    """The poller frees an endpoint whose rollout ended; discovery holds a free endpoint for
    the rollout it adopted."""

    def free(self, endpoint_id: str, deployment_id: str) -> None: ...
    def hold_external(self, endpoint_id: str, deployment_id: str, now: float) -> bool: ...


class EndpointOutcomes(Protocol):
    """Each endpoint's latest finished rollout."""

    def last_outcome(self, endpoint_id: str) -> LastOutcome | None: ...
    def set_last_outcome(self, endpoint_id: str, outcome: LastOutcome) -> None: ...


class AlertClaims(Protocol):
    """Once per cause."""

    def claim(self, cause: str, now: float, lease_seconds: float) -> AlertClaimState: ...
    def sent(self, cause: str, message_id: str) -> None: ...
    def release(self, cause: str) -> None: ...


class ReachabilityLookup(Protocol):
    """Whether Cerebras answers the poller (the alerts check an episode against it)."""

    def get(self) -> Reachability: ...


class ReachabilityStore(ReachabilityLookup, Protocol):
    """The poller's record of an episode of failed status reads (records.Reachability)."""

    def save(self, before: Reachability, after: Reachability) -> bool: ...
    def take_outbox(self, state: Reachability, now: float, lease_seconds: float) -> bool: ...
    def clear_outbox(self, state: Reachability) -> bool: ...


MAX_ENTRIES_PER_PUT = 10  # EventBridge PutEvents: entries per call
MAX_TRANSACTION_ITEMS = 100  # DynamoDB TransactWriteItems: items per call


class PublishError(Exception):
    """Some events were still not accepted after every retry (the others were)."""

    def __init__(self, failed: Sequence[str], error_codes: Sequence[str]) -> None:
        super().__init__(f"{len(failed)} event(s) not published: {sorted(set(error_codes))}")
        self.failed_event_ids = list(failed)


class Publisher(Protocol):
    """The bus: publish all of ``details``, or raise :class:`PublishError` naming the refused
    ones (any other error: none can be assumed published)."""

    def publish(self, details: Sequence[OutboundDetail]) -> None: ...


class Channel(Protocol):
    """Where alerts go (the alert topic, the chat topic, the pager): each renders an alert
    its own way. ``name`` keys its once-only claim; ``accepts`` says whether an alert is
    for it at all; ``send`` returns the id the channel gave the message."""

    name: str

    def accepts(self, alert: Alert) -> bool: ...
    def send(self, alert: Alert) -> str: ...


class DeployApi(Protocol):
    """The Cerebras calls of the deploy path."""

    def deploy_model(self, endpoint_id: str, model: str) -> DeployOperation: ...
    def get_endpoint(self, endpoint_id: str) -> EndpointStatus: ...


class VersionApi(Protocol):
    """The Cerebras calls of a release and of the version guard."""

    def get_model_version(
        self, org_name: str, model_arch_id: str, version: str
    ) -> ModelVersionOperation: ...
    def list_model_versions(self, org_name: str, model_arch_id: str) -> ModelVersionList: ...
    def upload_model(
        self, org_name: str, model_arch_id: str, weight_uri: str, version_aliases: list[str]
    ) -> ModelVersionOperation: ...


class SyncReader(Protocol):
    """The Cerebras call of the poller's sync follower."""

    async def get_model_version(
        self, org_name: str, model_arch_id: str, version: str
    ) -> ModelVersionOperation: ...


class StatusReader(Protocol):
    """The Cerebras calls of the poller."""

    async def get_endpoint(self, endpoint_id: str) -> EndpointStatus: ...
    async def get_deployment(self, endpoint_id: str, deployment_id: str) -> DeployOperation: ...


class EndpointLister(Protocol):
    """The Cerebras calls of discovery: each org's endpoints, and each endpoint's status."""

    async def list_endpoints(self, org_name: str) -> EndpointList: ...
    async def get_endpoint(self, endpoint_id: str) -> EndpointStatus: ...


class PollSlots(Protocol):
    """Who runs each interval's cycle of a shard: the first to claim its slot."""

    def claim(self, shard: int, slot: int) -> bool: ...


class PollTrigger(Protocol):
    """Start a poller cycle for a shard after ``delay_seconds`` (the poll queue)."""

    def start(self, shard: int, delay_seconds: int) -> None: ...
