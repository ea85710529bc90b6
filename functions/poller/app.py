"""Poller function: on its schedule, follows every rollout in flight until its budget ends."""

from __future__ import annotations

import asyncio
from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext

from rollout_monitor.observability import logger, metrics, record_cycles
from rollout_monitor.poller import PollerRuntime, runtime_from_environment


@cache
def runtime() -> PollerRuntime:
    return runtime_from_environment()


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    parse(event=event, model=EventBridgeModel)  # the Scheduled Event envelope
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
