"""Poller cycle time: concurrent status reads against a sequential baseline, in one run.

50 deployments on 5 endpoints; the simulator answers each status read after 50 ms (its
latency fault), so the cycle is dominated by Cerebras round trips, as on AWS. The baseline is
the same poller with ``max_concurrency=1``. Prints the median of 5 cycles each and the ratio.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time

import boto3
import httpx
from moto import mock_aws
from pydantic import SecretStr

from rollout_monitor.bus import EventPublisher
from rollout_monitor.cerebras.client import AsyncCerebrasClient, CerebrasClient
from rollout_monitor.deploy import DeployService
from rollout_monitor.poller import Poller
from rollout_monitor.rules import StallPolicy
from rollout_monitor.store import Tables
from rollout_monitor_local.clock import ManualClock
from rollout_monitor_local.server import serve
from rollout_monitor_local.simulator import DEFAULT_KEY, Fault, FaultKind, Simulator
from rollout_monitor_local.stack import create_stack

ENDPOINTS = 5
PER_ENDPOINT = 10
LATENCY = 0.05
ROUNDS = 5


def main() -> None:
    os.environ.update(
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        POWERTOOLS_METRICS_DISABLED="true",
    )
    clock = ManualClock()
    simulator = Simulator(clock=clock)
    with mock_aws(), serve(simulator.app) as url:
        stack = create_stack()
        store = Tables.over(boto3.client("dynamodb"), stack.outputs["TableName"], 86_400)
        publisher = EventPublisher(stack.outputs["EventBusName"], boto3.client("events"))
        deploy = DeployService(
            requests=store.requests,
            endpoints=store.endpoints,
            deployments=store.deployments,
            cerebras=CerebrasClient(SecretStr(DEFAULT_KEY), base_url=url),
            publisher=publisher,
            now=clock.now,
        )
        endpoints = [f"bench-{n}" for n in range(ENDPOINTS)]
        for endpoint_id in endpoints:
            simulator.add_endpoint(endpoint_id, "llama-3.3-70b")
            for n in range(PER_ENDPOINT):
                detail = {
                    "endpoint_id": endpoint_id,
                    "model": "orgs/my-org/models/llama-3.3-70b/versions/stalls",
                    "request_id": f"{endpoint_id}-{n}",
                    "force": True,
                }
                deploy.handle(detail, event_id=f"{endpoint_id}-{n}")
        results = {}
        for label, concurrency in (("sequential (baseline)", 1), ("concurrent", 10)):
            results[label] = statistics.median(
                asyncio.run(_cycle(store, publisher, simulator, clock, concurrency))
                for _ in range(ROUNDS)
            )
    base = results["sequential (baseline)"]
    for label, seconds in results.items():
        print(f"{label:>22}: {seconds * 1000:7.1f} ms per cycle")
    print(
        f"{ENDPOINTS * PER_ENDPOINT} deployments on {ENDPOINTS} endpoints, {LATENCY * 1000:.0f} ms "
        f"per status read: concurrent is {base / results['concurrent']:.1f}x faster"
    )


async def _cycle(
    store: Tables,
    publisher: EventPublisher,
    simulator: Simulator,
    clock: ManualClock,
    concurrency: int,
) -> float:
    simulator.inject(Fault(FaultKind.LATENCY, times=ENDPOINTS, seconds=LATENCY))
    client = AsyncCerebrasClient(
        SecretStr(DEFAULT_KEY),
        base_url="http://simulator",
        transport=httpx.ASGITransport(app=simulator.app),
    )
    poller = Poller(
        store.deployments,
        store.endpoints,
        client,
        publisher,
        StallPolicy(),
        max_concurrency=concurrency,
        now=clock.now,
    )
    started = time.perf_counter()
    await poller.cycle()
    elapsed = time.perf_counter() - started
    await client.aclose()
    return elapsed


if __name__ == "__main__":
    main()
