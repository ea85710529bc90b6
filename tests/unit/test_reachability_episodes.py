"""Cerebras reachability: an episode is announced once when it has lasted, its end once, and
a failure between the episode's write and PutEvents loses and doubles nothing."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from rollout_monitor.events import OutboundDetail
from rollout_monitor.reachability import ReachabilityWatch, observe
from rollout_monitor.reads import CycleReport
from rollout_monitor.records import OUTBOX_LEASE_SECONDS, Reachability

DEADLINE = 600.0


@dataclass
class FakeStore:
    """The item, written only if its revision is still the one read."""

    item: Reachability = field(default_factory=Reachability)
    writes: int = 0
    reads: int = 0

    def get(self) -> Reachability:
        self.reads += 1
        return self.item

    def save(self, before: Reachability, after: Reachability) -> bool:
        if before.revision != self.item.revision:
            return False
        self.item, self.writes = after, self.writes + 1
        return True

    def take_outbox(self, state: Reachability, now: float, lease_seconds: float) -> bool:
        if state.revision != self.item.revision or self.item.outbox_lease_until > now:
            return False
        self.item = self.item.model_copy(update={"outbox_lease_until": now + lease_seconds})
        return True

    def clear_outbox(self, state: Reachability) -> bool:
        if state.revision != self.item.revision:
            return False
        self.item = self.item.model_copy(update={"pending_events": [], "outbox_lease_until": 0.0})
        return True


@dataclass
class FakeBus:
    failures: int = 0
    published: list[str] = field(default_factory=list)

    def publish(self, details: Sequence[OutboundDetail]) -> None:
        if self.failures:
            self.failures -= 1
            raise RuntimeError("PutEvents: outcome unknown")
        self.published += [d.event_id for d in details]


def _reads(failed: bool) -> list[CycleReport]:
    report = CycleReport(status_requests=2)
    if failed:
        report.poll_errors["CerebrasServerError"] += 2
    return [report]


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def _watch(store: FakeStore, bus: FakeBus, clock: Clock) -> ReachabilityWatch:
    return ReachabilityWatch(store, bus, DEADLINE, clock)


def test_an_outage_is_announced_once_after_its_deadline_and_its_end_once() -> None:
    store, bus, clock = FakeStore(), FakeBus(), Clock()
    watch = _watch(store, bus, clock)
    for _ in range(100):  # 1,000 s of failed reads, a run every 10 s
        watch.observe(_reads(failed=True))
        clock.now += 10
    assert bus.published == ["cerebras:unreachable:0"]
    assert store.item.announced_episodes == [0]  # what the alert function checks against
    for _ in range(3):
        watch.observe(_reads(failed=False))
        clock.now += 10
    assert bus.published == ["cerebras:unreachable:0", "cerebras:reachable:0"]
    assert (store.item.episode, store.item.failing_since, store.item.pending_events) == (
        1,
        None,
        [],
    )
    assert store.writes == 3  # its start, its announcement, its end: no write per run


def test_a_short_outage_ends_silently() -> None:
    store, bus, clock = FakeStore(), FakeBus(), Clock()
    watch = _watch(store, bus, clock)
    for failed in (True, True, False, False):
        watch.observe(_reads(failed))
        clock.now += 10
    assert bus.published == []
    assert store.item.episode == 1


def test_a_404_is_an_answer_and_no_reads_teach_nothing() -> None:
    store, bus, clock = FakeStore(), FakeBus(), Clock()
    report = CycleReport(status_requests=1)
    report.poll_errors["CerebrasNotFoundError"] += 1
    assert observe(Reachability(), reachable=True, errors=[], now=clock.now, deadline=1) == (
        Reachability()
    )
    watch = _watch(store, bus, clock)
    watch.observe([report])
    assert watch.observe([CycleReport()]) is None
    assert store.item.failing_since is None


def test_putevents_failing_after_the_write_is_announced_by_a_later_run_once() -> None:
    store, bus, clock = FakeStore(), FakeBus(failures=1), Clock()
    watch = _watch(store, bus, clock)
    watch.observe(_reads(failed=True))
    clock.now += DEADLINE
    watch.observe(_reads(failed=True))  # the announcement is written, PutEvents fails
    assert bus.published == []
    assert store.item.announced
    assert len(store.item.pending_events) == 1  # kept in the outbox
    clock.now += 10
    watch.observe(_reads(failed=True))  # within the writer's lease: left to it
    assert bus.published == []
    clock.now += OUTBOX_LEASE_SECONDS
    for _ in range(3):
        watch.observe(_reads(failed=True))
        clock.now += 10
    assert bus.published == ["cerebras:unreachable:0"]
    assert store.item.pending_events == []


def test_two_pollers_reading_the_same_revision_announce_once() -> None:
    store, bus, clock = FakeStore(), FakeBus(), Clock()
    first, second = _watch(store, bus, clock), _watch(store, bus, clock)
    first.observe(_reads(failed=True))
    clock.now += DEADLINE
    stale = store.item
    first.observe(_reads(failed=True))
    real_get = store.get
    store.get = lambda: stale  # type: ignore[method-assign]  (the second read before the write)
    assert second.observe(_reads(failed=True)) is None  # its conditional write loses
    store.get = real_get  # type: ignore[method-assign]
    assert bus.published == ["cerebras:unreachable:0"]


def test_a_warm_container_that_saw_health_rereads_after_a_minute() -> None:
    store, bus, clock = FakeStore(), FakeBus(), Clock()
    healthy, failing = _watch(store, bus, clock), _watch(store, bus, clock)
    healthy.observe(_reads(failed=False))  # remembers: healthy
    failing.observe(_reads(failed=True))
    clock.now += DEADLINE
    failing.observe(_reads(failed=True))
    assert bus.published == ["cerebras:unreachable:0"]
    healthy.observe(_reads(failed=False))  # its memory is too old to trust: reads, ends it
    assert bus.published == ["cerebras:unreachable:0", "cerebras:reachable:0"]


def test_a_recovery_whose_publish_failed_is_announced_though_nothing_is_left_to_read() -> None:
    """The run that sees Cerebras again is often the last with a read (its rollout finished
    meanwhile): if its PutEvents fails, the idle runs after it still announce the end."""
    store, bus, clock = FakeStore(), FakeBus(), Clock()
    watch = _watch(store, bus, clock)
    for _ in range(70):
        watch.observe(_reads(failed=True))
        clock.now += 10
    bus.failures = 1
    watch.observe(_reads(failed=False))  # the end is written, PutEvents fails
    for _ in range(3):  # the schedule's runs: nothing in flight, so nothing read
        clock.now += OUTBOX_LEASE_SECONDS
        assert watch.observe([CycleReport()]) is None
    assert bus.published == ["cerebras:unreachable:0", "cerebras:reachable:0"]
    assert store.item.pending_events == []
    reads = store.reads
    for _ in range(3):  # and once the outbox is known empty, an idle run reads nothing
        clock.now += 60
        watch.observe([CycleReport()])
    assert store.reads == reads
