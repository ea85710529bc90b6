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
from typing import Any

from pydantic import BaseModel, ValidationError

from rollout_monitor.cerebras.errors import CerebrasAuthenticationError, CerebrasRefusedError
from rollout_monitor.cerebras.models import DeployedModel, DeployOperation, EndpointStatus
from rollout_monitor.cerebras.status import ObservedStatus
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
from rollout_monitor.ports import DeployApi, EndpointHolds, Publisher, Requests, Submissions
from rollout_monitor.records import (
    OUTBOX_LEASE_SECONDS,
    DeploymentRecord,
    RequestClaim,
    RequestState,
)

logger = logging.getLogger(__name__)

RECONCILE_SKEW_SECONDS = 120.0


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
    """Decides ``Deploy Requested`` details; builds nothing itself (``wiring.py`` does)."""

    requests: Requests
    endpoints: EndpointHolds
    deployments: Submissions
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
        owned, claim = self.requests.claim(
            request_id, request.endpoint_id, request.model, self.now(), self.lease_seconds
        )
        if not owned:
            return self._duplicate(claim)
        try:
            return self._deploy(request, claim)
        except Exception:
            self.requests.interrupt(request_id, claim.claimed_at)
            raise

    # -- the first delivery -------------------------------------------------------------------

    def _deploy(self, request: DeployRequested, claim: RequestClaim) -> DeployResult:
        busy = self._hold_endpoint(request, claim)
        if busy is not None:
            return self._finish_rejection(claim, busy)
        adopted = self._reconcile(request, claim) if claim.taken_over else None
        if adopted is not None:
            record = adopted
        else:
            try:
                operation = self.cerebras.deploy_model(request.endpoint_id, request.model)
            except CerebrasRefusedError as exc:
                self.endpoints.release(request.endpoint_id, claim.request_id)
                return self._finish_rejection(claim, _refusal(request, claim, exc, self.now()))
            record = _record_from_operation(operation, request, claim.request_id, self.now())
        submitted = DeploymentSubmitted.of(record, adopted=adopted is not None)
        record = record.model_copy(update={"pending_events": [dump_pending(submitted)]})
        self.deployments.record_submission(record, self.now() + OUTBOX_LEASE_SECONDS)
        logger.info(
            "deployment submitted",
            extra={
                "deployment_id": record.deployment_id,
                "endpoint_id": record.endpoint_id,
                "request_id": claim.request_id,
                "adopted": adopted is not None,
            },
        )
        self._announce(claim.model_copy(update={"state": RequestState.SUBMITTED}), [submitted])
        return DeployResult(
            request_id=claim.request_id, outcome="submitted", deployment_id=record.deployment_id
        )

    def _hold_endpoint(
        self, request: DeployRequested, claim: RequestClaim
    ) -> DeploymentRejected | None:
        """Hold the endpoint for this request, or the rejection naming who holds it."""
        hold = self.endpoints.claim(
            request.endpoint_id,
            claim.request_id,
            claim.claimed_at,
            force=request.force,
            stale_after=self.lease_seconds,
        )
        if hold is not None and self._finished(hold.deployment_id):
            # Its rollout ended but the poller had not freed the endpoint yet.
            hold = self.endpoints.claim(
                request.endpoint_id,
                claim.request_id,
                claim.claimed_at,
                force=True,
                stale_after=self.lease_seconds,
            )
        if hold is None:
            return None
        blocking = hold.deployment_id or f"request {hold.request_id}"
        return _rejection(
            request,
            claim.request_id,
            RejectionReason.ENDPOINT_BUSY,
            f"endpoint {request.endpoint_id} already has a rollout in flight: {blocking}; "
            "send force=true to deploy anyway",
            self.now(),
            blocking_deployment_id=hold.deployment_id,
        )

    def _finished(self, deployment_id: str | None) -> bool:
        record = None if deployment_id is None else self.deployments.get(deployment_id)
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
            and self.deployments.get(m.id) is None
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
        """The first delivery's result, once it is decided and announced (or its announcer's
        lease has lapsed, and this delivery announces it, under the same event id)."""
        deadline = self.now() + self.duplicate_wait_seconds
        current: RequestClaim | None = claim
        while current is not None and self._waiting_on_first(current):
            if self.now() >= deadline:
                raise RequestInProgressError(
                    f"request {claim.request_id} is being handled by another delivery"
                )
            self.sleep(self.duplicate_poll_seconds)
            current = self.requests.get(claim.request_id)
        if current is None:
            raise RequestInProgressError(f"request {claim.request_id} vanished while claimed")
        if current.outbox_free(self.now()) and self.requests.take_outbox(
            current, self.now(), OUTBOX_LEASE_SECONDS
        ):
            self._announce(current, [load_pending(e) for e in current.pending_events])
        logger.info("duplicate deploy request", extra={"request_id": current.request_id})
        return DeployResult(
            request_id=current.request_id,
            outcome="submitted" if current.state == RequestState.SUBMITTED else "rejected",
            deployment_id=current.deployment_id,
            duplicate=True,
        )

    def _waiting_on_first(self, claim: RequestClaim) -> bool:
        """Not decided yet, or decided and still being announced by the first delivery."""
        leased = bool(claim.pending_events) and not claim.outbox_free(self.now())
        return not claim.finished or leased

    # -- rejections and announcements -----------------------------------------------------------

    def _reject_invalid(
        self, request_id: str, detail: Mapping[str, Any], exc: ValidationError
    ) -> DeployResult:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'detail'}: {e['msg']}" for e in exc.errors()
        )
        rejection = DeploymentRejected.of(
            request_id,
            RejectionReason.INVALID_REQUEST,
            f"invalid deploy request: {problems}"[:1000],
            rejected_at=self.now(),
            endpoint_id=_text(detail.get("endpoint_id")),
            model=_text(detail.get("model")),
            requested_by=_text(detail.get("requested_by")),
        )
        now = self.now()
        claim = RequestClaim(
            request_id=request_id, state=RequestState.REJECTED, claimed_at=now, lease_until=now
        )
        return self._finish_rejection(claim, rejection)

    def _finish_rejection(self, claim: RequestClaim, rejection: DeploymentRejected) -> DeployResult:
        self.requests.finish_rejected(
            claim, dump_pending(rejection), self.now() + OUTBOX_LEASE_SECONDS
        )
        logger.info(
            "deploy request rejected",
            extra={"request_id": claim.request_id, "reason": rejection.reason.value},
        )
        self._announce(claim.model_copy(update={"state": RequestState.REJECTED}), [rejection])
        return DeployResult(
            request_id=claim.request_id, outcome="rejected", reason=rejection.reason
        )

    def _announce(self, claim: RequestClaim, details: list[OutboundDetail]) -> None:
        """Publish a request's outbox, then clear it; on failure give the lease up at once."""
        try:
            self.publisher.publish(details)
        except Exception:
            self.requests.release_outbox(claim)
            raise
        self.requests.clear_outbox(claim)


