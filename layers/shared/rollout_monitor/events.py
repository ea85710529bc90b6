"""The bus contract: every event the monitor reads or writes, in one place.

Inbound, on the monitor's custom bus:
    ``Deploy Requested`` (any source): :class:`DeployRequested`.
Outbound, ``source`` :data:`SOURCE`, on the same bus:
    ``Deployment Submitted``: :class:`DeploymentSubmitted`
    ``Deployment Rejected``: :class:`DeploymentRejected`
    ``Rollout Status Changed``: :class:`RolloutStatusChanged`
    ``Rollout Stalled``: :class:`RolloutStalled`
    ``Rollout Lost``: :class:`RolloutLost`
    ``Cerebras Unreachable``, ``Cerebras Reachable``: :class:`CerebrasUnreachable`,
    :class:`CerebrasReachable`

Every outbound detail carries ``schema_version`` and a deterministic ``event_id``: the same
fact always has the same id, so a subscriber drops duplicates by it. Each is built in one
place, its ``of`` constructor, from the record it announces. ``docs/events.md`` shows
each with an example; a test keeps the two in step.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated, ClassVar, Literal, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from rollout_monitor.cerebras.names import ModelVersionName, check_identifier
from rollout_monitor.cerebras.status import RolloutStatus
from rollout_monitor.records import DeploymentRecord, Reachability

SOURCE = "cerebras.rollout-monitor"
SCHEMA_VERSION = "1"

MAX_REQUEST_ID = 128
REQUEST_ID_PATTERN = r"^[A-Za-z0-9._:/@+=-]+$"
MAX_REQUESTED_BY = 256
MAX_REASON = 1024


def _facts(record: DeploymentRecord, *names: str) -> dict[str, object]:
    """The fields every deployment event copies from its record, and ``names`` besides."""
    return record.model_dump(include=_DEPLOYMENT_FACTS | set(names))


_DEPLOYMENT_FACTS = {"deployment_id", "endpoint_id", "model", "version_id", "requested_by"}


class DetailType(StrEnum):
    DEPLOY_REQUESTED = "Deploy Requested"
    DEPLOYMENT_SUBMITTED = "Deployment Submitted"
    DEPLOYMENT_REJECTED = "Deployment Rejected"
    ROLLOUT_STATUS_CHANGED = "Rollout Status Changed"
    ROLLOUT_STALLED = "Rollout Stalled"
    ROLLOUT_LOST = "Rollout Lost"
    CEREBRAS_UNREACHABLE = "Cerebras Unreachable"
    CEREBRAS_REACHABLE = "Cerebras Reachable"


def _endpoint_id(value: str) -> str:
    return check_identifier("endpoint_id", value)


def _model(value: str) -> str:
    return str(ModelVersionName.parse(value))


# --- inbound -----------------------------------------------------------------------------------


class DeployRequested(BaseModel):
    """``detail`` of ``Deploy Requested``. Unknown fields are ignored."""

    # Strict: "yes" or 1 is not a boolean, 2 is not a string; what is not exactly right is
    # rejected with its reason, never coerced into a deploy.
    model_config = ConfigDict(extra="ignore", frozen=True, str_strip_whitespace=True, strict=True)

    endpoint_id: Annotated[str, AfterValidator(_endpoint_id)]
    model: Annotated[str, AfterValidator(_model)]
    request_id: (
        Annotated[
            str,
            StringConstraints(min_length=1, max_length=MAX_REQUEST_ID, pattern=REQUEST_ID_PATTERN),
        ]
        | None
    ) = None
    requested_by: Annotated[str, StringConstraints(max_length=MAX_REQUESTED_BY)] | None = None
    reason: Annotated[str, StringConstraints(max_length=MAX_REASON)] | None = None
    force: bool = False

    @property
    def version(self) -> ModelVersionName:
        return ModelVersionName.parse(self.model)


# --- outbound ----------------------------------------------------------------------------------


class OutboundDetail(BaseModel):
    """What every event the monitor emits carries."""

    model_config = ConfigDict(frozen=True)
    detail_type: ClassVar[DetailType]

    schema_version: Literal["1"] = "1"
    event_id: str


class _AboutDeployment(OutboundDetail):
    """What every event about one recorded deployment says of it first."""

    deployment_id: str
    endpoint_id: str
    model: str
    org_name: str
    model_arch_id: str
    version_id: int | str


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


class RejectionReason(StrEnum):
    INVALID_REQUEST = "invalid_request"
    ENDPOINT_BUSY = "endpoint_busy"
    CEREBRAS_REFUSED = "cerebras_refused"
    AUTHENTICATION_FAILED = "authentication_failed"
    REQUEST_ID_CONFLICT = "request_id_conflict"


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


class CerebrasEpisode(OutboundDetail):
    """An episode of failed status reads (:class:`Reachability`), at its start or its end."""

    episode: int
    failing_since: float
    failing_for_seconds: float
    unreachable_after_seconds: float
    error_kinds: list[str]
    observed_at: float

    @classmethod
    def id_of(cls, episode: int) -> str:
        """``cerebras:unreachable:<episode>`` or ``cerebras:reachable:<episode>``."""
        return f"cerebras:{cls.detail_type.value.split()[-1].lower()}:{episode}"

    @classmethod
    def of(cls, state: Reachability, *, deadline: float, observed_at: float) -> Self:
        since = state.failing_since if state.failing_since is not None else observed_at
        return cls(
            event_id=cls.id_of(state.episode),
            episode=state.episode,
            failing_since=since,
            failing_for_seconds=round(observed_at - since, 3),
            unreachable_after_seconds=deadline,
            error_kinds=state.error_kinds,
            observed_at=observed_at,
        )


class CerebrasUnreachable(CerebrasEpisode):
    """Every status read has failed for ``unreachable_after_seconds``: once per episode."""

    detail_type: ClassVar[DetailType] = DetailType.CEREBRAS_UNREACHABLE


class CerebrasReachable(CerebrasEpisode):
    """A status read succeeded after an announced episode: its end, once."""

    detail_type: ClassVar[DetailType] = DetailType.CEREBRAS_REACHABLE


OUTBOUND_DETAILS: tuple[type[OutboundDetail], ...] = (
    DeploymentSubmitted,
    DeploymentRejected,
    RolloutStatusChanged,
    RolloutStalled,
    RolloutLost,
    CerebrasUnreachable,
    CerebrasReachable,
)


_BY_DETAIL_TYPE = {model.detail_type.value: model for model in OUTBOUND_DETAILS}


def dump_pending(detail: OutboundDetail) -> str:
    """An outbound detail as kept in an outbox until PutEvents confirms it."""
    return json.dumps(
        {"detail_type": detail.detail_type.value, "detail": detail.model_dump(mode="json")},
        separators=(",", ":"),
    )


def load_pending(text: str) -> OutboundDetail:
    document = json.loads(text)
    return _BY_DETAIL_TYPE[document["detail_type"]].model_validate(document["detail"])
