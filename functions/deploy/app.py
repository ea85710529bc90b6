"""Deploy function: a ``Deploy Requested`` event becomes a tracked Cerebras deployment; a
``Release Requested`` uploads a version first, and deploys it once synced."""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.typing import LambdaContext

from rollout_monitor.deploy import DeployResult, DeployService
from rollout_monitor.envelopes import DeployEnvelope
from rollout_monitor.events import SOURCE, DetailType
from rollout_monitor.observability import logger, metrics
from rollout_monitor.release import ReleaseService
from rollout_monitor.wiring import deploy_service, release_service


@cache
def service() -> DeployService:
    return deploy_service()


@cache
def releases() -> ReleaseService:
    return release_service(service())


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    envelope = parse(event=event, model=DeployEnvelope)
    logger.append_keys(
        event_id=envelope.id, source=envelope.source, detail_type=envelope.detail_type
    )
    result = _decide(envelope)
    metrics.add_metric(name=f"Deploy_{result.outcome}", unit="Count", value=1)
    return result.model_dump(mode="json")


def _decide(envelope: DeployEnvelope) -> DeployResult:
    """A release, a wait's end (the monitor's own event only), or a deploy request (which
    answers any other delivery with a rejection saying what is wrong)."""
    if envelope.detail_type == DetailType.RELEASE_REQUESTED.value:
        return releases().release(envelope.detail, event_id=envelope.id)
    if (
        envelope.detail_type == DetailType.MODEL_VERSION_SYNC_CHANGED.value
        and envelope.source == SOURCE
    ):
        return releases().resume(envelope.detail)
    return service().handle(
        envelope.detail,
        event_id=envelope.id,
        detail_type=envelope.detail_type,
        source=envelope.source,
    )
