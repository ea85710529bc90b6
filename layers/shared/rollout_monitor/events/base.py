"""What every event of the bus shares: its source, detail types, the outbound base, and the
routing fields a team filters on."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

SOURCE = "cerebras.rollout-monitor"
SCHEMA_VERSION = "1"

MAX_LABELS = 10
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"  # a team, a label's key
LABEL_VALUE_PATTERN = r"^[A-Za-z0-9 ._:/@+=-]{0,128}$"

Team = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
Labels = Annotated[
    dict[
        Annotated[str, StringConstraints(pattern=NAME_PATTERN)],
        Annotated[str, StringConstraints(pattern=LABEL_VALUE_PATTERN)],
    ],
    Field(max_length=MAX_LABELS),
]


class DetailType(StrEnum):
    DEPLOY_REQUESTED = "Deploy Requested"
    RELEASE_REQUESTED = "Release Requested"
    DEPLOYMENT_SUBMITTED = "Deployment Submitted"
    DEPLOYMENT_DISCOVERED = "Deployment Discovered"
    DEPLOYMENT_REJECTED = "Deployment Rejected"
    ROLLOUT_STATUS_CHANGED = "Rollout Status Changed"
    ROLLOUT_STALLED = "Rollout Stalled"
    ROLLOUT_LOST = "Rollout Lost"
    CEREBRAS_UNREACHABLE = "Cerebras Unreachable"
    CEREBRAS_REACHABLE = "Cerebras Reachable"
    MODEL_VERSION_SYNC_CHANGED = "Model Version Sync Changed"


class OutboundDetail(BaseModel):
    """What every event the monitor emits carries."""

    model_config = ConfigDict(frozen=True)
    detail_type: ClassVar[DetailType]

    schema_version: Literal["1"] = "1"
    event_id: str