def _rejection(
    request: DeployRequested,
    request_id: str,
    reason: RejectionReason,
    message: str,
    now: float,
    **extra: Any,
) -> DeploymentRejected:
    return DeploymentRejected.of(
        request_id,
        reason,
        message,
        rejected_at=now,
        endpoint_id=request.endpoint_id,
        model=request.model,
        requested_by=request.requested_by,
        **extra,
    )


def _refusal(
    request: DeployRequested, claim: RequestClaim, exc: CerebrasRefusedError, now: float
) -> DeploymentRejected:
    reason = (
        RejectionReason.AUTHENTICATION_FAILED
        if isinstance(exc, CerebrasAuthenticationError)
        else RejectionReason.CEREBRAS_REFUSED
    )
    return _rejection(
        request,
        claim.request_id,
        reason,
        f"Cerebras refused the deployment with {exc.status_code}",
        now,
        status_code=exc.status_code,
        cerebras_detail=exc.detail,
    )


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


def _new_record(
    request: DeployRequested,
    request_id: str,
    status: ObservedStatus,
    now: float,
    **facts: Any,
) -> DeploymentRecord:
    """A deployment record for this request; ``facts`` are what Cerebras said of it."""
    return DeploymentRecord(
        model=request.model,
        request_id=request_id,
        requested_by=request.requested_by,
        reason=request.reason,
        status=status.value,
        status_known=status.known,
        last_observed_at=now,
        last_progress_at=now,
        terminal_at=now if status.terminal else None,
        **facts,
    )


def _record_from_operation(
    operation: DeployOperation, request: DeployRequested, request_id: str, now: float
) -> DeploymentRecord:
    metadata = operation.response
    return _new_record(
        request,
        request_id,
        metadata.status,
        now,
        deployment_id=operation.name,
        endpoint_id=metadata.endpoint_id,
        org_name=metadata.org_name,
        model_arch_id=metadata.model_arch_id,
        version_id=metadata.version_id,
        version_alias=request.version.version_alias,
        submitted_at=now,
        updated_replicas=metadata.updated_replicas,
        total_replicas=metadata.total_replicas,
        max_unavailable=metadata.max_unavailable,
        error_message=metadata.error_message,
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
    return _new_record(
        request,
        request_id,
        found.status,
        now,
        deployment_id=found.id,
        endpoint_id=endpoint.name,
        org_name=endpoint.managing_org_name,
        model_arch_id=endpoint.model_arch_id,
        version_id=int(version.version) if version.version.isdigit() else version.version,
        version_alias=found.version_alias or version.version_alias,
        submitted_at=float(found.created),
        updated_replicas=found.updated_replicas,
        total_replicas=found.total_replicas,
        error_message=found.error_message,
        api_response={"adopted_from_endpoint_status": found.to_json_dict()},
    )
