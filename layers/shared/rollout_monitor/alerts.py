"""Alerts: when a person is told about a failure, a rollback, a stall, a rejection or a
recovery, and that they are told once.

Each alert is keyed on its cause ((deployment, status), (deployment, stall episode), the
rejected request, (deployment, recovered)) and claimed in the table before it is sent, so a
duplicate or retried event sends nothing more. If SNS fails the claim is released and the
invocation fails: Lambda retries it, then its dead-letter queue keeps it. What each alert
says is built in :mod:`rollout_monitor.messages`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from rollout_monitor.events import (
    DeploymentRejected,
    DetailType,
    Outcome,
    RolloutLost,
    RolloutStalled,
    RolloutStatusChanged,
)
from rollout_monitor.messages import (
    Links,
    failure_alert,
    lost_alert,
    recovery_alert,
    rejection_alert,
    stall_alert,
)
from rollout_monitor.ports import AlertClaims, EndpointOutcomes, Notification, Sender
from rollout_monitor.records import AlertClaimState, LastOutcome

logger = logging.getLogger(__name__)

CLAIM_LEASE_SECONDS = 60.0


class AlertInProgressError(Exception):
    """Another delivery is sending this alert right now: retry later."""


class AlertResult(BaseModel):
    sent: list[str] = []  # alert keys sent by this invocation
    skipped: list[str] = []  # already sent by an earlier delivery


@dataclass
class AlertService:
    """When to alert, and once; what each alert says is built below, where it goes is SNS."""

    claims: AlertClaims
    outcomes: EndpointOutcomes
    sender: Sender
    alert_statuses: frozenset[str]
    links: Links
    now: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
    busy_wait_seconds: float = 5.0

    def handle(self, detail_type: str, detail: Mapping[str, Any]) -> AlertResult:
        result = AlertResult()
        if detail_type == DetailType.ROLLOUT_STATUS_CHANGED:
            self._status_changed(RolloutStatusChanged.model_validate(detail), result)
        elif detail_type == DetailType.ROLLOUT_STALLED:
            stalled = RolloutStalled.model_validate(detail)
            self._send(
                f"{stalled.deployment_id}:stall:{stalled.episode}",
                stall_alert(stalled, self.links),
                result,
            )
        elif detail_type == DetailType.ROLLOUT_LOST:
            lost = RolloutLost.model_validate(detail)
            self._send(lost.event_id, lost_alert(lost, self.links), result)
        elif detail_type == DetailType.DEPLOYMENT_REJECTED:
            rejected = DeploymentRejected.model_validate(detail)
            self._send(rejected.event_id, rejection_alert(rejected), result)
        else:  # not an event any rule routes here (a test sample, a hand-made event)
            logger.warning(
                "no alert is defined for this event: skipped", extra={"detail_type": detail_type}
            )
        return result

    def _status_changed(self, event: RolloutStatusChanged, result: AlertResult) -> None:
        if event.rollout_status in self.alert_statuses:
            key = f"{event.deployment_id}:{event.rollout_status}"
            self._send(key, failure_alert(event, self.links), result)
        if event.outcome == Outcome.FAILED:
            self._failed(event, result)
        elif event.outcome == Outcome.SUCCEEDED:
            self._succeeded(event, result)

    def _failed(self, event: RolloutStatusChanged, result: AlertResult) -> None:
        """Remember the failure; if a later success was already handled (this event came
        late), the endpoint has recovered from it: say so now."""
        self.outcomes.set_last_outcome(event.endpoint_id, _outcome(event, "failed"))
        last = self.outcomes.last_outcome(event.endpoint_id)
        if last and last.outcome == "succeeded" and last.deployment_id != event.deployment_id:
            self._recovered(event.endpoint_id, last, event.deployment_id, result)

    def _succeeded(self, event: RolloutStatusChanged, result: AlertResult) -> None:
        last = self.outcomes.last_outcome(event.endpoint_id)
        if last and last.outcome == "failed" and last.deployment_id != event.deployment_id:
            self._recovered(
                event.endpoint_id, _outcome(event, "succeeded"), last.deployment_id, result
            )
        self.outcomes.set_last_outcome(event.endpoint_id, _outcome(event, "succeeded"))

    def _recovered(
        self, endpoint_id: str, success: LastOutcome, failed_id: str, result: AlertResult
    ) -> None:
        """One notice per failure recovered from, whichever success or order brings it."""
        notice = recovery_alert(endpoint_id, success, failed_id)
        self._send(f"recovered:{failed_id}", notice, result)

    def _send(self, key: str, notification: Notification, result: AlertResult) -> None:
        deadline = self.now() + self.busy_wait_seconds
        state = self.claims.claim(key, self.now(), CLAIM_LEASE_SECONDS)
        while state == AlertClaimState.BUSY and self.now() < deadline:
            self.sleep(0.2)
            state = self.claims.claim(key, self.now(), CLAIM_LEASE_SECONDS)
        if state == AlertClaimState.SENT:
            result.skipped.append(key)
            return
        if state == AlertClaimState.BUSY:
            raise AlertInProgressError(f"alert {key} is being sent by another delivery")
        try:
            message_id = self.sender.send(notification)
        except Exception:
            self.claims.release(key)
            raise
        self.claims.sent(key, message_id)
        logger.info(
            "alert sent", extra={"alert": key, "severity": notification.attributes["severity"]}
        )
        result.sent.append(key)


def _outcome(event: RolloutStatusChanged, outcome: str) -> LastOutcome:
    return LastOutcome(
        outcome=outcome,
        deployment_id=event.deployment_id,
        observed_at=event.observed_at,
        model=event.model,
        version_id=event.version_id,
        requested_by=event.requested_by,
        seconds_since_submission=event.seconds_since_submission,
    )
