"""Detection latency (``make bench-latency``): the deployed trigger topology against the old one,
on the local stack and the system clock, over the same scripted rollouts, in one run.

48 rollouts on 48 endpoints, deployed over 30 s; each status lasts 20 s or 40 s (the first one
20 to 30 s, so that every rollout's changes fall at its own offset within the 10 s poll
interval, spread evenly over it). Two passes run at once, each in its own process with its
own moto, simulator and functions:

- new: every poll-queue message is delivered when due as its own poller invocation (in
  batches of the event source's size), the schedule's event every minute, a deploy's kick;
- old: the schedule's invocation every minute, cycling at 0, 10, 20 and 30 s of it while
  anything is in flight, then nothing until the next minute.

Latency is measured from the scripted change (the simulator answers the new status from
then on) to ``observed_at`` of its ``Rollout Status Changed`` event: the poller's clock once
its cycle's status reads returned, which is what the topology decides. The time PutEvents
accepted the event is printed beside it; the difference is the cycle's writes, slow in moto
(its TransactWriteItems deep-copies every table). The run fails unless the new topology's p95
is at most 12 s and it missed no change.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import platform
import sys
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from contextlib import redirect_stdout
from dataclasses import dataclass, field
from multiprocessing import get_context
from typing import Any

import boto3

from benchmarks.figures import (
    Announcement,
    Detection,
    ScriptedChange,
    detections,
    percentile,
    scripted_changes,
    started_before,
)
from benchmarks.world import POLLER, NullStream, World, build_world, sample_event
from rollout_monitor_local.clock import SystemClock
from rollout_monitor_local.simulator import SCENARIOS, Scenario, Step

ROLLOUTS = 48
STAGGER_SECONDS = 30.0
SCHEDULE_SECONDS = 60.0  # the template's PollSchedule, rate(1 minute)
OLD_CYCLE_OFFSETS = (0.0, 10.0, 20.0, 30.0)  # the old invocation's cycles, in its minute
# Where in its minute the old schedule fires (EventBridge picks it): off the new chain's slot
# starts, so that the two passes' cycles seldom share this machine's two cores.
OLD_SCHEDULE_PHASE_SECONDS = 5.0
GRACE_SECONDS = 40.0  # past the last scripted change: the old topology's 30 s gap, and a cycle
TARGET_P95_SECONDS = 12.0
ROLLS_BACK_LATE = Scenario(
    "rolls-back-late",
    (
        Step(0, "not_started", 0),
        Step(20, "in_progress", 1),
        Step(40, "in_progress", 2),
        Step(60, "rolling_back", 1, "error rate over budget on new replicas"),
        Step(100, "rolled_back", 0, "error rate over budget on new replicas"),
    ),
)
PLAN = (SCENARIOS["errors"], SCENARIOS["rolls-back"], SCENARIOS["succeeds"], ROLLS_BACK_LATE)
CHANGED = "Rollout Status Changed"


@dataclass
class PassResult:
    topology: str
    detections: list[Detection]
    cycle_starts: list[float]
    invocations: int
    seconds: float


def shifted(scenario: Scenario, seconds: float) -> Scenario:
    """The scenario with every change ``seconds`` later (its first status lasts longer)."""
    steps = tuple(
        Step(s.at + seconds if s.at > 0 else 0, s.status, s.updated_replicas, s.error_message)
        for s in scenario.steps
    )
    return Scenario(scenario.name, steps, scenario.total_replicas, scenario.listed)


class _Chain:
    """The deployed topology: the poll queue's messages when due, the schedule each minute."""

    def __init__(self, world: World, start: float) -> None:
        self.world = world
        self.next_schedule = math.ceil(start / SCHEDULE_SECONDS) * SCHEDULE_SECONDS
        self.invocations = 0
        self.cycle_starts: list[float] = []

    def next_due(self) -> float:
        queued = self.world.queue.next_due()
        return self.next_schedule if queued is None else min(queued, self.next_schedule)

    def run_due(self, now: float) -> None:
        events = self.world.due_poll_events()
        if now >= self.next_schedule:
            events.append(sample_event("scheduled-poll.json"))
            self.next_schedule += SCHEDULE_SECONDS
        for event in events:
            started = time.time()
            result = self.world.runtimes[POLLER].invoke(event)
            self.invocations += 1
            if result["cycles"]:
                self.cycle_starts.append(started)


