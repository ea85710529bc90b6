"""Publishing: batches of ten, and every refused entry sent again until accepted."""

from __future__ import annotations

import json
from typing import Any

import pytest

from rollout_monitor.bus import EventPublisher, PublishError
from rollout_monitor.events import DeploymentRejected, RejectionReason


def rejection(n: int) -> DeploymentRejected:
    return DeploymentRejected(
        event_id=f"rejected:r{n}",
        endpoint_id="e",
        model=None,
        request_id=f"r{n}",
        requested_by=None,
        reason=RejectionReason.INVALID_REQUEST,
        message="m",
        rejected_at=1.0,
    )


class FlakyEvents:
    """Refuses the listed event ids the first ``refusals`` times it sees them."""

    def __init__(self, refuse: set[str], refusals: int = 1) -> None:
        self.calls: list[list[str]] = []
        self.refuse = refuse
        self.refusals = refusals
        self.accepted: list[str] = []
        self.refused: dict[str, int] = {}

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        ids = [json.loads(e["Detail"])["event_id"] for e in Entries]
        self.calls.append(ids)
        results: list[dict[str, Any]] = []
        for event_id in ids:
            if event_id in self.refuse and self.refused.get(event_id, 0) < self.refusals:
                self.refused[event_id] = self.refused.get(event_id, 0) + 1
                results.append({"ErrorCode": "InternalFailure", "ErrorMessage": "try again"})
            else:
                results.append({"EventId": event_id})
                self.accepted.append(event_id)
        failed = sum("ErrorCode" in r for r in results)
        return {"FailedEntryCount": failed, "Entries": results}


def test_batches_of_ten_and_refused_entries_are_resent() -> None:
    fake = FlakyEvents(refuse={"rejected:r3", "rejected:r14"})
    EventPublisher("bus", client=fake).publish([rejection(n) for n in range(23)])  # type: ignore[arg-type]
    assert [len(c) for c in fake.calls[:3]] == [10, 10, 3]
    assert fake.calls[3] == ["rejected:r3", "rejected:r14"]
    assert sorted(fake.accepted) == sorted(f"rejected:r{n}" for n in range(23))


def test_entries_refused_every_time_raise_naming_them() -> None:
    fake = FlakyEvents(refuse={"rejected:r1"}, refusals=100)
    with pytest.raises(PublishError) as caught:
        EventPublisher("bus", client=fake).publish([rejection(0), rejection(1)])  # type: ignore[arg-type]
    assert caught.value.failed_event_ids == ["rejected:r1"]
    assert fake.accepted == ["rejected:r0"]
