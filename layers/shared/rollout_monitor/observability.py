"""The Logger and Metrics every handler applies the same way.

Tracer is left out on purpose: it costs about 0.35 s of cold start even when disabled
(``docs/decisions.md``); Lambda's own X-Ray segment still records each invocation.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics

logger = Logger(service="rollout-monitor")
metrics = Metrics(namespace="CerebrasRolloutMonitor", service="rollout-monitor")
