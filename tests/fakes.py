"""In-memory fakes of the store Protocols (``rollout_monitor.ports``), for domain unit tests.

Each keeps the same conditions the DynamoDB adapters write, in a dict, so a unit test sees
the same "lost the race" answers without moto.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from rollout_monitor.cerebras.models import DeployOperation, EndpointStatus
from rollout_monitor.channels import EmailFormat, document
from rollout_monitor.events import OutboundDetail
from rollout_monitor.formatting import Alert
from rollout_monitor.records import (
    AlertClaimState,
    DeploymentRecord,
    EndpointHolder,
    HistoryEntry,
    LastOutcome,
    RequestClaim,
    RequestContent,
    RequestState,
)
from rollout_monitor.store import StoreError
from rollout_monitor_local.topic import SentAlert


@dataclass
class FakeRequests:
    items: dict[str, RequestClaim] = field(default_factory=dict)

    def claim(
        self, request_id: str, content: RequestContent, now: float, lease_seconds: float
    ) -> tuple[bool, RequestClaim]:
        claim = RequestClaim(
            request_id=request_id,
            state=RequestState.IN_PROGRESS,
            claimed_at=now,
            lease_until=now + lease_seconds,
            fingerprint=content.fingerprint,
            **content.model_dump(),
        )
        old = self.items.get(request_id)
        if old is None:
            claim = claim.model_copy(update={"first_claimed_at": now})
        elif old.fingerprint == content.fingerprint and (
            old.state == RequestState.INTERRUPTED
            or (old.state == RequestState.IN_PROGRESS and old.lease_until < now)
        ):
            carried = {
                "first_claimed_at": old.first_claimed_at or old.claimed_at,
                "sent_at": old.sent_at,
                "known_before": old.known_before,
                "taken_over": True,
            }
            claim = claim.model_copy(update=carried)
        else:
            return False, old
        self.items[request_id] = claim
        return True, claim

    def mark_sent(self, claim: RequestClaim, sent_at: float, known_before: list[str]) -> bool:
        old = self.items[claim.request_id]
        if old.state != RequestState.IN_PROGRESS or old.claimed_at != claim.claimed_at:
            return False
        self.items[claim.request_id] = old.model_copy(
            update={"sent_at": sent_at, "known_before": list(known_before)}
        )
        return True

    def get(self, request_id: str) -> RequestClaim | None:
        return self.items.get(request_id)

    def interrupt(self, request_id: str, claimed_at: float) -> None:
        old = self.items.get(request_id)
        if old and old.state == RequestState.IN_PROGRESS and old.claimed_at == claimed_at:
            self.items[request_id] = old.model_copy(update={"state": RequestState.INTERRUPTED})

    def finish_rejected(self, claim: RequestClaim, pending_event: str, lease_until: float) -> None:
        self.items[claim.request_id] = claim.model_copy(
            update={
                "state": RequestState.REJECTED,
                "pending_events": [pending_event],
                "outbox_lease_until": lease_until,
            }
        )

    def finish_submitted(self, record: DeploymentRecord, lease_until: float) -> None:
        old = self.items[record.request_id]
        self.items[record.request_id] = old.model_copy(
            update={
                "state": RequestState.SUBMITTED,
                "deployment_id": record.deployment_id,
                "pending_events": list(record.pending_events),
                "outbox_lease_until": lease_until,
            }
        )

    def take_outbox(self, claim: RequestClaim, now: float, lease_seconds: float) -> bool:
        old = self.items[claim.request_id]
        if old.outbox_lease_until != claim.outbox_lease_until or old.state != claim.state:
            return False
        self.items[claim.request_id] = old.model_copy(
            update={"outbox_lease_until": now + lease_seconds}
        )
        return True

    def clear_outbox(self, claim: RequestClaim) -> None:
        old = self.items[claim.request_id]
        if old.state == claim.state:
            self.items[claim.request_id] = old.model_copy(
                update={"pending_events": [], "outbox_lease_until": 0.0}
            )

    def release_outbox(self, claim: RequestClaim) -> None:
        old = self.items[claim.request_id]
        if old.state == claim.state:
            self.items[claim.request_id] = old.model_copy(update={"outbox_lease_until": 0.0})


@dataclass
class FakeEndpoints:
    holds: dict[str, EndpointHolder] = field(default_factory=dict)
    outcomes: dict[str, LastOutcome] = field(default_factory=dict)

    def claim(
        self, endpoint_id: str, request_id: str, now: float, *, force: bool, stale_after: float
    ) -> EndpointHolder | None:
        old = self.holds.get(endpoint_id)
        free = (
            old is None
            or old.request_id == request_id
            or (old.deployment_id is None and old.claimed_at < now - stale_after)
        )
        if not (force or free):
            return old
        self.holds[endpoint_id] = EndpointHolder(
            endpoint_id=endpoint_id, request_id=request_id, claimed_at=now
        )
        return None

    def release(self, endpoint_id: str, request_id: str) -> None:
        old = self.holds.get(endpoint_id)
        if old and old.request_id == request_id and old.deployment_id is None:
            del self.holds[endpoint_id]

    def free(self, endpoint_id: str, deployment_id: str) -> None:
        old = self.holds.get(endpoint_id)
        if old and old.deployment_id == deployment_id:
            del self.holds[endpoint_id]

    def last_outcome(self, endpoint_id: str) -> LastOutcome | None:
        return self.outcomes.get(endpoint_id)

    def set_last_outcome(self, endpoint_id: str, outcome: LastOutcome) -> None:
        old = self.outcomes.get(endpoint_id)
        if old is None or old.observed_at <= outcome.observed_at:
            self.outcomes[endpoint_id] = outcome


@dataclass
class FakeDeployments:
    requests: FakeRequests
    endpoints: FakeEndpoints
    records: dict[str, DeploymentRecord] = field(default_factory=dict)
    entries: dict[str, list[HistoryEntry]] = field(default_factory=dict)

    def get(self, deployment_id: str) -> DeploymentRecord | None:
        return self.records.get(deployment_id)

    def history(self, deployment_id: str) -> list[HistoryEntry]:
        return self.entries.get(deployment_id, [])

    def record_submission(self, record: DeploymentRecord, lease_until: float) -> None:
        if record.deployment_id in self.records:
            raise StoreError(f"deployment {record.deployment_id} is already recorded")
        self.records[record.deployment_id] = record.model_copy(update={"pending_events": []})
        self.entries[record.deployment_id] = [
            HistoryEntry.of(record, previous_status=None, observed_at=record.submitted_at)
        ]
        self.requests.finish_submitted(record, lease_until)
        if record.terminal:
            self.endpoints.holds.pop(record.endpoint_id, None)
        else:
            self.endpoints.holds[record.endpoint_id] = EndpointHolder(
                endpoint_id=record.endpoint_id,
                request_id=record.request_id,
                deployment_id=record.deployment_id,
                claimed_at=record.submitted_at,
            )


@dataclass
class FakeClaims:
    states: dict[str, str] = field(default_factory=dict)
    leases: dict[str, float] = field(default_factory=dict)

    def claim(self, cause: str, now: float, lease_seconds: float) -> AlertClaimState:
        state = self.states.get(cause)
        if state == "sent":
            return AlertClaimState.SENT
        if state == "sending" and self.leases[cause] >= now:
            return AlertClaimState.BUSY
        self.states[cause] = "sending"
        self.leases[cause] = now + lease_seconds
        return AlertClaimState.CLAIMED

    def sent(self, cause: str, message_id: str) -> None:
        self.states[cause] = "sent"

    def release(self, cause: str) -> None:
        if self.states.get(cause) == "sending":
            del self.states[cause]


@dataclass
class FakeBus:
    published: list[OutboundDetail] = field(default_factory=list)
    failures: int = 0  # the next N publishes fail

    def publish(self, details: Sequence[OutboundDetail]) -> None:
        if self.failures:
            self.failures -= 1
            raise RuntimeError("PutEvents failed")
        self.published.extend(details)


@dataclass
class FakeTopic:
    """The alert topic as a channel: keeps each alert as the topic renders it."""

    name: str = ""
    sent: list[SentAlert] = field(default_factory=list)
    failures: int = 0

    def accepts(self, alert: Alert) -> bool:
        return True

    def send(self, alert: Alert) -> str:
        if self.failures:
            self.failures -= 1
            raise RuntimeError("SNS Publish failed")
        email = EmailFormat()
        subject = email.subject(alert)
        self.sent.append(
            SentAlert(
                message_id=f"message-{len(self.sent) + 1}",
                subject=subject,
                text=email.text(alert),
                document=document(alert, subject),
                attributes=alert.routing,
                published_bytes=0,
            )
        )
        return self.sent[-1].message_id


@dataclass
class FakeCerebras:
    """Answers ``deploy_model`` with the next operation, or raises the next error."""

    operations: list[DeployOperation | Exception] = field(default_factory=list)
    endpoint: EndpointStatus | None = None
    calls: list[str] = field(default_factory=list)

    def deploy_model(self, endpoint_id: str, model: str) -> DeployOperation:
        self.calls.append(f"deployModel {endpoint_id} {model}")
        answer = self.operations.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def get_endpoint(self, endpoint_id: str) -> EndpointStatus:
        self.calls.append(f"GET {endpoint_id}")
        if self.endpoint is not None:
            return self.endpoint
        return EndpointStatus(
            name=endpoint_id,
            model_arch_id="llama-3.3-70b",
            deployed_models=[],
            managing_org_name="my-org",
            created=0,
            updated=0,
        )

    @property
    def deploys(self) -> list[str]:
        return [c for c in self.calls if c.startswith("deployModel")]
