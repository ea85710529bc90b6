"""Poller function: on its schedule, follows every rollout in flight until its budget ends."""

from __future__ import annotations

import asyncio
from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from rollout_monitor.observability import logger, metrics, record_cycles
from rollout_monitor.wiring import PollerContainer, poller_container


@cache
def runtime() -> PollerContainer:
    return poller_container()


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # The schedule's envelope carries nothing the poller needs, so nothing in it is checked.
    budget = runtime().budget(context.get_remaining_time_in_millis())
    reports = asyncio.run(runtime().poll(budget))
    record_cycles(reports)
    return {
        "cycles": len(reports),
        "in_flight": reports[-1].in_flight,
        "transitions": sum(r.transitions for r in reports),
        "stalls": sum(r.stalls for r in reports),
        "announced": sum(r.announced for r in reports),
    }
