"""The announcer publishes the events a cycle built as they are, and parses only the others
(issue 13: the outbox text is not read back for an event still in hand)."""

from __future__ import annotations

import asyncio
from typing import Any

from rollout_monitor.announcer import Announcer
from rollout_monitor.events import RolloutStatusChanged, dump_pending
from rollout_monitor.records import DeploymentRecord
from tests.fakes import FakeBus

RECORD = DeploymentRecord(
    deployment_id="d-1",
    endpoint_id="e-1",
    org_name="o",
    model_arch_id="a",
    version_id=1,
    model="orgs/o/models/a/versions/1",
    request_id="r-1",
    submitted_at=0,
    status="in_progress",
    sequence=1,
    last_progress_at=0,
)


class Cleared:
    """The announcer's store calls: which records had their outbox cleared."""

    def __init__(self) -> None:
        self.cleared: list[str] = []

    def clear_outboxes(self, records: list[DeploymentRecord]) -> bool:
        self.cleared += [r.deployment_id for r in records]
        return True

    def clear_outbox(self, record: DeploymentRecord) -> None:
        self.cleared.append(record.deployment_id)


async def _run(call: Any, *args: Any) -> Any:
    return call(*args)


def test_an_event_built_this_cycle_is_published_as_built_and_another_is_parsed() -> None:
    built = RolloutStatusChanged.of(RECORD, previous_status="not_started", observed_at=1)
    older = RolloutStatusChanged.of(
        RECORD.model_copy(update={"sequence": 0, "status": "not_started"}),
        previous_status=None,
        observed_at=0,
    )
    record = RECORD.model_copy(
        update={"pending_events": [dump_pending(older), dump_pending(built)]}
    )
    bus, store = FakeBus(), Cleared()
    announcer = Announcer(store, bus, _run, {dump_pending(built): built})  # type: ignore[arg-type]

    outcome = asyncio.run(announcer.announce([record]))

    first, second = bus.published
    assert second is built  # the object in hand, not a copy read back from its text
    assert first == older  # parsed from the record's outbox
    assert first is not older
    assert (outcome.announced, store.cleared) == (2, ["d-1"])
