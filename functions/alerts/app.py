"""Alert function: failures, rollbacks, stalls, rejections and recoveries, to SNS, once each."""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext

from rollout_monitor.alerts import AlertService, service_from_environment
from rollout_monitor.observability import logger, metrics


@cache
def service() -> AlertService:
    return service_from_environment()


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    envelope = parse(event=event, model=EventBridgeModel)
    result = service().handle(envelope.detail_type, envelope.detail)
    metrics.add_metric(name="AlertsSent", unit="Count", value=len(result.sent))
    return result.model_dump(mode="json")
