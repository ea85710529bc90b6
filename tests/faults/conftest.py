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


@pytest.fixture
def proxy(simulator: Simulator) -> FaultProxy:
    return FaultProxy(simulator.app)


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
    world = make_world(simulator, proxy_url, clock, monkeypatch)
    world.runtimes["DeployFunction"].module.service().sleep = clock.advance
    return world
