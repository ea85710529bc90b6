"""The bus contract: every event the monitor reads or writes, in one place.

Inbound, on the monitor's custom bus:
    ``Deploy Requested`` (any source): :class:`DeployRequested`.
Outbound, ``source`` :data:`SOURCE`, on the same bus:
    ``Deployment Submitted``: :class:`DeploymentSubmitted`
    ``Deployment Rejected``: :class:`DeploymentRejected`
    ``Rollout Status Changed``: :class:`RolloutStatusChanged`
    ``Rollout Stalled``: :class:`RolloutStalled`

Every outbound detail carries ``schema_version`` and a deterministic ``event_id``: the same
fact always has the same id, so a subscriber drops duplicates by it. ``docs/events.md`` shows
each with an example; a test keeps the two in step.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from rollout_monitor.cerebras.names import ModelVersionName, check_identifier

SOURCE = "cerebras.rollout-monitor"
SCHEMA_VERSION = "1"

MAX_REQUEST_ID = 128
REQUEST_ID_PATTERN = r"^[A-Za-z0-9._:/@+=-]+$"
MAX_REQUESTED_BY = 256
MAX_REASON = 1024


class DetailType(StrEnum):
    DEPLOY_REQUESTED = "Deploy Requested"
    DEPLOYMENT_SUBMITTED = "Deployment Submitted"
    DEPLOYMENT_REJECTED = "Deployment Rejected"
    ROLLOUT_STATUS_CHANGED = "Rollout Status Changed"
    ROLLOUT_STALLED = "Rollout Stalled"


def _endpoint_id(value: str) -> str:
    return check_identifier("endpoint_id", value)


def _model(value: str) -> str:
    return str(ModelVersionName.parse(value))


# --- inbound -----------------------------------------------------------------------------------


class DeployRequested(BaseModel):
    """``detail`` of ``Deploy Requested``. Unknown fields are ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True, str_strip_whitespace=True)

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


class DeploymentSubmitted(OutboundDetail):
    detail_type: ClassVar[DetailType] = DetailType.DEPLOYMENT_SUBMITTED

    deployment_id: str
    endpoint_id: str
    model: str
    org_name: str
    model_arch_id: str
    version_id: int | str
    request_id: str
    requested_by: str | None
    reason: str | None
    rollout_status: str
    submitted_at: float
    adopted: bool = Field(
        default=False,
        description="True when a retry found the deployment already made and adopted it.",
    )


class RejectionReason(StrEnum):
    INVALID_REQUEST = "invalid_request"
    ENDPOINT_BUSY = "endpoint_busy"
    CEREBRAS_REFUSED = "cerebras_refused"
    AUTHENTICATION_FAILED = "authentication_failed"


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


class Outcome(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class RolloutStatusChanged(OutboundDetail):
    detail_type: ClassVar[DetailType] = DetailType.ROLLOUT_STATUS_CHANGED

    deployment_id: str
    endpoint_id: str
    model: str
    org_name: str
    model_arch_id: str
    version_id: int | str
    previous_status: str
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


OUTBOUND_DETAILS: tuple[type[OutboundDetail], ...] = (
    DeploymentSubmitted,
    DeploymentRejected,
    RolloutStatusChanged,
    RolloutStalled,
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
