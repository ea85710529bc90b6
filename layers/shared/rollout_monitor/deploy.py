"""The deploy path: a ``Deploy Requested`` detail becomes one Cerebras deployment, once.

Exactly once rests on three conditional writes (see ``docs/decisions.md``):

1. the request is claimed by ``request_id``: a duplicate delivery finds the claim and returns
   the first result (waiting briefly while the first delivery is still at work);
2. the endpoint is held by one request at a time: another is rejected as ``endpoint_busy``
   unless ``force``;
3. the record, its history, the request's result and the endpoint's holder are written in one
   transaction. A delivery that takes over an interrupted claim first looks for the deployment
   on the endpoint (reconcile) and adopts it instead of deploying again.

Permanent refusals become ``Deployment Rejected``; transient failures propagate, so Lambda
retries the event and its dead-letter queue keeps it if they all fail.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import BaseModel, ValidationError

from rollout_monitor.cerebras.errors import (
    CerebrasAuthenticationError,
    CerebrasRefusedError,
)
from rollout_monitor.cerebras.models import DeployedModel, DeployOperation, EndpointStatus
from rollout_monitor.cerebras.status import normalise_status
from rollout_monitor.events import (
    MAX_REQUEST_ID,
    REQUEST_ID_PATTERN,
    DeploymentRejected,
    DeploymentSubmitted,
    DeployRequested,
    OutboundDetail,
    RejectionReason,
    dump_pending,
    load_pending,
)
from rollout_monitor.store import DeploymentRecord, DeploymentStore, RequestClaim, RequestState

logger = logging.getLogger(__name__)

RECONCILE_SKEW_SECONDS = 120.0


class DeployApi(Protocol):
    def deploy_model(self, endpoint_id: str, model: str) -> DeployOperation: ...
    def get_endpoint(self, endpoint_id: str) -> EndpointStatus: ...


class Publisher(Protocol):
    def publish(self, details: list[OutboundDetail]) -> None: ...


class RequestInProgressError(Exception):
    """Another delivery of the same request is still at work: retry later."""


class DeployResult(BaseModel):
    """What the function returns: the decision, and the event that announced it."""

    request_id: str
    outcome: str  # "submitted" | "rejected"
    deployment_id: str | None = None
    reason: str | None = None
    duplicate: bool = False


@dataclass
class DeployService:
    store: DeploymentStore
    cerebras: DeployApi
    publisher: Publisher
    now: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
    lease_seconds: float = 60.0
    duplicate_wait_seconds: float = 10.0
    duplicate_poll_seconds: float = 0.2

    def handle(self, detail: Mapping[str, Any], event_id: str) -> DeployResult:
        """Decide one ``Deploy Requested`` detail; ``event_id`` is the EventBridge event id."""
        request_id = _request_id(detail, event_id)
        try:
            request = DeployRequested.model_validate(detail)
        except ValidationError as exc:
            return self._reject_invalid(request_id, detail, exc)
        owned, claim = self.store.claim_request(
            request_id, request.endpoint_id, request.model, self.now(), self.lease_seconds
        )
        if not owned:
            return self._duplicate(claim)
        try:
            return self._deploy(request, request_id, claim)
        except Exception:
            self.store.interrupt_request(request_id, claim.claimed_at)
            raise

    # -- the first delivery -------------------------------------------------------------------

    def _deploy(
        self, request: DeployRequested, request_id: str, claim: RequestClaim
    ) -> DeployResult:
        holder = self.store.claim_endpoint(
            request.endpoint_id,
            request_id,
            claim.claimed_at,
            force=request.force,
            stale_after=self.lease_seconds,
        )
        if holder is not None and self._finished(holder.deployment_id):
            # Its rollout ended but the poller had not freed the endpoint yet.
            holder = self.store.claim_endpoint(
                request.endpoint_id,
                request_id,
                claim.claimed_at,
                force=True,
                stale_after=self.lease_seconds,
            )
        if holder is not None:
            blocking = holder.deployment_id or f"request {holder.request_id}"
            return self._reject(
                request,
                request_id,
                RejectionReason.ENDPOINT_BUSY,
                f"endpoint {request.endpoint_id} already has a rollout in flight: {blocking}; "
                "send force=true to deploy anyway",
                blocking_deployment_id=holder.deployment_id,
            )
        adopted = self._reconcile(request, claim) if claim.taken_over else None
        if adopted is not None:
            record = adopted
        else:
            try:
                operation = self.cerebras.deploy_model(request.endpoint_id, request.model)
            except CerebrasRefusedError as exc:
                self.store.release_endpoint(request.endpoint_id, request_id)
                return self._refused(request, request_id, exc)
            record = _record_from_operation(operation, request, request_id, self.now())
        submitted = _submitted(record, adopted=adopted is not None)
        self.store.record_submission(
            record,
            dump_pending(submitted),
            in_flight=not normalise_status(record.status).terminal,
        )
        logger.info(
            "deployment submitted",
            extra={
                "deployment_id": record.deployment_id,
                "endpoint_id": record.endpoint_id,
                "request_id": request_id,
                "adopted": adopted is not None,
            },
        )
        self._announce(request_id, submitted)
        return DeployResult(
            request_id=request_id, outcome="submitted", deployment_id=record.deployment_id
        )

    def _finished(self, deployment_id: str | None) -> bool:
        record = None if deployment_id is None else self.store.get_deployment(deployment_id)
        return record is not None and record.terminal

    def _reconcile(self, request: DeployRequested, claim: RequestClaim) -> DeploymentRecord | None:
        """Find a deployment an interrupted delivery made, before deploying again."""
        status = self.cerebras.get_endpoint(request.endpoint_id)
        since = (claim.first_claimed_at or claim.claimed_at) - RECONCILE_SKEW_SECONDS
        candidates = [
            m
            for m in status.deployed_models
            if m.model == request.model
            and m.created >= since
            and self.store.get_deployment(m.id) is None
        ]
        if not candidates:
            return None
        found = max(candidates, key=lambda m: m.created)
        logger.warning(
            "adopting a deployment an interrupted delivery made",
            extra={"deployment_id": found.id, "request_id": claim.request_id},
        )
        return _record_from_listing(found, status, request, claim.request_id, self.now())

    # -- duplicates -----------------------------------------------------------------------------

    def _duplicate(self, claim: RequestClaim) -> DeployResult:
        deadline = self.now() + self.duplicate_wait_seconds
        current: RequestClaim | None = claim
        while current is not None and not current.finished and self.now() < deadline:
            self.sleep(self.duplicate_poll_seconds)
            current = self.store.get_request(claim.request_id)
        if current is None or not current.finished:
            raise RequestInProgressError(
                f"request {claim.request_id} is being handled by another delivery"
            )
        if not current.announced and current.event is not None:
            self._announce(current.request_id, load_pending(current.event))
        logger.info("duplicate deploy request", extra={"request_id": current.request_id})
        return DeployResult(
            request_id=current.request_id,
            outcome="submitted" if current.state == RequestState.SUBMITTED else "rejected",
            deployment_id=current.deployment_id,
            duplicate=True,
        )

    # -- rejections -----------------------------------------------------------------------------

    def _reject_invalid(
        self, request_id: str, detail: Mapping[str, Any], exc: ValidationError
    ) -> DeployResult:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'detail'}: {e['msg']}" for e in exc.errors()
        )
        rejection = DeploymentRejected(
            event_id=f"rejected:{request_id}",
            endpoint_id=_text(detail.get("endpoint_id")),
            model=_text(detail.get("model")),
            request_id=request_id,
            requested_by=_text(detail.get("requested_by")),
            reason=RejectionReason.INVALID_REQUEST,
            message=f"invalid deploy request: {problems}"[:1000],
            rejected_at=self.now(),
        )
        return self._finish_rejection(request_id, rejection)

    def _refused(
        self, request: DeployRequested, request_id: str, exc: CerebrasRefusedError
    ) -> DeployResult:
        reason = (
            RejectionReason.AUTHENTICATION_FAILED
            if isinstance(exc, CerebrasAuthenticationError)
            else RejectionReason.CEREBRAS_REFUSED
        )
        return self._reject(
            request,
            request_id,
            reason,
            f"Cerebras refused the deployment with {exc.status_code}",
            status_code=exc.status_code,
            cerebras_detail=exc.detail,
        )

    def _reject(
        self,
        request: DeployRequested,
        request_id: str,
        reason: RejectionReason,
        message: str,
        **extra: Any,
    ) -> DeployResult:
        rejection = DeploymentRejected(
            event_id=f"rejected:{request_id}",
            endpoint_id=request.endpoint_id,
            model=request.model,
            request_id=request_id,
            requested_by=request.requested_by,
            reason=reason,
            message=message,
            rejected_at=self.now(),
            **extra,
        )
        return self._finish_rejection(request_id, rejection)

    def _finish_rejection(self, request_id: str, rejection: DeploymentRejected) -> DeployResult:
        self.store.finish_rejected(request_id, dump_pending(rejection), self.now())
        logger.info(
            "deploy request rejected",
            extra={"request_id": request_id, "reason": rejection.reason.value},
        )
        self._announce(request_id, rejection)
        return DeployResult(request_id=request_id, outcome="rejected", reason=rejection.reason)

    def _announce(self, request_id: str, detail: OutboundDetail) -> None:
        self.publisher.publish([detail])
        self.store.mark_announced(request_id)


def _request_id(detail: Mapping[str, Any], event_id: str) -> str:
    """The request's idempotency key; the event id when it has none (or an unusable one)."""
    given = detail.get("request_id")
    if (
        isinstance(given, str)
        and len(given) <= MAX_REQUEST_ID
        and re.fullmatch(REQUEST_ID_PATTERN, given)
    ):
        return given
    return event_id


