"""Deploy function: a ``Deploy Requested`` event becomes a tracked Cerebras deployment."""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.typing import LambdaContext

from rollout_monitor.deploy import DeployService
from rollout_monitor.envelopes import DeployEnvelope
from rollout_monitor.observability import logger, metrics
from rollout_monitor.wiring import deploy_service


@cache
def service() -> DeployService:
    return deploy_service()


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    envelope = parse(event=event, model=DeployEnvelope)
    logger.append_keys(
        event_id=envelope.id, source=envelope.source, detail_type=envelope.detail_type
    )
    result = service().handle(
        envelope.detail,
        event_id=envelope.id,
        detail_type=envelope.detail_type,
        source=envelope.source,
    )
    metrics.add_metric(name=f"Deploy_{result.outcome}", unit="Count", value=1)
    return result.model_dump(mode="json")
