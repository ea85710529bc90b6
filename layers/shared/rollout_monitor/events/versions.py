"""The event about a model version a deploy waits for: each change of its sync, once."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from rollout_monitor.events.base import DetailType, Labels, OutboundDetail, Team
from rollout_monitor.records import SyncOutcome, VersionWait


class ModelVersionSyncChanged(OutboundDetail):
    """A waiting deploy's version changed sync status, or the wait ended (``outcome``)."""

    detail_type: ClassVar[DetailType] = DetailType.MODEL_VERSION_SYNC_CHANGED

    request_id: str
    release: bool = Field(description="True for a release's upload; False for a held deploy.")
    model: str = Field(description="The version's full name: what is deployed once synced.")
    endpoint_id: str
    sync_status: str | None = Field(description="As Cerebras reports it; None: not read yet.")
    previous_sync_status: str | None
    outcome: SyncOutcome
    sequence: int
    wait_until: float = Field(description="When the deploy is rejected if still not synced.")
    observed_at: float
    requested_by: str | None = None
    team: Team | None = None
    labels: Labels = {}

    @classmethod
    def of(cls, wait: VersionWait, *, previous_sync_status: str | None) -> ModelVersionSyncChanged:
        return cls(
            event_id=f"sync:{wait.request_id}:{wait.sequence}",
            previous_sync_status=previous_sync_status,
            **wait.model_dump(
                include={
                    "request_id",
                    "release",
                    "model",
                    "endpoint_id",
                    "sync_status",
                    "outcome",
                    "sequence",
                    "wait_until",
                    "observed_at",
                    "requested_by",
                    "team",
                    "labels",
                }
            ),
        )
