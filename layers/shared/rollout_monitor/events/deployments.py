"""The events about one deployment: submitted, rejected, each status change, a stall, a loss.

Each is built in one place, its ``of`` constructor, from the record it announces.
"""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar

from pydantic import Field

from rollout_monitor.cerebras.status import RolloutStatus
from rollout_monitor.events.base import DetailType, Labels, OutboundDetail, Team
from rollout_monitor.records import DeploymentRecord


def _facts(record: DeploymentRecord, *names: str) -> dict[str, object]:
    """The fields every deployment event copies from its record, and ``names`` besides (read
    as they are: the event validates, and copies, them)."""
    return {name: getattr(record, name) for name in (*_DEPLOYMENT_FACTS, *names)}


_DEPLOYMENT_FACTS = (
    "deployment_id",
    "endpoint_id",
    "model",
    "version_id",
    "requested_by",
    "team",
    "labels",
)


class _AboutDeployment(OutboundDetail):
    """What every event about one recorded deployment says of it first."""

    deployment_id: str
    endpoint_id: str
    model: str
    org_name: str
    model_arch_id: str
    version_id: int | str
    team: Team | None = None
    labels: Labels = {}


class DeploymentSubmitted(_AboutDeployment):
    detail_type: ClassVar[DetailType] = DetailType.DEPLOYMENT_SUBMITTED

    request_id: str
    requested_by: str | None
    reason: str | None
    rollout_status: str
    submitted_at: float
    adopted: bool = Field(
        default=False,
        description="True when a retry found the deployment already made and adopted it.",
    )

    @classmethod
    def of(cls, record: DeploymentRecord, *, adopted: bool) -> DeploymentSubmitted:
        return cls(
            event_id=f"{record.deployment_id}:submitted",
            rollout_status=record.status,
            adopted=adopted,
            **_facts(record, "org_name", "model_arch_id", "request_id", "reason", "submitted_at"),
        )


class DeploymentDiscovered(_AboutDeployment):
    """A rollout in flight that the monitor did not start (the Cerebras console, a script,
    another team's pipeline), adopted: from now on it is followed and alerted on."""

    detail_type: ClassVar[DetailType] = DetailType.DEPLOYMENT_DISCOVERED

    origin: str = Field(default="external", description="Always external: not started here.")
    rollout_status: str
    submitted_at: float = Field(description="When Cerebras says it was created.")
    discovered_at: float

    @classmethod
    def of(cls, record: DeploymentRecord, *, discovered_at: float) -> DeploymentDiscovered:
        return cls(
            event_id=f"{record.deployment_id}:discovered",
            rollout_status=record.status,
            discovered_at=discovered_at,
            **_facts(record, "org_name", "model_arch_id", "submitted_at"),
        )


class RejectionReason(StrEnum):
    INVALID_REQUEST = "invalid_request"
    ENDPOINT_BUSY = "endpoint_busy"
    CEREBRAS_REFUSED = "cerebras_refused"
    AUTHENTICATION_FAILED = "authentication_failed"
    REQUEST_ID_CONFLICT = "request_id_conflict"
    VERSION_NOT_READY = "version_not_ready"


class DeploymentRejected(OutboundDetail):
    detail_type: ClassVar[DetailType] = DetailType.DEPLOYMENT_REJECTED

    endpoint_id: str | None
    model: str | None
    request_id: str
    requested_by: str | None
    reason: RejectionReason
    message: str
    status_code: int | None = None
    cerebras_detail: object | None = None
    blocking_deployment_id: str | None = None
    rejected_at: float
    team: Team | None = None
    labels: Labels = {}

    @classmethod
    def of(
        cls,
        request_id: str,
        reason: RejectionReason,
        message: str,
        *,
        rejected_at: float,
        endpoint_id: str | None,
        model: str | None,
        requested_by: str | None,
        status_code: int | None = None,
        cerebras_detail: object | None = None,
        blocking_deployment_id: str | None = None,
        team: str | None = None,
        labels: dict[str, str] | None = None,
    ) -> DeploymentRejected:
        return cls(
            event_id=f"rejected:{request_id}",
            endpoint_id=endpoint_id,
            model=model,
            request_id=request_id,
            requested_by=requested_by,
            reason=reason,
            message=message,
            status_code=status_code,
            cerebras_detail=cerebras_detail,
            blocking_deployment_id=blocking_deployment_id,
            rejected_at=rejected_at,
            team=team,
            labels=labels or {},
        )


