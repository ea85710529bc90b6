"""Monthly cost at AWS list prices (``make cost``): the deployed design beside the old one, from
operations counted in runs of the template's stack (``benchmarks/meter.py``), priced by
``benchmarks/prices.py``.

Each design runs on its own stack in moto with the simulator, on a virtual clock:

(a) an idle hour: nothing in flight, the schedule every minute;
(b) 100 rollouts of 15 min, requested together on the bus (one in ten rolls back at the end);
(c) one rollout that stalls: 35 min from its request (the stall is announced at 30 min), then
    a steady hour.

A month is (a) x 730 h; (b) and its window, the rest of the month idle; (c)'s first 35 min,
then its steady hour for the rest of the month. The old design is today's cycle code driven
on the old topology (one scheduled invocation a minute cycling at 0, 10, 20 and 30 s while
anything is in flight, billed for all of it; no queue, no slot claims, no deploy kick), with
the old code's differences applied to what is counted: one PutEvents per record, replica
progress written as a one-item transaction, and the metrics its ``record_cycles`` published
on every invocation (serialised by Powertools, so their bytes are counted too).
"""

from __future__ import annotations

import asyncio
import io
import json
import math
import os
import platform
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from contextlib import redirect_stdout

import boto3
from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import (
    AmazonCloudWatchEMFProvider,
)

from benchmarks import costsheet, discovery
from benchmarks.costsheet import Phase
from benchmarks.meter import CLIENT, Meter
from benchmarks.prices import PRICES_AS_OF, REGION, fixed_resources, item_bytes
from benchmarks.world import DEPLOY, POLLER, World, build_world, sample_event
from rollout_monitor.poller import CycleReport
from rollout_monitor.store.items import shard_of
from rollout_monitor_local.clock import ManualClock
from rollout_monitor_local.simulator import Scenario, Step
from rollout_monitor_local.stack import DEFAULT_TEMPLATE, load_sam_template

ROLLOUTS = 100
ROLLBACK_EVERY = 10
STALL_WINDOW_SECONDS = 35 * 60
STEADY_SECONDS = 3600.0  # a whole hour: its metric-hours are an hour's
SCHEDULE_SECONDS = 60.0
OLD_CYCLE_OFFSETS = (0.0, 10.0, 20.0, 30.0)
ROLLBACK = "error rate over budget on new replicas"
_PROGRESS = (Step(0, "not_started", 0), Step(60, "in_progress", 1), Step(300, "in_progress", 2))
FIFTEEN_MINUTES = Scenario(
    "fifteen-minutes",
    (*_PROGRESS, Step(540, "in_progress", 3), Step(780, "in_progress", 4), Step(900, "done", 4)),
)
FIFTEEN_MINUTES_ROLLED_BACK = Scenario(
    "fifteen-minutes-rolled-back",
    (
        *_PROGRESS,
        Step(540, "in_progress", 3),
        Step(780, "rolling_back", 2, ROLLBACK),
        Step(900, "rolled_back", 0, ROLLBACK),
    ),
)


class _NoQueue:
    """The old design had no poll queue."""

    def start(self, shard: int, delay_seconds: int) -> None:
        del shard, delay_seconds


class Design:
    """Drives one design's stack on its virtual clock and meters it."""

    name = ""

    def __init__(self, world: World, meter: Meter) -> None:
        self.world = world
        self.meter = meter
        self.clock = world.clock
        self.next_schedule = self.clock.now()

    def run_until(self, until: float) -> None:
        raise NotImplementedError

    def advance(self, to: float) -> None:
        assert isinstance(self.clock, ManualClock)
        self.clock.advance(max(to - self.clock.now(), 0.0))


class New(Design):
    """The deployed topology: the poll queue's messages when due, in batches of the event
    source's size, and the schedule each minute; a deploy kicks the chain."""

    name = "new"

    def __init__(self, world: World, meter: Meter) -> None:
        super().__init__(world, meter)
        queue = meter.queue(world.queue)
        world.poller.trigger = queue
        shards = world.poller.settings.poll_shards
        world.runtimes[DEPLOY].module.service().poll_now = lambda endpoint_id: queue.start(
            shard_of(endpoint_id, shards), 0
        )

    def run_until(self, until: float) -> None:
        while self.clock.now() < until:
            events = self.world.due_poll_events()
            if self.clock.now() >= self.next_schedule:
                events.append(sample_event("scheduled-poll.json"))
                self.next_schedule += SCHEDULE_SECONDS
            for event in events:
                self.world.runtimes[POLLER].invoke(event)
            self.world.router.settle()
            queued = self.world.queue.next_due()
            self.advance(min(t for t in (queued, self.next_schedule, until) if t is not None))


