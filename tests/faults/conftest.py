"""The deploy path behind a fault proxy: Cerebras acts, then the answer is lost."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from rollout_monitor_local.clock import ManualClock
from rollout_monitor_local.server import serve
from rollout_monitor_local.simulator import Simulator
from tests.faults.proxy import FaultProxy
from tests.integration.conftest import World, make_world, world

__all__ = ["world"]  # the plain stack, for fault tests that need no proxy


# A read through the proxy may take over a second on a loaded machine (make test-under-load):
# the fault tests give it 3 s, and a hang outlasts that.
READ_TIMEOUT_SECONDS = 3.0


@pytest.fixture
def proxy(simulator: Simulator) -> FaultProxy:
    return FaultProxy(simulator.app, hang_seconds=2 * READ_TIMEOUT_SECONDS)


@pytest.fixture
def proxy_url(proxy: FaultProxy) -> Iterator[str]:
    with serve(proxy) as url:
        yield url


@pytest.fixture
def faulty(
    aws: None,
    simulator: Simulator,
    proxy_url: str,
    clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
) -> World:
    """The stack with Cerebras behind the proxy; the deploy function waits on the test's
    clock, so reconciliation's bounded waits take no real time."""
    world = make_world(
        simulator,
        proxy_url,
        clock,
        monkeypatch,
        environment={"CEREBRAS_TIMEOUT_SECONDS": str(READ_TIMEOUT_SECONDS)},
    )
    world.runtimes["DeployFunction"].module.service().sleep = clock.advance
    return world
