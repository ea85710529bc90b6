"""The poller's decision for one observation, without I/O."""

from __future__ import annotations

from typing import Any

import pytest

from rollout_monitor.cerebras.status import normalise_status
from rollout_monitor.events import RolloutStalled, RolloutStatusChanged
from rollout_monitor.records import DeploymentRecord
from rollout_monitor.rules import Decision, Observation, StallPolicy, decide

RECORD = DeploymentRecord(
    deployment_id="d1",
    endpoint_id="e1",
    org_name="o",
    model_arch_id="a",
    version_id=1,
    model="orgs/o/models/a/versions/1",
    request_id="r1",
    submitted_at=1000.0,
    status="in_progress",
    sequence=1,
    updated_replicas=1,
    total_replicas=4,
    last_progress_at=1000.0,
    listed=True,
)
POLICY = StallPolicy(after_seconds=600, by_status={"not_started": 60})


def parts(*args: Any) -> tuple[DeploymentRecord, Any, list[Any], bool]:
    decision = decide(*args)
    return decision.record, decision.entry, list(decision.events), decision.warn_unknown_status


def test_the_decision_is_named() -> None:
    decision = decide(RECORD, seen("done", 4), 1100.0, POLICY)
    assert isinstance(decision, Decision)
    assert decision.transition
    assert decision.record.status == "done"
    assert decision.entry is not None
    assert decision.entry.sequence == 2
    (event,) = decision.events
    assert isinstance(event, RolloutStatusChanged)
    assert event.outcome == "succeeded"
    assert not decision.warn_unknown_status


def seen(status: str, replicas: int | None = 1) -> Observation:
    return Observation(normalise_status(status), replicas, 4)


def test_nothing_new_changes_nothing() -> None:
    after, entry, events, warn = parts(RECORD, seen("in_progress"), 1100.0, POLICY)
    assert (entry, events, warn) == (None, [], False)
    assert after.model_copy(update={"last_observed_at": None}) == RECORD


def test_a_transition_is_sequenced_and_terminal_outcomes_named() -> None:
    after, entry, events, _ = parts(RECORD, seen("Failed", 0), 1100.0, POLICY)
    (event,) = events
    assert isinstance(event, RolloutStatusChanged)
    assert (after.status, after.sequence, after.terminal, after.terminal_at) == (
        "error",
        2,
        True,
        1100.0,
    )
    assert entry is not None
    assert (entry.sequence, entry.previous_status, entry.status) == (2, "in_progress", "error")
    assert (event.outcome, event.event_id, event.previous_status) == (
        "failed",
        "d1:2",
        "in_progress",
    )


def test_replica_progress_rearms_without_an_event() -> None:
    stalled = RECORD.model_copy(update={"stalled": True, "stall_episode": 1})
    after, entry, events, _ = parts(stalled, seen("in_progress", 3), 5000.0, POLICY)
    assert (entry, events) == (None, [])
    assert (after.updated_replicas, after.stalled, after.last_progress_at) == (3, False, 5000.0)


def test_a_stall_fires_once_per_episode_with_per_status_deadlines() -> None:
    after, _, events, _ = parts(RECORD, seen("in_progress"), 1599.0, POLICY)
    assert events == []
    after, _, events, _ = parts(RECORD, seen("in_progress"), 1600.0, POLICY)
    (stall,) = events
    assert isinstance(stall, RolloutStalled)
    assert (stall.episode, stall.event_id, stall.stall_after_seconds) == (1, "d1:stall:1", 600)
    _, _, again, _ = parts(after, seen("in_progress"), 9999.0, POLICY)
    assert again == []
    waiting = RECORD.model_copy(update={"status": "not_started"})
    _, _, early, _ = parts(waiting, seen("not_started"), 1060.0, POLICY)
    assert [type(e) for e in early] == [RolloutStalled]


def test_a_failed_read_still_detects_stalls_and_changes_nothing_else() -> None:
    after, entry, events, _ = parts(RECORD, None, 1700.0, POLICY)
    assert entry is None
    assert [type(e) for e in events] == [RolloutStalled]
    assert after.last_observed_at is None


def test_unknown_status_is_kept_and_warned_once() -> None:
    after, _, events, warn = parts(RECORD, seen("Draining"), 1100.0, POLICY)
    assert (after.status, after.status_known, after.terminal, warn) == (
        "Draining",
        False,
        False,
        True,
    )
    assert len(events) == 1
    _, _, _, warn_again = parts(after, seen("Draining"), 1200.0, POLICY)
    assert warn_again is False


@pytest.mark.parametrize(
    "raw",
    ["not_started", "in_progress", "rolling_back", "rolled_back", "done", "error", "cancelled",
     "Draining-Replicas", "done-ish"],
)  # fmt: skip
def test_a_record_is_terminal_exactly_when_its_observed_status_is(raw: str) -> None:
    observed = normalise_status(raw)
    record = RECORD.model_copy(update={"status": observed.value, "status_known": observed.known})

    assert (record.terminal, record.in_flight) == (observed.terminal, not observed.terminal)