def _text(value: Any, limit: int = 256) -> str | None:
    if value is None:
        return None
    text = "".join(ch for ch in str(value) if ch.isprintable())
    return text[:limit]


def _submitted(record: DeploymentRecord, *, adopted: bool) -> DeploymentSubmitted:
    return DeploymentSubmitted(
        event_id=f"{record.deployment_id}:submitted",
        deployment_id=record.deployment_id,
        endpoint_id=record.endpoint_id,
        model=record.model,
        org_name=record.org_name,
        model_arch_id=record.model_arch_id,
        version_id=record.version_id,
        request_id=record.request_id,
        requested_by=record.requested_by,
        reason=record.reason,
        rollout_status=record.status,
        submitted_at=record.submitted_at,
        adopted=adopted,
    )


def _record_from_operation(
    operation: DeployOperation, request: DeployRequested, request_id: str, now: float
) -> DeploymentRecord:
    metadata = operation.response
    status = metadata.status
    return DeploymentRecord(
        deployment_id=operation.name,
        endpoint_id=metadata.endpoint_id,
        org_name=metadata.org_name,
        model_arch_id=metadata.model_arch_id,
        version_id=metadata.version_id,
        model=request.model,
        version_alias=request.version.version_alias,
        request_id=request_id,
        requested_by=request.requested_by,
        reason=request.reason,
        submitted_at=now,
        status=status.value,
        status_known=status.known,
        updated_replicas=metadata.updated_replicas,
        total_replicas=metadata.total_replicas,
        max_unavailable=metadata.max_unavailable,
        error_message=metadata.error_message,
        last_observed_at=now,
        last_progress_at=now,
        terminal_at=now if status.terminal else None,
        api_response=operation.to_json_dict(),
    )


