"""What each alert says, built once per kind as an :class:`Alert`: what happened, its facts,
the next steps, the links.

Built from the event that triggered it; every untrusted string is cleaned and bounded
(:mod:`rollout_monitor.formatting`). When to alert, and once, is :mod:`rollout_monitor.alerts`;
how each channel shows it, :mod:`rollout_monitor.channels`.
"""

from __future__ import annotations

from typing import Any

from rollout_monitor.events import (
    CerebrasEpisode,
    CerebrasUnreachable,
    DeploymentRejected,
    LostReason,
    Outcome,
    RolloutLost,
    RolloutStalled,
    RolloutStatusChanged,
)
from rollout_monitor.formatting import (
    MAX_ERROR_MESSAGE,
    Alert,
    Fact,
    Links,
    PageAction,
    Severity,
    clean,
    duration,
    field,
    replicas,
    row,
    subject_line,
    when,
)
from rollout_monitor.records import LastOutcome

__all__ = [
    "Links",
    "clean",
    "failure_alert",
    "lost_alert",
    "reachability_alert",
    "recovery_alert",
    "rejection_alert",
    "stall_alert",
    "subject_line",
]


type _AboutOne = RolloutStatusChanged | RolloutStalled | RolloutLost


def _rollout_alert(
    event: _AboutOne,
    *,
    what: str,
    happened: str,
    facts: tuple[Fact, ...],
    shown_version: str = "",
    **alert: Any,
) -> Alert:
    """An alert about one deployment: its headline, its opening facts, and its routing (the
    endpoint, the deployment's thread, the team)."""
    return Alert(
        headline=(what, clean(event.endpoint_id, 60), f"version {event.version_id}"),
        title=f"The rollout of {clean(event.model)} to {clean(event.endpoint_id)} {happened}",
        facts=(
            *_deployment(event.endpoint_id, event.model, event.version_id, shown_version),
            *facts,
        ),
        endpoint_id=event.endpoint_id,
        thread=event.deployment_id,
        team=event.team,
        labels=event.labels,
        **alert,
    )


def _deployment(
    endpoint_id: str, model: str | None, version_id: int | str | None, shown: str = ""
) -> tuple[Fact, ...]:
    """The facts that open every alert about one deployment (``shown``: the version, cleaned)."""
    return (
        Fact("Endpoint", clean(endpoint_id), "endpoint_id", endpoint_id),
        Fact("Model", clean(model), "model", model),
        Fact("Version", shown or str(version_id), "version_id", version_id),
    )


def failure_alert(event: RolloutStatusChanged, links: Links) -> Alert:
    severity = Severity.CRITICAL
    error = clean(event.error_message, MAX_ERROR_MESSAGE, multiline=True)
    urls = links.for_deployment(event.endpoint_id, event.org_name, event.deployment_id)
    requested_by = clean(event.requested_by)
    reason = clean(event.reason)
    return _rollout_alert(
        event,
        kind="rollout_failed",
        severity=severity,
        what=f"{event.rollout_status}:",
        happened=(
            f"ended {event.rollout_status} after {duration(event.seconds_since_submission)}."
        ),
        facts=(
            row("Status", f"{event.previous_status or 'submitted'} -> {event.rollout_status}"),
            field("previous_status", event.previous_status),
            field("rollout_status", event.rollout_status),
            Fact(
                "Error", error or "(Cerebras sent no error message)", "error_message", error or None
            ),
            row("Replicas", replicas(event.updated_replicas, event.total_replicas)),
            field("updated_replicas", event.updated_replicas),
            field("total_replicas", event.total_replicas),
            Fact("Started", when(event.submitted_at), "submitted_at", event.submitted_at),
            Fact("Ended", when(event.observed_at), "observed_at", event.observed_at),
            Fact(
                "Took",
                duration(event.seconds_since_submission),
                "seconds_since_submission",
                event.seconds_since_submission,
            ),
            Fact("Requested by", requested_by or "unknown", "requested_by", requested_by or None),
            Fact("Reason", reason or "-", "reason", reason or None),
            Fact("Deployment", event.deployment_id, "deployment_id", event.deployment_id),
        ),
        next_steps=(
            "Read the error above and the deployment's logs: " + urls[0],
            "Check the endpoint in the Cerebras console: " + urls[-1],
            "Fix the cause, then send a new Deploy Requested with a new request_id.",
        ),
        links=tuple(urls),
        status=event.rollout_status,
        # paged only when a recovery can resolve it: a failed outcome (not cancelled)
        page=PageAction.TRIGGER if event.outcome == Outcome.FAILED else None,
    )