class Outcome(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


OUTCOMES = {
    RolloutStatus.DONE.value: Outcome.SUCCEEDED,
    RolloutStatus.ERROR.value: Outcome.FAILED,
    RolloutStatus.ROLLED_BACK.value: Outcome.FAILED,
    RolloutStatus.CANCELLED.value: Outcome.CANCELLED,
}


class RolloutStatusChanged(_AboutDeployment):
    detail_type: ClassVar[DetailType] = DetailType.ROLLOUT_STATUS_CHANGED

    previous_status: str | None = Field(
        description="None when Cerebras reported a terminal status at submission (sequence 0)."
    )
    rollout_status: str
    terminal: bool
    outcome: Outcome | None
    error_message: str | None
    updated_replicas: int | None
    total_replicas: int | None
    observed_at: float
    submitted_at: float
    seconds_since_submission: float
    requested_by: str | None
    reason: str | None
    request_id: str | None
    sequence: int

    @classmethod
    def of(
        cls, record: DeploymentRecord, *, previous_status: str | None, observed_at: float
    ) -> RolloutStatusChanged:
        """``record`` as it is after the change (sequence already moved)."""
        return cls(
            event_id=f"{record.deployment_id}:{record.sequence}",
            previous_status=previous_status,
            rollout_status=record.status,
            terminal=record.terminal,
            outcome=OUTCOMES.get(record.status) if record.terminal else None,
            observed_at=observed_at,
            seconds_since_submission=round(observed_at - record.submitted_at, 3),
            **_facts(
                record,
                "org_name",
                "model_arch_id",
                "error_message",
                "updated_replicas",
                "total_replicas",
                "submitted_at",
                "reason",
                "request_id",
                "sequence",
            ),
        )


class RolloutStalled(OutboundDetail):
    detail_type: ClassVar[DetailType] = DetailType.ROLLOUT_STALLED

    deployment_id: str
    endpoint_id: str
    model: str
    version_id: int | str
    rollout_status: str
    listed_by_endpoint: bool
    stalled_for_seconds: float
    stall_after_seconds: float
    last_progress_at: float
    submitted_at: float
    requested_by: str | None
    episode: int
    observed_at: float
    team: Team | None = None
    labels: Labels = {}

    @classmethod
    def of(
        cls, record: DeploymentRecord, *, stalled_for: float, deadline: float, observed_at: float
    ) -> RolloutStalled:
        """``record`` as it is after the stall was counted (episode already moved)."""
        return cls(
            event_id=f"{record.deployment_id}:stall:{record.stall_episode}",
            rollout_status=record.status,
            listed_by_endpoint=record.listed is not False,
            stalled_for_seconds=round(stalled_for, 3),
            stall_after_seconds=deadline,
            episode=record.stall_episode,
            observed_at=observed_at,
            **_facts(record, "last_progress_at", "submitted_at"),
        )


class LostReason(StrEnum):
    ENDPOINT_NOT_FOUND = "endpoint_not_found"  # the endpoint answers 404
    NOT_LISTED = "not_listed"  # the endpoint does not list it (never, or no longer)
    MAX_AGE = "max_age"  # in flight longer than any rollout should take


class RolloutLost(_AboutDeployment):
    """The monitor stopped following a rollout it can no longer see: a terminal outcome."""

    detail_type: ClassVar[DetailType] = DetailType.ROLLOUT_LOST

    reason: LostReason
    last_status: str
    unlisted_since: float | None = Field(
        description="Since when the endpoint has not listed it (or answered 404)."
    )
    lost_after_seconds: float
    submitted_at: float
    observed_at: float
    requested_by: str | None
    request_id: str | None

    @classmethod
    def of(
        cls, record: DeploymentRecord, *, reason: LostReason, deadline: float, observed_at: float
    ) -> RolloutLost:
        return cls(
            event_id=f"{record.deployment_id}:lost",
            reason=reason,
            last_status=record.status,
            unlisted_since=record.unlisted_since,
            lost_after_seconds=deadline,
            observed_at=observed_at,
            **_facts(record, "org_name", "model_arch_id", "submitted_at", "request_id"),
        )