class Old(Design):
    """The old topology, on today's cycle: one invocation a minute, cycling every 10 s for
    40 s while anything is in flight, sleeping (and billed) in between."""

    name = "old"

    def __init__(self, world: World, meter: Meter) -> None:
        super().__init__(world, meter)
        world.poller.trigger = _NoQueue()
        world.runtimes[DEPLOY].module.service().poll_now = lambda _endpoint_id: None

    def run_until(self, until: float) -> None:
        while self.clock.now() < until:
            if self.clock.now() >= self.next_schedule:
                self._invocation()
                self.next_schedule += SCHEDULE_SECONDS
            self.world.router.settle()
            self.advance(min(self.next_schedule, until))

    def _invocation(self) -> None:
        started = self.clock.now()
        with self.meter.invocation(POLLER, "schedule") as invocation:
            for offset in OLD_CYCLE_OFFSETS:
                self.advance(started + offset)
                invocation.cycle_starts.append((offset, len(invocation.calls)))
                report = asyncio.run(self.world.poller.cycle(0))
                invocation.reports.append(report)
                invocation.cerebras += report.status_requests
                if report.in_flight == 0:
                    break
            print(old_metrics(invocation.reports), end="")  # the meter reads it as EMF


def old_metrics(reports: list[CycleReport]) -> str:
    """The EMF lines the old ``record_cycles`` printed (git 6de525b): seven counts and every
    cycle's duration, zero or not, on every invocation; read latencies when any (Powertools
    prints a metric's first 100 values at once)."""
    printed = io.StringIO()
    emf = AmazonCloudWatchEMFProvider(namespace="CerebrasRolloutMonitor", service="rollout-monitor")
    with redirect_stdout(printed):
        emf.add_metric("DeploymentsInFlight", "Count", reports[-1].in_flight)
        emf.add_metric("Cycles", "Count", len(reports))
        for name, value in (
            ("Transitions", sum(r.transitions for r in reports)),
            ("Stalls", sum(r.stalls for r in reports)),
            ("UnknownStatuses", sum(r.unknown_statuses for r in reports)),
            ("PublishFailures", sum(r.publish_failures for r in reports)),
            ("RecordFailures", sum(r.record_failures for r in reports)),
        ):
            emf.add_metric(name, "Count", value)
        errors: Counter[str] = Counter()
        for report in reports:
            errors.update(report.poll_errors)
        for kind, count in errors.items():
            emf.add_metric(f"PollErrors.{kind}", "Count", count)
        for report in reports[:100]:
            emf.add_metric("CycleDuration", "Milliseconds", report.duration_ms)
        for ms in [ms for r in reports for ms in r.read_latencies_ms][:100]:
            emf.add_metric("StatusReadLatency", "Milliseconds", ms)
    if emf.metric_set:
        printed.write(json.dumps(emf.serialize_metric_set()) + "\n")
        emf.clear_metrics()
    return printed.getvalue()


# -- the runs ---------------------------------------------------------------------------------


def measure(design_class: type[Design]) -> tuple[dict[str, Phase], int]:
    """The three runs on one design's stack: its phases, and the functions' memory (MB)."""
    start = float(math.ceil(time.time() / 3600) * 3600)
    clock = ManualClock(start)
    meter = Meter(clock)
    with build_world(
        clock,
        metrics=True,
        log_stream=meter.log_stream(),
        before_functions=meter.register,
        around=meter.around,
    ) as world:
        meter.simulator = world.simulator
        design = design_class(world, meter)
        for n in range(ROLLOUTS):
            world.simulator.add_endpoint(f"cost-{n}", "llama-3.3-70b")
        world.simulator.add_endpoint("stalled", "llama-3.3-70b")
        phases = {"idle": _phase(design, lambda: design.run_until(start + 3600))}
        phases["burst"] = _phase(design, lambda: _burst(design))
        phases["stall"] = _phase(design, lambda: _stall(design))
        phases["steady"] = _phase(design, lambda: design.run_until(clock.now() + STEADY_SECONDS))
        memory: int = world.stack.template["Resources"]["PollerFunction"]["Properties"][
            "MemorySize"
        ]
    return phases, memory


def _phase(design: Design, run: Callable[[], None]) -> Phase:
    mark, start = len(design.meter.invocations), design.clock.now()
    run()
    return Phase(
        design.meter.invocations[mark:],
        start,
        design.clock.now() - start,
        _stored_bytes(design.world),
    )


