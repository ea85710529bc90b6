"""The deploy path: a ``Deploy Requested`` detail becomes one Cerebras deployment, once.

Exactly once rests on conditional writes and one rule (see ``docs/decisions.md``):

1. the request is claimed by ``request_id`` with its content's fingerprint: a duplicate
   delivery finds the claim and returns the first result; the same id with other content is
   rejected (``request_id_conflict``); an invalid request claims nothing;
2. the endpoint is held by one request at a time: another is rejected as ``endpoint_busy``
   unless ``force``;
3. ``deployModel`` is never sent blind: the claim notes when it is sent, and after any
   unknown outcome (:mod:`rollout_monitor.reconcile`) the deployment is found and adopted, or
   the invocation fails for a retry that looks again;
4. the record, its history, the request's result and the endpoint's holder are written in one
   transaction; the events go out through the request's leased outbox, the poller's rule.

Permanent refusals become ``Deployment Rejected``; transient failures propagate, so Lambda
retries the event and its dead-letter queue keeps it if they all fail.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from rollout_monitor.cerebras.errors import (
    CerebrasOutcomeUnknownError,
    CerebrasRefusedError,
)
from rollout_monitor.events import (
    DeploymentRejected,
    DeploymentSubmitted,
    DeployRequested,
    DetailType,
    OutboundDetail,
    RolloutStatusChanged,
    dump_pending,
    load_pending,
)
from rollout_monitor.ports import DeployApi, EndpointHolds, Publisher, Requests, Submissions
from rollout_monitor.reconcile import ReconcilePolicy, Reconciler, record_from_operation
from rollout_monitor.records import (
    OUTBOX_LEASE_SECONDS,
    DeploymentRecord,
    RequestClaim,
    RequestContent,
    RequestState,
)
from rollout_monitor.rejections import (
    busy,
    conflict,
    envelope_problem,
    invalid,
    problems,
    refusal,
    request_id_of,
)
from rollout_monitor.versions import VersionGuard

logger = logging.getLogger(__name__)


class RequestInProgressError(Exception):
    """Another delivery of the same request is still at work: retry later."""


class DeployOutcomeUnknownError(Exception):
    """deployModel may have acted and its deployment is not listed yet: retry later, which
    looks again before it may ever send."""


class DeployResult(BaseModel):
    """What the function returns: the decision, and the event that announced it."""

    request_id: str
    # "submitted" | "rejected" | "waiting" (for its version's sync) | "ignored" (a wait's end
    # the table does not confirm)
    outcome: str
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
    hold_stale_seconds: float = 900.0  # a hold whose request recorded nothing lapses after this
    duplicate_wait_seconds: float = 10.0
    duplicate_poll_seconds: float = 0.2
    reconcile: ReconcilePolicy = field(default_factory=ReconcilePolicy)
    poll_now: Callable[[str], None] = lambda _endpoint_id: None  # start polling it now
    version_guard: VersionGuard | None = None  # None: deploy without reading the version

    @property
    def reconciler(self) -> Reconciler:
        return Reconciler(self.cerebras, self.deployments, self.now, self.sleep, self.reconcile)

    def handle(
        self,
        detail: Any,
        event_id: str,
        *,
        detail_type: str = DetailType.DEPLOY_REQUESTED.value,
        source: str = "",
    ) -> DeployResult:
        """Decide one delivery; ``event_id`` is the EventBridge event id."""
        request_id = request_id_of(detail, event_id)
        problem = envelope_problem(detail, detail_type, source)
        if problem is not None:
            return self._reject_invalid(request_id, detail, problem)
        try:
            request = DeployRequested.model_validate(detail)
        except ValidationError as exc:
            return self._reject_invalid(request_id, detail, problems(exc))
        content = RequestContent(
            endpoint_id=request.endpoint_id, model=request.model, force=request.force
        )
        owned, claim = self.requests.claim(request_id, content, self.now(), self.lease_seconds)
        if not owned:
            if claim.fingerprint not in (None, content.fingerprint):
                rejection = conflict(request, request_id, claim, content, self.now())
                return self.reject_unclaimed(rejection)
            return self.duplicate(claim)
        return self.run_claimed(request, claim)

    def run_claimed(self, request: DeployRequested, claim: RequestClaim) -> DeployResult:
        """Decide a request this delivery holds; on any failure hand it to the next one."""
        try:
            return self._deploy(request, claim)
        except Exception:
            self.requests.interrupt(claim.request_id, claim.claimed_at)
            raise

    # -- the first delivery -------------------------------------------------------------------

    def _deploy(self, request: DeployRequested, claim: RequestClaim) -> DeployResult:
        record: DeploymentRecord | DeploymentRejected | None = None
        adopted = False
        if claim.sent_at is not None:  # an earlier delivery may have sent deployModel: look first
            record = self.reconciler.look(
                request, claim.request_id, claim.sent_at, claim.known_before
            )
            adopted = record is not None
            if record is None and not self.reconciler.proven_absent(claim.sent_at):
                raise DeployOutcomeUnknownError(
                    f"request {claim.request_id}: deployModel was sent at {claim.sent_at} and "
                    "its deployment is not listed yet; retry later"
                )
        if record is None:
            held = self.version_guard and self.version_guard.holds(request, claim, self.now())
            if isinstance(held, DeploymentRejected):
                return self.finish_rejection(claim, held)
            if held:
                return DeployResult(request_id=claim.request_id, outcome="waiting")
            busy = self._hold_endpoint(request, claim)
            if busy is not None:
                return self.finish_rejection(claim, busy)
            record, adopted = self._send(request, claim)
        if isinstance(record, DeploymentRejected):
            self.endpoints.release(request.endpoint_id, claim.request_id)
            return self.finish_rejection(claim, record)
        return self._submit(claim, record, adopted=adopted)

    def _send(
        self, request: DeployRequested, claim: RequestClaim
    ) -> tuple[DeploymentRecord | DeploymentRejected, bool]:
        """Send deployModel once; after an unknown outcome, find what it made or fail."""
        try:
            known = self.reconciler.known(request.endpoint_id)
        except CerebrasRefusedError as exc:  # no such endpoint, no access: nothing was sent
            return refusal(request, claim.request_id, exc, self.now()), False
        sent_at = self.now()
        if not self.requests.mark_sent(claim, sent_at, known):
            raise RequestInProgressError(f"request {claim.request_id} was taken over")
        try:
            operation = self.cerebras.deploy_model(request.endpoint_id, request.model)
        except CerebrasRefusedError as exc:
            return refusal(request, claim.request_id, exc, self.now()), False
        except CerebrasOutcomeUnknownError as exc:
            logger.warning(
                "deployModel outcome unknown: looking for the deployment",
                extra={"request_id": claim.request_id, "error": type(exc.cause).__name__},
            )
            found = self.reconciler.wait_for(request, claim.request_id, sent_at, known)
            if found is None:
                raise DeployOutcomeUnknownError(
                    f"request {claim.request_id}: deployModel failed ambiguously "
                    f"({type(exc.cause).__name__}) and no deployment is listed yet"
                ) from exc
            return found, True
        return record_from_operation(operation, request, claim.request_id, self.now()), False

    def _submit(
        self, claim: RequestClaim, record: DeploymentRecord, *, adopted: bool
    ) -> DeployResult:
        events: list[OutboundDetail] = [DeploymentSubmitted.of(record, adopted=adopted)]
        if record.terminal:  # over at once: its status is announced (and alerted) now
            events.append(
                RolloutStatusChanged.of(
                    record, previous_status=None, observed_at=record.last_observed_at or self.now()
                )
            )
        record = record.model_copy(update={"pending_events": [dump_pending(e) for e in events]})
        self.deployments.record_submission(record, self.now() + OUTBOX_LEASE_SECONDS)
        logger.info(
            "deployment submitted",
            extra={
                "deployment_id": record.deployment_id,
                "endpoint_id": record.endpoint_id,
                "request_id": claim.request_id,
                "adopted": adopted,
            },
        )
        self._announce(claim.model_copy(update={"state": RequestState.SUBMITTED}), events)
        _start_polling(self.poll_now, record)
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
            stale_after=self.hold_stale_seconds,
        )
        if hold is not None and self._finished(hold.deployment_id):
            # Its rollout ended but the poller had not freed the endpoint yet.
            hold = self.endpoints.claim(
                request.endpoint_id,
                claim.request_id,
                claim.claimed_at,
                force=True,
                stale_after=self.hold_stale_seconds,
            )
        if hold is None:
            return None
        return busy(request, claim.request_id, hold, self.now())

    def _finished(self, deployment_id: str | None) -> bool:
        """The hold's deployment ended (or its record expired: it ended long ago)."""
        if deployment_id is None:
            return False
        record = self.deployments.get(deployment_id)
        return record is None or record.terminal

    # -- duplicates -----------------------------------------------------------------------------

    def duplicate(self, claim: RequestClaim) -> DeployResult:
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
            outcome=_OUTCOMES[current.state],
            deployment_id=current.deployment_id,
            duplicate=True,
        )

    def _waiting_on_first(self, claim: RequestClaim) -> bool:
        """Not decided yet, or decided and still being announced by the first delivery."""
        leased = bool(claim.pending_events) and not claim.outbox_free(self.now())
        return claim.state not in _OUTCOMES or leased

    # -- rejections and announcements -----------------------------------------------------------

    def _reject_invalid(self, request_id: str, detail: Any, problem: str) -> DeployResult:
        """An invalid request claims nothing (its id stays free for a valid request)."""
        return self.reject_unclaimed(invalid(request_id, detail, problem, self.now()))

    def reject_unclaimed(self, rejection: DeploymentRejected) -> DeployResult:
        """A rejection no claim keeps (nothing to deduplicate it by but its event id)."""
        extra = {"request_id": rejection.request_id, "reason": rejection.reason.value}
        logger.info("deploy request rejected", extra=extra)
        self.publisher.publish([rejection])
        return DeployResult(
            request_id=rejection.request_id, outcome="rejected", reason=rejection.reason
        )

    def finish_rejection(self, claim: RequestClaim, rejection: DeploymentRejected) -> DeployResult:
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


_OUTCOMES = {
    RequestState.SUBMITTED: "submitted",
    RequestState.REJECTED: "rejected",
    RequestState.WAITING: "waiting",
}


def _start_polling(poll_now: Callable[[str], None], record: DeploymentRecord) -> None:
    """Kick the poll chain for a rollout in flight; if that fails, the schedule starts it
    within a minute."""
    if record.terminal:
        return
    try:
        poll_now(record.endpoint_id)
    except Exception:
        logger.warning("could not start polling now", exc_info=True)
