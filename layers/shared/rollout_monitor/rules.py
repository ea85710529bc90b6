"""The poller's rules: what one observation of a deployment changes. Pure: no I/O, no adapter.

:func:`decide` takes a record and what Cerebras says of it now, and returns a
:class:`Decision`: the new record, the history entry of a transition, the events to announce.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from rollout_monitor.cerebras.status import ObservedStatus
from rollout_monitor.events import (
    LostReason,
    OutboundDetail,
    RolloutLost,
    RolloutStalled,
    RolloutStatusChanged,
)
from rollout_monitor.records import DeploymentRecord, HistoryEntry


@dataclass(frozen=True, slots=True)
class Observation:
    """What Cerebras says of one deployment now; ``status`` is None when it is not listed."""

    status: ObservedStatus | None
    updated_replicas: int | None = None
    total_replicas: int | None = None
    error_message: str | None = None
    endpoint_gone: bool = False  # the endpoint itself answered 404


@dataclass(frozen=True, slots=True)
class StallPolicy:
    """How long a rollout may go without progress (by default and per status) before it is
    reported stalled; unseen before it is lost; in flight at all before it is given up."""

    after_seconds: float = 1800.0
    by_status: Mapping[str, float] = field(default_factory=dict)
    lost_after_seconds: float = 900.0  # not listed (or endpoint 404) for this long: lost
    max_age_seconds: float = 7 * 86_400.0  # in flight for this long: lost, whatever it says

    def deadline(self, status: str) -> float:
        return self.by_status.get(status, self.after_seconds)


@dataclass(frozen=True, slots=True)
class Decision:
    """What one observation changes."""

    record: DeploymentRecord  # the record as it should now be stored
    entry: HistoryEntry | None = None  # a transition's history entry
    events: tuple[OutboundDetail, ...] = ()  # what to announce
    warn_unknown_status: bool = False  # a status never seen before on this record

    @property
    def transition(self) -> bool:
        return self.entry is not None


def decide(
    record: DeploymentRecord, seen: Observation | None, now: float, stall: StallPolicy
) -> Decision:
    """Decide what an observation (``None``: the read failed) changes."""
    decision = Decision(record)
    if seen is not None:
        listed = seen.status is not None
        observed: dict[str, object] = {
            "last_observed_at": now,
            "listed": listed,
            "unlisted_since": None
            if listed
            else (now if record.unlisted_since is None else record.unlisted_since),
        }
        if seen.status is None:
            decision = Decision(record.model_copy(update=observed))
        else:
            decision = _observed(record, observed, seen, seen.status, now)
    decision = _check_lost(decision, seen, now, stall)
    return _check_stall(decision, now, stall)


def _check_lost(
    decision: Decision, seen: Observation | None, now: float, policy: StallPolicy
) -> Decision:
    """A rollout the monitor can no longer see ends its tracking, explicitly, once."""
    after = decision.record
    if after.terminal:
        return decision
    reason: LostReason | None = None
    deadline = policy.lost_after_seconds
    if now - after.submitted_at >= policy.max_age_seconds:
        reason, deadline = LostReason.MAX_AGE, policy.max_age_seconds
    elif (
        seen is not None
        and after.unlisted_since is not None
        and now - after.unlisted_since >= deadline
    ):
        reason = LostReason.ENDPOINT_NOT_FOUND if seen.endpoint_gone else LostReason.NOT_LISTED
    if reason is None:
        return decision
    after = after.model_copy(update={"lost_reason": reason.value, "terminal_at": now})
    event = RolloutLost.of(after, reason=reason, deadline=deadline, observed_at=now)
    return Decision(after, decision.entry, (*decision.events, event), decision.warn_unknown_status)


def _observed(
    record: DeploymentRecord,
    observed: dict[str, object],
    seen: Observation,
    status: ObservedStatus,
    now: float,
) -> Decision:
    """The record listed with ``status``; ``observed``: the changes of being seen at all."""
    replicas = seen.updated_replicas
    changes: dict[str, object] = observed | {
        "total_replicas": seen.total_replicas or record.total_replicas,
        "updated_replicas": replicas if replicas is not None else record.updated_replicas,
        "error_message": seen.error_message or record.error_message,
    }
    warn = not status.known and record.unknown_status_warned != status.value
    if warn:
        changes["unknown_status_warned"] = status.value
    if status.value == record.status:
        if replicas is not None and replicas != record.updated_replicas:
            changes |= {"last_progress_at": now, "stalled": False}
        return Decision(record.model_copy(update=changes), warn_unknown_status=warn)
    changes |= {
        "status": status.value,
        "status_known": status.known,
        "sequence": record.sequence + 1,
        "last_progress_at": now,
        "stalled": False,
        "terminal_at": now if status.terminal else None,
    }
    after = record.model_copy(update=changes)
    entry = HistoryEntry.of(after, previous_status=record.status, observed_at=now)
    event = RolloutStatusChanged.of(after, previous_status=record.status, observed_at=now)
    return Decision(after, entry, (event,), warn)


def _check_stall(decision: Decision, now: float, stall: StallPolicy) -> Decision:
    after = decision.record
    if after.terminal or after.stalled:
        return decision
    deadline = stall.deadline(after.status)
    idle = now - after.last_progress_at
    if idle < deadline:
        return decision
    after = after.model_copy(update={"stalled": True, "stall_episode": after.stall_episode + 1})
    event = RolloutStalled.of(after, stalled_for=idle, deadline=deadline, observed_at=now)
    return Decision(after, decision.entry, (*decision.events, event), decision.warn_unknown_status)