class _OldSchedule:
    """The old topology: one invocation a minute, cycling every 10 s for 40 s while anything
    is in flight (each cycle here run by today's poller, outside the chain)."""

    def __init__(self, world: World, start: float) -> None:
        self.world = world
        phase = OLD_SCHEDULE_PHASE_SECONDS
        self.minute = math.ceil((start - phase) / SCHEDULE_SECONDS) * SCHEDULE_SECONDS + phase
        self.offsets = deque(OLD_CYCLE_OFFSETS)
        self.invocations = 0
        self.cycle_starts: list[float] = []

    def next_due(self) -> float:
        return self.minute + self.offsets[0]

    def run_due(self, now: float) -> None:
        if self.offsets[0] == 0:
            self.invocations += 1
        self.cycle_starts.append(now)
        report = asyncio.run(self.world.poller.cycle(0))
        self.offsets.popleft()
        if report.in_flight == 0 or not self.offsets:  # the old run stopped here
            self.minute += SCHEDULE_SECONDS
            self.offsets = deque(OLD_CYCLE_OFFSETS)


@dataclass
class _Rollouts:
    """The scripted rollouts: deployed on time, their changes written down."""

    world: World
    interval: float
    start: float
    due: deque[tuple[float, int]] = field(default_factory=deque)
    changes: list[ScriptedChange] = field(default_factory=list)
    terminal: set[tuple[str, str]] = field(default_factory=set)

    def __post_init__(self) -> None:
        for n in range(ROLLOUTS):
            self.world.simulator.add_endpoint(f"bench-{n}", "llama-3.3-70b")
            self.due.append((self.start + n * STAGGER_SECONDS / ROLLOUTS, n))

    def deploy_next(self) -> None:
        _, n = self.due.popleft()
        scenario = PLAN[n % len(PLAN)]
        version = scenario.name if scenario.name in SCENARIOS else "stalls"
        deployment_id = self.world.deploy(f"bench-{n}", version, f"latency-{n}")
        deployment = self.world.simulator.deployment(deployment_id)
        # Its changes fall at offset n/ROLLOUTS of the interval (every phase is a multiple).
        first = deployment.created + scenario.steps[1].at
        lag = (n * self.interval / ROLLOUTS - first) % self.interval
        deployment.scenario = shifted(scenario, lag)
        steps = [(s.at, s.status) for s in deployment.scenario.steps]
        self.changes += scripted_changes(deployment_id, deployment.created, steps)
        self.terminal.add((deployment_id, steps[-1][1]))


