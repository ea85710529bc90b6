"""After ``deployModel`` may have acted: find the deployment it made, or prove there is none.

``deployModel`` takes no idempotency key, so the deploy path never sends it twice blind. Just
before sending, it notes the time and the deployments the endpoint already lists
(``RequestClaim.sent_at``/``known_before``). Afterwards, whenever the outcome is unknown (a
5xx, a timeout or a lost connection after sending, a malformed answer, a crash), it reads the
endpoint and adopts a deployment of the requested version (by version id or alias) that was
not listed before, was created no earlier than the send time minus the clock-skew allowance,
and is not recorded yet. One not listed yet is waited for, within a bound. Only a listing
read ``listing_delay`` after the send that still shows none proves that none was made.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rollout_monitor.cerebras.models import (
    DeployedModel,
    DeploymentMetadata,
    DeployOperation,
    EndpointStatus,
)
from rollout_monitor.cerebras.names import VERSION_NUMBER
from rollout_monitor.events import DeployRequested
from rollout_monitor.ports import DeployApi, Submissions
from rollout_monitor.records import MAX_KNOWN_BEFORE, DeploymentRecord

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ReconcilePolicy:
    """The bounds of reconciliation (``DeploySettings``; see ``docs/decisions.md``)."""

    skew_seconds: float = 600.0  # Cerebras's clock may be this far behind ours
    wait_seconds: float = 25.0  # how long a deployment not listed yet is waited for
    poll_seconds: float = 5.0
    listing_delay_seconds: float = 60.0  # a deployment is listed within this of its creation
    send_window_seconds: float = 25.0  # deployModel's own retries (429) may send this late


@dataclass
class Reconciler:
    cerebras: DeployApi
    deployments: Submissions
    now: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
    policy: ReconcilePolicy = ReconcilePolicy()

    def known(self, endpoint_id: str) -> list[str]:
        """The deployments the endpoint lists now (before sending)."""
        listed = self.cerebras.get_endpoint(endpoint_id).deployed_models
        return [m.id for m in listed][-MAX_KNOWN_BEFORE:]

    def look(
        self,
        request: DeployRequested,
        request_id: str,
        sent_at: float,
        known_before: list[str] | None,
    ) -> DeploymentRecord | None:
        """One read of the endpoint: the deployment this request made, if listed."""
        status = self.cerebras.get_endpoint(request.endpoint_id)
        since = sent_at - self.policy.skew_seconds
        before = set(known_before or ())
        candidates = [
            m
            for m in status.deployed_models
            if m.id not in before
            and m.created >= since
            and same_version(m, request)
            and self.deployments.get(m.id) is None
        ]
        if not candidates:
            return None
        found = min(candidates, key=lambda m: m.created)
        if len(candidates) > 1:
            logger.warning(
                "several new deployments of the requested version: adopting the earliest",
                extra={"request_id": request_id, "candidates": [m.id for m in candidates]},
            )
        logger.warning(
            "adopting a deployment whose deployModel answer was lost",
            extra={"deployment_id": found.id, "request_id": request_id},
        )
        return record_from_listing(found, status, request, request_id, sent_at, self.now())

    def wait_for(
        self,
        request: DeployRequested,
        request_id: str,
        sent_at: float,
        known_before: list[str] | None,
    ) -> DeploymentRecord | None:
        """Look until the deployment is listed or the policy's wait has passed."""
        deadline = self.now() + self.policy.wait_seconds
        while True:
            found = self.look(request, request_id, sent_at, known_before)
            if found is not None or self.now() >= deadline:
                return found
            self.sleep(self.policy.poll_seconds)

    def proven_absent(self, sent_at: float) -> bool:
        """A look that found nothing now proves nothing was made: the last attempt that could
        have acted left within the send window, and would be listed by now."""
        policy = self.policy
        return self.now() >= sent_at + policy.send_window_seconds + policy.listing_delay_seconds


def same_version(listed: DeployedModel, request: DeployRequested) -> bool:
    """Is this listed deployment of the requested version, by name, version id or alias?"""
    if listed.model == request.model:
        return True
    version = request.version
    if version.version_alias is not None and listed.version_alias == version.version_alias:
        return True
    prefix, _, number = listed.model.rpartition("/versions/")
    wanted = f"orgs/{version.org_name}/models/{version.model_arch_id}"
    return prefix == wanted and number == str(version.version_number)


def _new_record(
    request: DeployRequested,
    request_id: str,
    answer: DeploymentMetadata | DeployedModel,
    now: float,
    **facts: Any,
) -> DeploymentRecord:
    """A deployment record for this request, from what Cerebras said of it (``answer``, and
    the ``facts`` only one kind of answer carries)."""
    status = answer.status
    return DeploymentRecord(
        model=request.model,
        request_id=request_id,
        requested_by=request.requested_by,
        reason=request.reason,
        team=request.team,
        labels=request.labels,
        status=status.value,
        status_known=status.known,
        updated_replicas=answer.updated_replicas,
        total_replicas=answer.total_replicas,
        error_message=answer.error_message,
        last_observed_at=now,
        last_progress_at=now,
        terminal_at=now if status.terminal else None,
        **facts,
    )


def record_from_operation(
    operation: DeployOperation, request: DeployRequested, request_id: str, now: float
) -> DeploymentRecord:
    metadata = operation.response
    return _new_record(
        request,
        request_id,
        metadata,
        now,
        deployment_id=operation.name,
        endpoint_id=metadata.endpoint_id,
        org_name=metadata.org_name,
        model_arch_id=metadata.model_arch_id,
        version_id=metadata.version_id,
        version_alias=request.version.version_alias,
        submitted_at=now,
        max_unavailable=metadata.max_unavailable,
        api_response=operation.to_bounded_json_dict(),
    )


def record_from_listing(
    found: DeployedModel,
    endpoint: EndpointStatus,
    request: DeployRequested,
    request_id: str,
    sent_at: float,
    now: float,
) -> DeploymentRecord:
    """The record of a deployment found in the endpoint's listing; it was submitted when
    this request sent deployModel (our clock, not Cerebras's ``created``)."""
    version = request.version
    listed_number = found.model.rpartition("/versions/")[2]
    version_id: int | str = (
        int(listed_number) if VERSION_NUMBER.fullmatch(listed_number) else version.version
    )
    return _new_record(
        request,
        request_id,
        found,
        now,
        deployment_id=found.id,
        endpoint_id=endpoint.name,
        org_name=endpoint.managing_org_name,
        model_arch_id=endpoint.model_arch_id,
        version_id=version.version_number or version_id,
        version_alias=found.version_alias or version.version_alias,
        submitted_at=sent_at,
        api_response={"adopted_from_endpoint_status": found.to_bounded_json_dict()},
    )
