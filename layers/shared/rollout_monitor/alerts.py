"""Alerts: when a person is told about a failure, a rollback, a stall, a rejection or a
recovery, and that they are told once.

Each alert is keyed on its cause ((deployment, status), (deployment, stall episode), the
rejected request, (deployment, recovered)) and claimed in the table before it is sent, so a
duplicate or retried event sends nothing more; each channel (the alert topic, the chat topic,
the pager) has its own claim. If a channel fails its claim is released and the invocation
fails: Lambda retries it (the channels already sent skip), then its dead-letter queue keeps
it. What each alert
says is built in :mod:`rollout_monitor.messages`, from the stored record: a status change,
stall or loss the table does not show is logged as unverified and sends nothing, so an event
forged on the bus cannot page anyone with its own text.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeGuard

from pydantic import BaseModel

from rollout_monitor.cerebras.status import normalise_status
from rollout_monitor.events import (
    CerebrasEpisode,
    CerebrasReachable,
    CerebrasUnreachable,
    DeploymentRejected,
    DetailType,
    LostReason,
    Outcome,
    RolloutLost,
    RolloutStalled,
    RolloutStatusChanged,
)
from rollout_monitor.formatting import Alert
from rollout_monitor.messages import (
    Links,
    failure_alert,
    lost_alert,
    reachability_alert,
    recovery_alert,
    rejection_alert,
    stall_alert,
)
from rollout_monitor.ports import (
    AlertClaims,
    Channel,
    DeploymentLookup,
    EndpointOutcomes,
    ReachabilityLookup,
)
from rollout_monitor.records import AlertClaimState, LastOutcome

logger = logging.getLogger(__name__)

CLAIM_LEASE_SECONDS = 60.0


class AlertInProgressError(Exception):
    """Another delivery is sending this alert right now: retry later."""


class AlertResult(BaseModel):
    sent: list[str] = []  # alert keys sent (on one channel at least) by this invocation
    channels: list[str] = []  # each channel's claim sent: the key, then key#chatbot...
    severities: list[str] = []  # of each alert sent, in the same order
    skipped: list[str] = []  # already sent by an earlier delivery
    unverified: list[str] = []  # events the table does not bear out: nothing sent


@dataclass
class AlertService:
    """When to alert, and once; what each alert says is built in ``messages.py``, where it
    goes is each of ``channels`` (the alert topic, and the chat topic and pager if set up)."""

    claims: AlertClaims
    outcomes: EndpointOutcomes
    deployments: DeploymentLookup
    reachability: ReachabilityLookup
    channels: Sequence[Channel]
    alert_statuses: frozenset[str]
    links: Links
    now: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
    busy_wait_seconds: float = 5.0

    def handle(self, detail_type: str, detail: Mapping[str, Any]) -> AlertResult:
        result = AlertResult()
        if detail_type == DetailType.ROLLOUT_STATUS_CHANGED:
            changed = self._stored_change(RolloutStatusChanged.model_validate(detail))
            if self._verified(changed, detail, result):
                self._status_changed(changed, result)
        elif detail_type == DetailType.ROLLOUT_STALLED:
            stalled = self._stored_stall(RolloutStalled.model_validate(detail))
            if self._verified(stalled, detail, result):
                key = f"{stalled.deployment_id}:stall:{stalled.episode}"
                self._send(key, stall_alert(stalled, self.links), result)
        elif detail_type == DetailType.ROLLOUT_LOST:
            lost = self._stored_loss(RolloutLost.model_validate(detail))
            if self._verified(lost, detail, result):
                self._lost(lost, result)
        elif detail_type in (DetailType.CEREBRAS_UNREACHABLE, DetailType.CEREBRAS_REACHABLE):
            episode = self._stored_episode(detail_type, detail)
            if self._verified(episode, detail, result):
                self._send(episode.event_id, reachability_alert(episode), result)
        elif detail_type == DetailType.DEPLOYMENT_REJECTED:
            rejected = DeploymentRejected.model_validate(detail)
            self._send(rejected.event_id, rejection_alert(rejected), result)
        else:  # not an event any rule routes here (a test sample, a hand-made event)
            logger.warning(
                "no alert is defined for this event: skipped", extra={"detail_type": detail_type}
            )
        return result

    # -- the table's word, not the event's ------------------------------------------------------

    @staticmethod
    def _verified[E](
        event: E | None, detail: Mapping[str, Any], result: AlertResult
    ) -> TypeGuard[E]:
        if event is not None:
            return True
        event_id = str(detail.get("event_id", "?"))[:200]
        logger.warning("event not borne out by the table: no alert", extra={"event_id": event_id})
        result.unverified.append(event_id)
        return False

    def _stored_change(self, event: RolloutStatusChanged) -> RolloutStatusChanged | None:
        """The change as the table recorded it (its history entry), or None."""
        record = self.deployments.get(event.deployment_id)
        if record is None:
            return None
        entry = next(
            (
                h
                for h in self.deployments.history(event.deployment_id)
                if h.sequence == event.sequence
            ),
            None,
        )
        if entry is None or entry.status != event.rollout_status:
            return None
        at_the_time = record.model_copy(
            update={
                "status": entry.status,
                "status_known": normalise_status(entry.status).known,
                "sequence": entry.sequence,
                "error_message": entry.error_message,
                "updated_replicas": entry.updated_replicas,
                "total_replicas": entry.total_replicas,
                "lost_reason": None,
            }
        )
        return RolloutStatusChanged.of(
            at_the_time, previous_status=entry.previous_status, observed_at=entry.observed_at
        )

    def _stored_stall(self, event: RolloutStalled) -> RolloutStalled | None:
        record = self.deployments.get(event.deployment_id)
        if record is None or record.stall_episode < event.episode or event.episode < 1:
            return None
        return RolloutStalled.of(
            record.model_copy(update={"stall_episode": event.episode}),
            stalled_for=event.stalled_for_seconds,
            deadline=event.stall_after_seconds,
            observed_at=event.observed_at,
        )

    def _stored_loss(self, event: RolloutLost) -> RolloutLost | None:
        record = self.deployments.get(event.deployment_id)
        if record is None or record.lost_reason != event.reason.value:
            return None
        return RolloutLost.of(
            record,
            reason=event.reason,
            deadline=event.lost_after_seconds,
            observed_at=event.observed_at,
        )

    def _stored_episode(
        self, detail_type: str, detail: Mapping[str, Any]
    ) -> CerebrasEpisode | None:
        """The episode's start (announced) or end, if the table bears it out."""
        down = detail_type == DetailType.CEREBRAS_UNREACHABLE
        kind = CerebrasUnreachable if down else CerebrasReachable
        event = kind.model_validate(detail)
        stored = self.reachability.get()
        announced = event.episode in stored.announced_episodes
        if not announced or (not down and event.episode >= stored.episode):
            return None  # never announced (or a recovery of an episode not over)
        # keyed on the episode the table shows, not on an id the event chose
        return event.model_copy(update={"event_id": kind.id_of(event.episode)})

    def _status_changed(self, event: RolloutStatusChanged, result: AlertResult) -> None:
        try:
            if event.rollout_status in self.alert_statuses:
                key = f"{event.deployment_id}:{event.rollout_status}"
                self._send(key, failure_alert(event, self.links), result)
        finally:  # the outcome is remembered even when a channel failed: recoveries need it
            if event.outcome == Outcome.FAILED:
                self._failed(event, result)
            elif event.outcome == Outcome.SUCCEEDED:
                self._succeeded(event, result)

    def _lost(self, lost: RolloutLost, result: AlertResult) -> None:
        """Alert on the loss; an endpoint gone (the critical one, paged) counts as failed,
        so a later success on it is a recovery that resolves the page."""
        try:
            self._send(lost.event_id, lost_alert(lost, self.links), result)
        finally:
            if lost.reason == LostReason.ENDPOINT_NOT_FOUND:
                self.outcomes.set_last_outcome(
                    lost.endpoint_id,
                    LastOutcome(outcome="failed", **lost.model_dump(include=_OUTCOME_FACTS)),
                )

    def _failed(self, event: RolloutStatusChanged, result: AlertResult) -> None:
        """Remember the failure; if a later success was already handled (this event came
        late), the endpoint has recovered from it: say so now."""
        self.outcomes.set_last_outcome(event.endpoint_id, _outcome(event, "failed"))
        last = self.outcomes.last_outcome(event.endpoint_id)
        if last and last.outcome == "succeeded" and last.deployment_id != event.deployment_id:
            self._recovered(event.endpoint_id, last, _outcome(event, "failed"), result)

    def _succeeded(self, event: RolloutStatusChanged, result: AlertResult) -> None:
        last = self.outcomes.last_outcome(event.endpoint_id)
        if last and last.outcome == "failed" and last.deployment_id != event.deployment_id:
            self._recovered(event.endpoint_id, _outcome(event, "succeeded"), last, result)
        self.outcomes.set_last_outcome(event.endpoint_id, _outcome(event, "succeeded"))

    def _recovered(
        self, endpoint_id: str, success: LastOutcome, failure: LastOutcome, result: AlertResult
    ) -> None:
        """One notice per failure recovered from, whichever success or order brings it."""
        notice = recovery_alert(endpoint_id, success, failure)
        self._send(f"recovered:{failure.deployment_id}", notice, result)

    def _send(self, key: str, alert: Alert, result: AlertResult) -> None:
        """Send ``alert`` to every channel it is for, each once: a channel's claim is the
        alert's key (and the channel's name), so a retry after one channel failed sends
        only what was not sent. Every channel is tried; the first failure is raised after."""
        failure: Exception | None = None
        sent = False
        for channel in self.channels:
            if not channel.accepts(alert):
                continue
            claim = f"{key}#{channel.name}" if channel.name else key
            try:
                sent |= self._send_once(claim, channel, alert, result)
            except Exception as exc:  # raised below, once every channel was tried
                failure = failure or exc
        if sent:
            logger.info("alert sent", extra={"alert": key, "severity": alert.severity.value})
            result.sent.append(key)
            result.severities.append(alert.severity.value)
        if failure is not None:
            raise failure

    def _send_once(self, key: str, channel: Channel, alert: Alert, result: AlertResult) -> bool:
        """Send to one channel under its claim: True if sent now, False if sent before."""
        deadline = self.now() + self.busy_wait_seconds
        state = self.claims.claim(key, self.now(), CLAIM_LEASE_SECONDS)
        while state == AlertClaimState.BUSY and self.now() < deadline:
            self.sleep(0.2)
            state = self.claims.claim(key, self.now(), CLAIM_LEASE_SECONDS)
        if state == AlertClaimState.SENT:
            result.skipped.append(key)
            return False
        if state == AlertClaimState.BUSY:
            raise AlertInProgressError(f"alert {key} is being sent by another delivery")
        try:
            message_id = channel.send(alert)
        except Exception:
            self.claims.release(key)
            raise
        self.claims.sent(key, message_id)
        result.channels.append(key)
        return True


def _outcome(event: RolloutStatusChanged, outcome: str) -> LastOutcome:
    return LastOutcome(outcome=outcome, **event.model_dump(include=_OUTCOME_FACTS))


_OUTCOME_FACTS = {
    "deployment_id",
    "team",
    "labels",
    "observed_at",
    "model",
    "version_id",
    "requested_by",
    "seconds_since_submission",
}
