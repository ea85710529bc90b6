"""The Logger and Metrics every handler applies the same way.

Tracer is left out on purpose: it costs about 0.35 s of cold start even when disabled, and
the functions do not trace (``docs/decisions.md``).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit

if TYPE_CHECKING:
    from rollout_monitor.discovery import DiscoveryReport
    from rollout_monitor.poller import CycleReport
    from rollout_monitor.records import Reachability

logger = Logger(service="rollout-monitor")
metrics = Metrics(namespace="CerebrasRolloutMonitor", service="rollout-monitor")
# An idle run publishes no metric on purpose (a metric is billed each hour it is published in):
# Powertools' warning about it is silenced, as its documentation shows.
warnings.filterwarnings("ignore", "No application metrics to publish*")

# The package's modules log with the standard library (``logging.getLogger(__name__)``, no
# Powertools in the domain); their parent logger writes through the same JSON handler.
logging.getLogger("rollout_monitor")
copy_config_to_registered_loggers(source_logger=logger, include={"rollout_monitor"})

# At DEBUG, botocore logs response bodies (GetSecretValue's holds the management key) and
# httpcore request headers: their loggers are capped whatever the function's log level.
CAPPED_LOGGERS = {"botocore": logging.INFO, "boto3": logging.INFO, "urllib3": logging.INFO}
CAPPED_LOGGERS |= {"s3transfer": logging.INFO, "httpcore": logging.INFO}
for _name, _level in CAPPED_LOGGERS.items():
    logging.getLogger(_name).setLevel(_level)


def record_cycles(
    reports: Sequence[CycleReport], reachability: Reachability | None = None, now: float = 0.0
) -> None:
    """The poller's metrics, from what its cycles report: only what is non-zero.

    ``CerebrasUnreachableSeconds``: how long every status read has failed, while it does
    (the CerebrasUnreachable alarm's metric).

    A custom metric is billed for each hour it is published in, so an idle monitor (nothing
    in flight, nothing failing) publishes none and costs nothing here.
    """
    counts: dict[str, float] = {
        "DeploymentsInFlight": sum(r.in_flight for r in reports),
        "Cycles": sum(1 for r in reports if r.indexed),
        "Transitions": sum(r.transitions for r in reports),
        "Stalls": sum(r.stalls for r in reports),
        "UnknownStatuses": sum(r.unknown_statuses for r in reports),
        "PublishFailures": sum(r.publish_failures for r in reports),
        "RecordFailures": sum(r.record_failures for r in reports),
    }
    if reachability is not None and reachability.failing_since is not None:
        counts["CerebrasUnreachableSeconds"] = max(now - reachability.failing_since, 1.0)
    for report in reports:
        for kind, count in report.poll_errors.items():
            name = f"PollErrors.{kind}"
            counts[name] = counts.get(name, 0) + count
        for status, count in report.transitions_by_status.items():
            name = f"Transitions.{status}"
            counts[name] = counts.get(name, 0) + count
    for name, value in counts.items():
        if value:
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    busy = [r for r in reports if r.indexed]
    for report in busy[:100]:
        metrics.add_metric(
            name="CycleDuration", unit=MetricUnit.Milliseconds, value=report.duration_ms
        )
    latencies = [ms for r in busy for ms in r.read_latencies_ms][:100]
    for ms in latencies:
        metrics.add_metric(name="StatusReadLatency", unit=MetricUnit.Milliseconds, value=ms)


def record_discovery(report: DiscoveryReport) -> None:
    """Discovery's metrics, only what is non-zero (an idle run publishes none)."""
    counts = {
        "DiscoveryAdopted": len(report.adopted),
        "DiscoveryReadFailures": report.read_failures,
    }
    for name, value in counts.items():
        if value:
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
