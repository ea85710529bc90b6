"""Discovery's monthly cost at list prices (part of ``make cost``), from the calls one run makes.

One run of the real discovery code (``rollout_monitor.discovery``) over an org of 10, then 100
endpoints in the simulator, against the template's stack in moto, with nothing to adopt (the
steady case: every month but the minutes a rollout is found). Its AWS calls are counted by a
botocore hook, its Cerebras calls by the simulator. A run happens inside the schedule's poller
invocation every ``DiscoveryMinutes``, so it adds billed duration (its calls at the poller's
concurrency, ``prices.concurrent_ms``), its table reads and writes, and no request.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from benchmarks.prices import (
    DYNAMODB_READ_UNIT,
    DYNAMODB_WRITE_UNIT,
    HOURS_PER_MONTH,
    LAMBDA_GB_SECOND,
    CallTimes,
    billed_ms,
    concurrent_ms,
    gb_seconds,
)
from benchmarks.world import World, build_world
from rollout_monitor.cerebras.credentials import build_async_client
from rollout_monitor.discovery import Discovery, DiscoveryScope
from rollout_monitor.wiring import DISCOVERY_SLOTS
from rollout_monitor_local.clock import ManualClock

DISCOVERY_MINUTES = 5  # the template's default
FLEETS = (10, 100)
ORG = "my-org"


@contextmanager
def _counted(world: World) -> Iterator[Counter[str]]:
    calls: Counter[str] = Counter()

    def count(model: Any, **_: Any) -> None:
        calls[model.name] += 1

    clients = [world.poller.store.deployments._table.client, world.poller.publisher._client]
    for client in clients:
        client.meta.events.register("before-call", count)
    try:
        yield calls
    finally:
        for client in clients:
            client.meta.events.unregister("before-call", count)


def one_run(endpoints: int) -> tuple[Counter[str], int, int]:
    """The AWS calls, Cerebras listings and endpoint reads of one discovery run."""
    clock = ManualClock(1_767_225_600.0)
    with build_world(clock) as world:
        for n in range(endpoints - len(world.simulator.endpoints)):
            world.simulator.add_endpoint(f"{ORG}-fleet-{n}", "llama-3.3-70b")
        container = world.poller
        before = len(world.simulator.requests)
        with _counted(world) as calls:
            container.store.poll_slots.claim(DISCOVERY_SLOTS, 1)

            async def run() -> None:
                client = build_async_client(container.cerebras, 10)
                try:
                    await Discovery(
                        DiscoveryScope((ORG,)),
                        client,
                        container.store.deployments,
                        container.store.endpoints,
                        container.publisher,
                        asyncio.to_thread,
                        now=clock.now,
                    ).discover()
                finally:
                    await client.aclose()

            asyncio.run(run())
        paths = [r.path for r in list(world.simulator.requests)[before:]]
        listings = sum(1 for p in paths if p.endswith("/endpoints") and "/orgs/" in p)
        return Counter(calls), listings, len(paths) - listings


TIMES = CallTimes()


def monthly(endpoints: int, memory_mb: int, times: CallTimes = TIMES) -> dict[str, float]:
    calls, listings, reads = one_run(endpoints)
    runs = HOURS_PER_MONTH * 60 / DISCOVERY_MINUTES
    aws = sum(calls.values())
    duration = concurrent_ms(aws, {}, reads, times) + listings * times.cerebras_ms
    writes = calls["UpdateItem"]  # the run's slot claim: one small item, 1 write unit
    queries = calls["Query"]  # the InFlight index, empty: half a read unit each
    return {
        "runs": runs,
        "aws_calls": aws,
        "cerebras_calls": listings + reads,
        "lambda": runs * gb_seconds(billed_ms(duration), memory_mb) * LAMBDA_GB_SECOND,
        "dynamodb": runs * (writes * DYNAMODB_WRITE_UNIT + queries * 0.5 * DYNAMODB_READ_UNIT),
    }


def print_sheet(memory_mb: int) -> None:
    print(
        f"discovery, every {DISCOVERY_MINUTES} min (one run counted per fleet, nothing to adopt;"
        " inside the schedule's poller invocation: no request of its own)"
    )
    for endpoints in FLEETS:
        cost = monthly(endpoints, memory_mb)
        total = cost["lambda"] + cost["dynamodb"]
        print(
            f"  {endpoints:>3} endpoints: {cost['cerebras_calls']:.0f} Cerebras calls and "
            f"{cost['aws_calls']:.0f} AWS calls a run, {cost['runs']:.0f} runs: Lambda "
            f"${cost['lambda']:.4f} + DynamoDB ${cost['dynamodb']:.4f} = ${total:.4f} a month"
        )
    print("  (the Management API's calls are not billed by AWS: not priced here)")