def stall_alert(event: RolloutStalled, links: Links) -> Alert:
    org = event.model.split("/")[1] if event.model.startswith("orgs/") else ""
    urls = links.for_deployment(event.endpoint_id, org, event.deployment_id)
    seen = "" if event.listed_by_endpoint else " The endpoint does not list this deployment at all."
    requested_by = clean(event.requested_by)
    return _rollout_alert(
        event,
        kind="rollout_stalled",
        severity=Severity.WARNING,
        what=f"stalled {duration(event.stalled_for_seconds)} in {event.rollout_status}:",
        happened=f"has made no progress for {duration(event.stalled_for_seconds)}.{seen}",
        facts=(
            field("deployment_id", event.deployment_id),
            Fact("Status", event.rollout_status, "rollout_status", event.rollout_status),
            Fact(
                "Listed",
                "yes" if event.listed_by_endpoint else "no",
                "listed_by_endpoint",
                event.listed_by_endpoint,
            ),
            Fact(
                "No progress",
                f"since {when(event.last_progress_at)} ({duration(event.stalled_for_seconds)})",
                "stalled_for_seconds",
                event.stalled_for_seconds,
            ),
            Fact(
                "Deadline",
                duration(event.stall_after_seconds),
                "stall_after_seconds",
                event.stall_after_seconds,
            ),
            row("Started", when(event.submitted_at)),
            Fact("Requested by", requested_by or "unknown", "requested_by", requested_by or None),
            Fact("Stall", f"episode {event.episode}", "episode", event.episode),
            row("Deployment", event.deployment_id),
        ),
        next_steps=(
            "Check the endpoint's replicas in the Cerebras console: " + urls[-1],
            "Read the poller's logs for this deployment: " + urls[0],
            'If it is stuck, redeploy with "force": true, or contact Cerebras support.',
        ),
        links=tuple(urls),
        status=event.rollout_status,
    )


_REJECTION_STEPS = {
    "invalid_request": "Fix the request (see Message) and send it again.",
    "endpoint_busy": 'Wait for the rollout in flight to finish, or resend with "force": true.',
    "authentication_failed": "Check the management key in Secrets Manager.",
    "cerebras_refused": "Read what Cerebras said, fix the request or permissions, resend.",
    "request_id_conflict": "Use a new request_id for a different request (see Message).",
    "version_not_ready": (
        "Check the version's sync in Cerebras (see Message); upload it again, or resend once "
        "it is synced."
    ),
}


def rejection_alert(event: DeploymentRejected) -> Alert:
    endpoint = clean(event.endpoint_id, 60) or "unknown endpoint"
    detail = (
        ""
        if event.cerebras_detail is None
        else clean(str(event.cerebras_detail), MAX_ERROR_MESSAGE)
    )
    model = clean(event.model)
    message = clean(event.message, MAX_ERROR_MESSAGE)
    requested_by = clean(event.requested_by)
    return Alert(
        kind="deploy_rejected",
        severity=Severity.WARNING,
        headline=(f"deploy rejected ({event.reason.value}):", endpoint),
        title=f"A deploy request for {endpoint} was rejected.",
        facts=(
            Fact("Endpoint", clean(event.endpoint_id) or "-", "endpoint_id", event.endpoint_id),
            Fact("Model", model or "-", "model", model or None),
            Fact("Reason", event.reason.value, "reason", event.reason.value),
            Fact("Message", message, "message", message),
            row("Cerebras said", f"{event.status_code}: {detail}" if event.status_code else "-"),
            field("status_code", event.status_code),
            field("cerebras_detail", detail or None),
            field("blocking_deployment_id", event.blocking_deployment_id),
            Fact("Request", clean(event.request_id), "request_id", event.request_id),
            Fact("Requested by", requested_by or "unknown", "requested_by", requested_by or None),
            row("When", when(event.rejected_at)),
        ),
        next_steps=(_REJECTION_STEPS[event.reason.value],),
        endpoint_id=clean(event.endpoint_id, 256) or "unknown",
        status="rejected",
        thread=f"request:{event.request_id}",
        team=event.team,
        labels=event.labels,
    )


