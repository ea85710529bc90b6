"""What a poller cycle holds for itself: Python's cycle collector paused, and always left as
found (issue 13: the collector was a fifth of an all-change cycle's CPU at 1,000
deployments); its thread pool, so one Poller runs one cycle at a time."""

from __future__ import annotations

import asyncio
import gc
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from rollout_monitor.poller import Poller
from rollout_monitor.records import DeploymentRecord


class Probe:
    """An empty InFlight index that notes whether the collector runs when it is queried; it
    may hold the query until ``go`` is set, or fail it."""

    def __init__(self, *, hold: bool = False, fail: bool = False) -> None:
        self.collector_on: list[bool] = []
        self.queried = threading.Event()
        self.go = threading.Event()
        if not hold:
            self.go.set()
        self.fail = fail

    def in_flight(self, shard: int | None = None) -> list[DeploymentRecord]:
        self.collector_on.append(gc.isenabled())
        self.queried.set()
        self.go.wait(timeout=30)
        if self.fail:
            raise RuntimeError("the index could not be queried")
        return []


def _poller(probe: Probe) -> Poller:
    return Poller(probe, None, None, None)  # type: ignore[arg-type]


def _cycle(probe: Probe) -> Any:
    return asyncio.run(_poller(probe).cycle())


@pytest.fixture(autouse=True)
def collector_restored() -> Iterator[None]:
    was = gc.isenabled()
    gc.enable()
    yield
    if was:
        gc.enable()
    else:
        gc.disable()


def test_a_cycle_runs_with_the_collector_paused_and_turns_it_back_on() -> None:
    probe = Probe()

    report = _cycle(probe)

    assert (probe.collector_on, gc.isenabled(), report.in_flight) == ([False], True, 0)


def test_a_failed_cycle_turns_the_collector_back_on() -> None:
    probe = Probe(fail=True)

    with pytest.raises(RuntimeError, match="could not be queried"):
        _cycle(probe)

    assert (probe.collector_on, gc.isenabled()) == ([False], True)


def test_a_collector_turned_off_before_the_cycle_stays_off() -> None:
    gc.disable()

    _cycle(Probe())

    assert not gc.isenabled()


def test_the_collector_comes_back_when_the_last_of_two_concurrent_cycles_ends() -> None:
    slow, quick = Probe(hold=True), Probe()
    first = threading.Thread(target=_cycle, args=(slow,))
    first.start()
    assert slow.queried.wait(timeout=30)

    _cycle(quick)  # starts and ends while the slow cycle still runs
    during = gc.isenabled()
    slow.go.set()
    first.join(timeout=30)

    assert (slow.collector_on, quick.collector_on, during, gc.isenabled()) == (
        [False],
        [False],
        False,
        True,
    )


def test_a_second_cycle_of_the_same_poller_is_refused_while_the_first_runs() -> None:
    probe = Probe(hold=True)
    poller = _poller(probe)

    async def both() -> list[Any]:
        first = asyncio.create_task(poller.cycle(0))
        await asyncio.to_thread(probe.queried.wait, 30)
        try:
            with pytest.raises(RuntimeError, match="one cycle at a time"):
                await poller.cycle(1)
        finally:
            probe.go.set()
        return [await first, await poller.cycle(1)]  # and once the first is over, it runs

    first, again = asyncio.run(both())

    assert (first.in_flight, again.in_flight, len(probe.collector_on)) == (0, 0, 2)
