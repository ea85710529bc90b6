"""Alert function: failures, rollbacks, stalls, rejections and recoveries, to SNS, once each."""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.typing import LambdaContext

from rollout_monitor.alerts import AlertService
from rollout_monitor.envelopes import AlertEnvelope
from rollout_monitor.observability import logger, metrics
from rollout_monitor.wiring import alert_service


@cache
def service() -> AlertService:
    return alert_service()


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    envelope = parse(event=event, model=AlertEnvelope)
    logger.append_keys(source=envelope.source, detail_type=envelope.detail_type)
    result = service().handle(envelope.detail_type, envelope.detail)
    if result.sent:  # a metric is billed per hour published: none when nothing is sent
        metrics.add_metric(name="AlertsSent", unit="Count", value=len(result.sent))
        for severity in sorted(set(result.severities)):
            count = result.severities.count(severity)
            metrics.add_metric(name=f"AlertsSent.{severity}", unit="Count", value=count)
    return result.model_dump(mode="json", exclude={"severities"})
