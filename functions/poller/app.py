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


DISCOVERY_BUDGET_SECONDS = 20.0  # of the function's 60 s, after the cycle
FOLLOW_VERSIONS_BUDGET_SECONDS = 10.0  # after discovery


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # The schedule's envelope carries nothing the poller needs, so nothing in it is checked.
    shards = shards_in(event)
    result: dict[str, Any]
    if shards is None and runtime().settings.poll_shards > 1:
        runtime().fan_out()
        result = {"cycles": 0, "fanned_out": runtime().settings.poll_shards}
    else:
        reports = asyncio.run(runtime().poll([0] if shards is None else shards))
        record_cycles(reports, runtime().reachability.observe(reports), runtime().now())
        result = {
            "cycles": len(reports),
            "in_flight": sum(r.in_flight for r in reports),
            "transitions": sum(r.transitions for r in reports),
            "stalls": sum(r.stalls for r in reports),
            "announced": sum(r.announced for r in reports),
        }
    if shards is None:  # the schedule is discovery's cadence too, and the waits'
        result["discovered"] = _discover()
        result["versions_changed"] = _follow_versions()
    return result


def _follow_versions() -> int:
    """Each waiting deploy's version read once a schedule; a failure is logged and counted
    (metric SyncFollowFailures), never the cycle's, and the next schedule reads again."""
    try:
        report = asyncio.run(
            asyncio.wait_for(runtime().follow_versions(), FOLLOW_VERSIONS_BUDGET_SECONDS)
        )
    except Exception:
        logger.exception("following waiting versions failed")
        metrics.add_metric(name="SyncFollowFailures", unit="Count", value=1)
        return 0
    if report.failed_reads:  # emitted when non-zero: an idle month costs nothing
        metrics.add_metric(name="SyncReadFailures", unit="Count", value=report.failed_reads)
    return report.changed


def _discover() -> int:
    """This interval's discovery, if it is on; a failure is logged and counted (metric
    DiscoveryFailures), never the cycle's, and the next interval runs it again."""
    try:
        report = asyncio.run(asyncio.wait_for(runtime().discover(), DISCOVERY_BUDGET_SECONDS))
    except Exception:
        logger.exception("discovery failed")
        metrics.add_metric(name="DiscoveryFailures", unit="Count", value=1)
        return 0
    if report is None:
        return 0
    record_discovery(report)
    return len(report.adopted)