def _burst(design: Design) -> None:
    """100 rollouts requested at once; run until every one has ended and the chain too."""
    world = design.world
    with design.meter.invocation(CLIENT, "ci"):
        for n in range(ROLLOUTS):
            world.request(f"cost-{n}", "stalls", f"cost-{n}")
    world.router.settle()  # the deploy function runs for each
    for n in range(ROLLOUTS):
        rolls_back = n % ROLLBACK_EVERY == ROLLBACK_EVERY - 1
        deployment = world.simulator.endpoints[f"cost-{n}"].deployments[-1]
        deployment.scenario = FIFTEEN_MINUTES_ROLLED_BACK if rolls_back else FIFTEEN_MINUTES
    deadline = design.clock.now() + 3600
    while design.clock.now() < deadline:
        design.run_until(design.clock.now() + SCHEDULE_SECONDS)
        if not world.poller.store.deployments.in_flight() and not world.queue.waiting():
            break


def _stall(design: Design) -> None:
    with design.meter.invocation(CLIENT, "ci"):
        design.world.request("stalled", "stalls", "cost-stalled")
    design.world.router.settle()
    design.run_until(design.clock.now() + STALL_WINDOW_SECONDS)


def _stored_bytes(world: World) -> int:
    """The table and its index as DynamoDB stores them (100 bytes of overhead an item)."""
    pages = (
        boto3.client("dynamodb")
        .get_paginator("scan")
        .paginate(TableName=world.stack.outputs["TableName"])
    )
    total = 0
    for page in pages:
        for item in page["Items"]:
            size = item_bytes(item) + 100
            total += 2 * size if "in_flight" in item else size
    return total


def main() -> None:
    began, load = time.perf_counter(), os.getloadavg()[0]
    measured = {design.name: measure(design) for design in (New, Old)}
    memory = measured["new"][1]
    months = {
        name: costsheet.months(phases, name, memory) for name, (phases, _) in measured.items()
    }
    print(f"Monthly cost at AWS list prices, {REGION}, as of {PRICES_AS_OF} (make cost)")
    print(
        f"machine: {os.cpu_count()} cores, {platform.machine()}, Python "
        f"{platform.python_version()}, load average {load:.2f}; counted in "
        f"{time.perf_counter() - began:.0f} s"
    )
    print(
        "counted in runs of the template's stack (moto, the simulator, a virtual clock): an idle "
        f"hour; {ROLLOUTS} rollouts of 15 min"
    )
    print(
        f"requested together (1 in {ROLLBACK_EVERY} rolls back); one rollout stalled (35 min, "
        f"then a steady hour); functions of {memory} MB"
    )
    print()
    idle_month = costsheet.print_sheet(months)
    print()
    costsheet.print_fixed(fixed_resources(load_sam_template(DEFAULT_TEMPLATE)))
    print()
    discovery.print_sheet(memory)
    print()
    costsheet.print_counts(months)
    print()
    burst = {name: phases["burst"] for name, (phases, _) in measured.items()}
    new_busy = costsheet.busy_minutes(burst["new"], "new", ROLLOUTS)
    old_busy = costsheet.busy_minutes(burst["old"], "old", ROLLOUTS)
    one_by_one = costsheet.busy_minutes(
        burst["new"], "new", ROLLOUTS, costsheet.sequential_charged_ms
    )
    busy = statistics.fmean(new_busy)
    print(
        f"billed poller seconds per busy minute, {ROLLOUTS} deployments in flight "
        f"({len(new_busy)} minutes): new {busy:.2f} s (worst minute {max(new_busy):.2f} s), "
        f"old {statistics.fmean(old_busy):.2f} s;"
    )
    print(
        f"  new with every AWS call of a cycle made one after the other: "
        f"{statistics.fmean(one_by_one):.2f} s (worst {max(one_by_one):.2f} s)"
    )
    met_idle = idle_month <= costsheet.IDLE_MONTH_TARGET
    met_busy = busy <= costsheet.BUSY_MINUTE_TARGET_SECONDS
    print(
        f"targets: idle month's data path ${idle_month:.4f} <= ${costsheet.IDLE_MONTH_TARGET:.2f}"
        f": {'met' if met_idle else 'MISSED'}; busy minute {busy:.2f} s <= "
        f"{costsheet.BUSY_MINUTE_TARGET_SECONDS:.0f} s: {'met' if met_busy else 'MISSED'}"
    )
    print()
    costsheet.print_assumptions()
    if not (met_idle and met_busy):
        sys.exit(1)


if __name__ == "__main__":
    main()