def _record_from_listing(
    found: DeployedModel,
    endpoint: EndpointStatus,
    request: DeployRequested,
    request_id: str,
    now: float,
) -> DeploymentRecord:
    version = request.version
    status = found.status
    return DeploymentRecord(
        deployment_id=found.id,
        endpoint_id=endpoint.name,
        org_name=endpoint.managing_org_name,
        model_arch_id=endpoint.model_arch_id,
        version_id=int(version.version) if version.version.isdigit() else version.version,
        model=request.model,
        version_alias=found.version_alias or version.version_alias,
        request_id=request_id,
        requested_by=request.requested_by,
        reason=request.reason,
        submitted_at=float(found.created),
        status=status.value,
        status_known=status.known,
        updated_replicas=found.updated_replicas,
        total_replicas=found.total_replicas,
        error_message=found.error_message,
        last_observed_at=now,
        last_progress_at=now,
        terminal_at=now if status.terminal else None,
        api_response={"adopted_from_endpoint_status": found.to_json_dict()},
    )


def service_from_environment() -> DeployService:
    """The service wired to AWS and Cerebras as the function's environment says."""
    from rollout_monitor.bus import EventPublisher  # noqa: PLC0415
    from rollout_monitor.cerebras.credentials import CerebrasSettings, build_client  # noqa: PLC0415
    from rollout_monitor.config import DeploySettings  # noqa: PLC0415

    settings = DeploySettings()
    return DeployService(
        store=DeploymentStore(settings.table_name, settings.retention_seconds),
        cerebras=build_client(CerebrasSettings()),
        publisher=EventPublisher(settings.event_bus_name),
        lease_seconds=settings.request_lease_seconds,
    )
