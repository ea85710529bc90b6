"""The monitor's own failures are loud, on the local stack (issue 14): a stopped poller trips
the dead-man alarm; a Cerebras outage is announced once and its end once."""

from __future__ import annotations

from collections import Counter

import pytest

from rollout_monitor_local.alarms import alarm_state
from rollout_monitor_local.devstack import DevStack
from rollout_monitor_local.simulator import Fault, FaultKind
from rollout_monitor_local.story import STORIES

pytestmark = pytest.mark.e2e
STALLS = STORIES["stalls"]


def _run(stack: DevStack, seconds: float) -> None:
    deadline = stack.now() + seconds
    while stack.now() < deadline:
        stack.step()


def test_stopping_the_pollers_trigger_raises_the_dead_man_alarm() -> None:
    with DevStack(stall_after=3600) as stack:
        stack.request(STALLS.detail)
        _run(stack, 6 * 60)  # DeadManMinutes (5) of runs, every one successful
        assert alarm_state(stack.stack, "PollerDeadManAlarm", stack.now(), {}) == "OK"
        stack.schedule_enabled = False  # the trigger stops: nothing runs the poller
        _run(stack, 2 * 60)
        assert alarm_state(stack.stack, "PollerDeadManAlarm", stack.now(), {}) == "OK"
        _run(stack, 4 * 60)
        assert alarm_state(stack.stack, "PollerDeadManAlarm", stack.now(), {}) == "ALARM"
        stack.schedule_enabled = True
        _run(stack, 2 * 60)
        assert alarm_state(stack.stack, "PollerDeadManAlarm", stack.now(), {}) == "OK"


def test_a_poller_that_fails_every_run_raises_the_dead_man_alarm(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with DevStack(stall_after=3600) as stack:
        stack.request(STALLS.detail)
        _run(stack, 60)

        async def broken(shards: list[int]) -> list[object]:
            raise RuntimeError("the table is gone")

        monkeypatch.setattr(stack.poller, "poll", broken)
        _run(stack, 6 * 60)
        assert stack.seen.poller_failures
        assert alarm_state(stack.stack, "PollerDeadManAlarm", stack.now(), {}) == "ALARM"
        assert alarm_state(stack.stack, "PollerErrorsAlarm", stack.now(), {}) == "ALARM"


def test_a_cerebras_outage_is_announced_once_and_its_end_once() -> None:
    with DevStack(stall_after=3600, unreachable_after=60) as stack:
        assert stack.simulator is not None
        stack.request(STALLS.detail)
        _run(stack, 30)
        outage = Fault(FaultKind.UNAUTHORIZED, times=10**6, path_contains="/endpoints/")
        stack.simulator.inject(outage)
        _run(stack, 5 * 60)  # five times UnreachableAfterSeconds: still one announcement
        outage.times = 0
        _run(stack, 3 * 60)
        kinds = Counter(e["detail-type"] for e in stack.seen.events)
        assert kinds["Cerebras Unreachable"] == 1
        assert kinds["Cerebras Reachable"] == 1
        (down,) = [
            e["detail"] for e in stack.seen.events if e["detail-type"] == "Cerebras Unreachable"
        ]
        assert down["failing_for_seconds"] >= 60
        assert down["error_kinds"] == ["CerebrasAuthenticationError"]
        alerts = Counter((a["kind"], a["severity"]) for a in stack.seen.alerts)
        assert alerts[("cerebras_unreachable", "warning")] == 1
        assert alerts[("cerebras_reachable", "info")] == 1
        # the rollout is followed again: no rollout was lost or doubled meanwhile
        assert kinds["Rollout Lost"] == 0