def recovery_alert(endpoint_id: str, success: LastOutcome, failure: LastOutcome) -> Alert:
    """The endpoint rolled out ``success`` after ``failure``; routed as the failure was (its
    thread, its team), as it closes it."""
    failed_deployment_id = failure.deployment_id
    return Alert(
        kind="endpoint_recovered",
        severity=Severity.INFO,
        headline=("recovered:", clean(endpoint_id, 60), f"version {success.version_id} done"),
        title=f"{clean(endpoint_id)} is healthy again: {clean(success.model)} rolled out.",
        facts=(
            *_deployment(endpoint_id, success.model, success.version_id),
            Fact("Deployment", success.deployment_id, "deployment_id", success.deployment_id),
            Fact(
                "After failure",
                failed_deployment_id,
                "failed_deployment_id",
                failed_deployment_id,
            ),
            row("Took", duration(success.seconds_since_submission or 0.0)),
            row("Requested by", clean(success.requested_by) or "unknown"),
        ),
        next_steps=("Nothing: this closes the earlier failure alert.",),
        endpoint_id=endpoint_id,
        status="done",
        thread=failed_deployment_id,  # the failure's conversation, closed
        team=failure.team,
        labels=failure.labels,
        page=PageAction.RESOLVE,
    )


_LOST_WHY = {
    LostReason.ENDPOINT_NOT_FOUND: "its endpoint no longer exists (Cerebras answers 404)",
    LostReason.NOT_LISTED: "its endpoint does not list it",
    LostReason.MAX_AGE: "it has been in flight longer than any rollout should take",
}


def lost_alert(event: RolloutLost, links: Links) -> Alert:
    """The monitor stopped following a rollout it can no longer see."""
    gone = event.reason == LostReason.ENDPOINT_NOT_FOUND
    severity = Severity.CRITICAL if gone else Severity.WARNING
    urls = links.for_deployment(event.endpoint_id, event.org_name, event.deployment_id)
    last_status = clean(event.last_status, 64)
    return _rollout_alert(
        event,
        kind="rollout_lost",
        severity=severity,
        what=f"lost ({event.reason.value}):",
        happened=(
            f"is no longer followed: {_LOST_WHY[event.reason]}. "
            f"Its last known status was {last_status}."
        ),
        shown_version=clean(str(event.version_id), 64),
        facts=(
            Fact("Reason", event.reason.value, "reason", event.reason.value),
            Fact("Last status", last_status, "last_status", last_status),
            Fact(
                "Unseen since",
                when(event.unlisted_since) if event.unlisted_since else "-",
                "unlisted_since",
                event.unlisted_since,
            ),
            row("Started", when(event.submitted_at)),
            row("Requested by", clean(event.requested_by) or "unknown"),
            Fact("Deployment", event.deployment_id, "deployment_id", event.deployment_id),
        ),
        next_steps=(
            "Check the endpoint in the Cerebras console: " + urls[-1],
            "The endpoint is free again: redeploy if the rollout is still wanted.",
        ),
        links=tuple(urls),
        status="lost",
        page=PageAction.TRIGGER if gone else None,  # resolved by the endpoint's next success
    )


def reachability_alert(event: CerebrasEpisode) -> Alert:
    """Cerebras has not answered a status read for a while (warning), or answers again."""
    down = isinstance(event, CerebrasUnreachable)
    kinds = ", ".join(clean(k, 60) for k in event.error_kinds[:10]) or "-"
    return Alert(
        kind="cerebras_unreachable" if down else "cerebras_reachable",
        severity=Severity.WARNING if down else Severity.INFO,
        headline=(
            "Cerebras unreachable:" if down else "Cerebras reachable again:",
            f"status reads failed for {duration(event.failing_for_seconds)}",
        ),
        title="Every status read of the poller has failed" if down else "Cerebras answers again",
        facts=(
            Fact("Failing since", when(event.failing_since), "failing_since", event.failing_since),
            Fact(
                "For",
                duration(event.failing_for_seconds),
                "failing_for_seconds",
                event.failing_for_seconds,
            ),
            Fact("Errors", kinds, "error_kinds", event.error_kinds[:10]),
            Fact("Episode", str(event.episode), "episode", event.episode),
            row("When", when(event.observed_at)),
        ),
        next_steps=(
            (
                "Rollouts are not being followed: the poller's PollErrors metrics and logs say "
                "which error; check Cerebras's own status and the network path to its API.",
                "If the errors are authentication, check the management key in Secrets Manager.",
            )
            if down
            else ("Nothing: rollouts are followed again; this closes the unreachable warning.",)
        ),
        endpoint_id="-",
        status="unreachable" if down else "reachable",
        thread=f"cerebras-episode-{event.episode}",
    )