def _record_announcements(into: list[Announcement]) -> Callable[[], None]:
    """Hooks on boto3's default session: every status event PutEvents accepted, and when."""

    def entries(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["bench_entries"] = params.get("Entries", [])

    def accepted(parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        now = time.time()
        results = parsed.get("Entries")
        if not results:
            return  # the call failed as a whole
        for entry, result in zip(context["bench_entries"], results, strict=True):
            if "ErrorCode" in result or entry["DetailType"] != CHANGED:
                continue
            detail = json.loads(entry["Detail"])
            into.append(
                Announcement(
                    detail["deployment_id"], detail["rollout_status"], now, detail["observed_at"]
                )
            )

    def register() -> None:
        assert boto3.DEFAULT_SESSION is not None
        events = boto3.DEFAULT_SESSION.events
        events.register("before-parameter-build.eventbridge.PutEvents", entries)
        events.register("after-call.eventbridge.PutEvents", accepted)

    return register


def run_pass(topology: str) -> PassResult:
    """One topology over the scripted rollouts, on the system clock (in its own process)."""
    announced: list[Announcement] = []
    began = time.time()
    with (
        redirect_stdout(NullStream()),
        build_world(SystemClock(), before_functions=_record_announcements(announced)) as world,
    ):
        interval = world.poller.settings.poll_interval_seconds
        rollouts = _Rollouts(world, interval, start=time.time() + 1)
        poller: _Chain | _OldSchedule
        if topology == "new":
            poller = _Chain(world, rollouts.start)
        else:
            world.runtimes["DeployFunction"].module.service().poll_now = lambda _: None
            poller = _OldSchedule(world, rollouts.start)
        _drive(rollouts, poller, announced)
    return PassResult(
        topology,
        detections(rollouts.changes, announced),
        poller.cycle_starts,
        poller.invocations,
        time.time() - began,
    )


def _drive(
    rollouts: _Rollouts, poller: _Chain | _OldSchedule, announced: list[Announcement]
) -> None:
    """Deploy on time and poll when due until every rollout's end is announced, or the
    grace after the last scripted change is over."""
    while True:
        now = time.time()
        if poller.next_due() <= now:
            poller.run_due(now)
            continue
        if rollouts.due and rollouts.due[0][0] <= now:
            rollouts.deploy_next()
            continue
        if not rollouts.due:
            ends = {(a.deployment_id, a.status) for a in announced}
            last = max(c.at for c in rollouts.changes)
            if rollouts.terminal <= ends or now >= last + GRACE_SECONDS:
                return
        wake = poller.next_due()
        if rollouts.due:
            wake = min(wake, rollouts.due[0][0])
        time.sleep(max(wake - time.time(), 0.0))


# -- the report ---------------------------------------------------------------------------------


def _row(label: str, result: PassResult) -> tuple[str, list[str]]:
    found = [d for d in result.detections if d.announcement is not None]
    missed = len(result.detections) - len(found)
    figures = [f"{len(result.detections):>7}", f"{missed:>6}"]
    for values in ([d.observed_after for d in found], [d.published_after for d in found]):
        figures += [f"{percentile(values, p):6.1f}" for p in (50, 95)] + [f"{max(values):6.1f}"]
    return label, figures


def _breakdown(result: PassResult) -> str:
    """Where the new topology's latency goes, on average."""
    waits, reads, writes = [], [], []
    for d in result.detections:
        if d.announcement is None:
            continue
        started = started_before(result.cycle_starts, d.announcement.observed_at)
        if started is not None:
            waits.append(started - d.change.at)
            reads.append(d.announcement.observed_at - started)
            writes.append(d.announcement.published_at - d.announcement.observed_at)
    return (
        f"new, mean: {_mean(waits):.1f} s waiting for the next cycle, {_mean(reads):.1f} s of "
        f"status reads, then {_mean(writes):.1f} s of writes before PutEvents (moto)"
    )


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else math.nan


def _missed(result: PassResult) -> str:
    lost = [d.change for d in result.detections if d.announcement is None]
    if not lost:
        return f"{result.topology}: no change missed"
    kinds = sorted({c.status for c in lost})
    lasted = sorted({round(c.lasts) for c in lost})
    return (
        f"{result.topology}: {len(lost)} changes never announced ({', '.join(kinds)}), statuses "
        f"that lasted {' or '.join(f'{s} s' for s in lasted)}, begun and ended between two cycles"
    )


def report(new: PassResult, old: PassResult, load: tuple[float, float]) -> bool:
    """Print the figures; True if the new topology meets its target."""
    print("Detection latency on the local stack, system clock (make bench-latency)")
    print(
        f"machine: {os.cpu_count()} cores, {platform.machine()}, Python "
        f"{platform.python_version()}; load average {load[0]:.2f} before, {load[1]:.2f} after"
    )
    print(
        f"{ROLLOUTS} rollouts on {ROLLOUTS} endpoints, deployed over {STAGGER_SECONDS:.0f} s: "
        f"{', '.join(s.name for s in PLAN)};"
    )
    print(
        "every status lasts 20 or 40 s (the first one 20 to 30 s); poll interval 10 s; "
        "both passes at once, a process each"
    )
    print(
        "latency (s) = observed_at of its Rollout Status Changed event (the poller's clock "
        "once its reads returned)"
    )
    print("              - the scripted change; published: when PutEvents accepted the event")
    print()
    print(f"{'':<34}{'':>14}  {'observed':^20}  {'published':^20}")
    header = "changes missed     p50    p95    max     p50    p95    max"
    print(f"{'topology':<34}{header}")
    rows = [
        _row("new: poll chain, 10 s slots", new),
        _row("old: 1/min, cycles at 0-30 s", old),
    ]
    for label, figures in rows:
        observed, published = " ".join(figures[2:5]), " ".join(figures[5:])
        print(f"{label:<34}{figures[0]} {figures[1]}  {observed}  {published}")
    print()
    print(_breakdown(new))
    print(_missed(new))
    print(_missed(old))
    print(
        f"invocations: new {new.invocations} (cycles {len(new.cycle_starts)}), old "
        f"{old.invocations} (cycles {len(old.cycle_starts)}); passes took {new.seconds:.0f} s "
        f"and {old.seconds:.0f} s"
    )
    found = [d.observed_after for d in new.detections if d.announcement is not None]
    missed = len(new.detections) - len(found)
    p95 = percentile(found, 95) if found else math.inf
    ok = p95 <= TARGET_P95_SECONDS and missed == 0
    verdict = "met" if ok else "MISSED"
    print(
        f"target (new p95 <= {TARGET_P95_SECONDS:.0f} s, none missed): {verdict} "
        f"(p95 {p95:.1f} s, {missed} missed)"
    )
    return ok


def main() -> None:
    load_before = os.getloadavg()[0]
    with ProcessPoolExecutor(max_workers=2, mp_context=get_context("spawn")) as pool:
        new, old = pool.map(run_pass, ("new", "old"))
    if not report(new, old, (load_before, os.getloadavg()[0])):
        sys.exit(1)


if __name__ == "__main__":
    main()
