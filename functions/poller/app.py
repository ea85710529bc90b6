"""Poller function: one cycle per shard and interval, started by the poll queue's chain, the
schedule (which restarts a chain that ended) or a deploy (``rollout_monitor.chain``)."""

from __future__ import annotations

import asyncio
from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from rollout_monitor.observability import logger, metrics, record_cycles, record_discovery
from rollout_monitor.trigger import shards_in
from rollout_monitor.wiring import PollerContainer, poller_container


@cache
def runtime() -> PollerContainer:
    return poller_container()


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # The schedule's envelope carries nothing the poller needs, so nothing in it is checked.
    shards = shards_in(event)
    if shards is None:  # the schedule: discovery's cadence too
        discovered = asyncio.run(runtime().discover())
        if discovered is not None:
            record_discovery(discovered)
        if runtime().settings.poll_shards > 1:
            runtime().fan_out()
            return {"cycles": 0, "fanned_out": runtime().settings.poll_shards}
        shards = [0]
    reports = asyncio.run(runtime().poll(shards))
    record_cycles(reports, runtime().reachability.observe(reports), runtime().now())
    return {
        "cycles": len(reports),
        "in_flight": sum(r.in_flight for r in reports),
        "transitions": sum(r.transitions for r in reports),
        "stalls": sum(r.stalls for r in reports),
        "announced": sum(r.announced for r in reports),
    }
