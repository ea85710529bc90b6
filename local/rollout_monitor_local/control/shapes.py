"""What ``status --json`` and ``history --json`` print: these models, documented in
``docs/cli.md`` as JSON Schema (a test keeps the two, and the output, in step)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from rollout_monitor.records import DeploymentRecord, HistoryEntry, LastOutcome


class _Shape(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Rollout(_Shape):
    """A deployment and where its rollout is."""

    deployment_id: str
    endpoint_id: str
    model: str
    version_id: int | str
    status: str
    updated_replicas: int | None
    total_replicas: int | None
    stalled: bool
    submitted_at: float
    elapsed_seconds: float
    ended_at: float | None
    lost_reason: str | None
    request_id: str
    requested_by: str | None
    reason: str | None

    @classmethod
    def of(cls, record: DeploymentRecord, now: float) -> Rollout:
        end = record.terminal_at if record.terminal_at is not None else now
        return cls(
            elapsed_seconds=round(max(0.0, end - record.submitted_at), 3),
            ended_at=record.terminal_at,
            **record.model_dump(
                include={
                    "deployment_id",
                    "endpoint_id",
                    "model",
                    "version_id",
                    "status",
                    "updated_replicas",
                    "total_replicas",
                    "stalled",
                    "submitted_at",
                    "lost_reason",
                    "request_id",
                    "requested_by",
                    "reason",
                }
            ),
        )


class Outcome(_Shape):
    """An endpoint's latest finished rollout."""

    endpoint_id: str
    outcome: str  # succeeded | failed
    deployment_id: str
    model: str | None
    version_id: int | str | None
    observed_at: float

    @classmethod
    def of(cls, endpoint_id: str, outcome: LastOutcome) -> Outcome:
        return cls(
            endpoint_id=endpoint_id,
            **outcome.model_dump(
                include={"outcome", "deployment_id", "model", "version_id", "observed_at"}
            ),
        )


class StatusReport(_Shape):
    """``rollout-monitor status --json``."""

    generated_at: float
    in_flight: list[Rollout]
    last_outcomes: list[Outcome]


class Transition(_Shape):
    """One status change; ``sequence`` 0 is the submission."""

    sequence: int
    previous_status: str | None
    status: str
    observed_at: float
    updated_replicas: int | None
    total_replicas: int | None
    error_message: str | None

    @classmethod
    def of(cls, entry: HistoryEntry) -> Transition:
        return cls(**entry.model_dump(exclude={"deployment_id"}))


class DeploymentHistory(_Shape):
    rollout: Rollout
    transitions: list[Transition]


class HistoryReport(_Shape):
    """``rollout-monitor history --json``: newest deployment first, transitions in order."""

    generated_at: float
    deployments: list[DeploymentHistory]
