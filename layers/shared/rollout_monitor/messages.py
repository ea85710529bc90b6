"""What each alert says: the subject, the text for people, the JSON for machines, the attributes.

Built from the event that triggered it; every untrusted string is cleaned and bounded (layout
and bounds: :mod:`rollout_monitor.formatting`). When to alert, and once, is
:mod:`rollout_monitor.alerts`; where it goes, ``notifier.py``.
"""

from __future__ import annotations

from rollout_monitor.events import (
    CerebrasEpisode,
    CerebrasUnreachable,
    DeploymentRejected,
    LostReason,
    RolloutLost,
    RolloutStalled,
    RolloutStatusChanged,
)
from rollout_monitor.formatting import (
    MAX_ERROR_MESSAGE,
    Links,
    Severity,
    body,
    clean,
    duration,
    notification,
    replicas,
    subject_line,
    when,
)
from rollout_monitor.ports import Notification
from rollout_monitor.records import LastOutcome

__all__ = [
    "Links",
    "clean",
    "failure_alert",
    "lost_alert",
    "recovery_alert",
    "rejection_alert",
    "stall_alert",
    "subject_line",
]


def failure_alert(event: RolloutStatusChanged, links: Links) -> Notification:
    severity = Severity.CRITICAL
    error = clean(event.error_message, MAX_ERROR_MESSAGE, multiline=True)
    version = str(event.version_id)
    subject = subject_line(
        f"[{severity.upper()}]",
        f"{event.rollout_status}:",
        clean(event.endpoint_id, 60),
        f"version {version}",
    )
    urls = links.for_deployment(event.endpoint_id, event.org_name, event.deployment_id)
    title = (
        f"The rollout of {clean(event.model)} to {clean(event.endpoint_id)} "
        f"ended {event.rollout_status} after {duration(event.seconds_since_submission)}."
    )
    rows = [
        ("Endpoint", clean(event.endpoint_id)),
        ("Model", clean(event.model)),
        ("Version", version),
        ("Status", f"{event.previous_status or 'submitted'} -> {event.rollout_status}"),
        ("Error", error or "(Cerebras sent no error message)"),
        ("Replicas", replicas(event.updated_replicas, event.total_replicas)),
        ("Started", when(event.submitted_at)),
        ("Ended", when(event.observed_at)),
        ("Took", duration(event.seconds_since_submission)),
        ("Requested by", clean(event.requested_by) or "unknown"),
        ("Reason", clean(event.reason) or "-"),
        ("Deployment", event.deployment_id),
    ]
    steps = [
        "Read the error above and the deployment's logs: " + urls[0],
        "Check the endpoint in the Cerebras console: " + urls[-1],
        "Fix the cause, then send a new Deploy Requested with a new request_id.",
    ]
    document = {
        "endpoint_id": event.endpoint_id,
        "model": event.model,
        "version_id": event.version_id,
        "deployment_id": event.deployment_id,
        "previous_status": event.previous_status,
        "rollout_status": event.rollout_status,
        "error_message": error or None,
        "updated_replicas": event.updated_replicas,
        "total_replicas": event.total_replicas,
        "submitted_at": event.submitted_at,
        "observed_at": event.observed_at,
        "seconds_since_submission": event.seconds_since_submission,
        "requested_by": clean(event.requested_by) or None,
        "reason": clean(event.reason) or None,
        "links": urls,
    }
    return notification(
        severity,
        "rollout_failed",
        subject,
        body(title, rows, steps),
        document,
        endpoint_id=event.endpoint_id,
        status=event.rollout_status,
    )


def stall_alert(event: RolloutStalled, links: Links) -> Notification:
    severity = Severity.WARNING
    subject = subject_line(
        f"[{severity.upper()}]",
        f"stalled {duration(event.stalled_for_seconds)} in {event.rollout_status}:",
        clean(event.endpoint_id, 60),
        f"version {event.version_id}",
    )
    org = event.model.split("/")[1] if event.model.startswith("orgs/") else ""
    urls = links.for_deployment(event.endpoint_id, org, event.deployment_id)
    seen = "" if event.listed_by_endpoint else " The endpoint does not list this deployment at all."
    title = (
        f"The rollout of {clean(event.model)} to {clean(event.endpoint_id)} has made no "
        f"progress for {duration(event.stalled_for_seconds)}.{seen}"
    )
    rows = [
        ("Endpoint", clean(event.endpoint_id)),
        ("Model", clean(event.model)),
        ("Version", str(event.version_id)),
        ("Status", event.rollout_status),
        ("Listed", "yes" if event.listed_by_endpoint else "no"),
        (
            "No progress",
            f"since {when(event.last_progress_at)} ({duration(event.stalled_for_seconds)})",
        ),
        ("Deadline", duration(event.stall_after_seconds)),
        ("Started", when(event.submitted_at)),
        ("Requested by", clean(event.requested_by) or "unknown"),
        ("Stall", f"episode {event.episode}"),
        ("Deployment", event.deployment_id),
    ]
    steps = [
        "Check the endpoint's replicas in the Cerebras console: " + urls[-1],
        "Read the poller's logs for this deployment: " + urls[0],
        'If it is stuck, redeploy with "force": true, or contact Cerebras support.',
    ]
    document = {
        "endpoint_id": event.endpoint_id,
        "model": event.model,
        "version_id": event.version_id,
        "deployment_id": event.deployment_id,
        "rollout_status": event.rollout_status,
        "listed_by_endpoint": event.listed_by_endpoint,
        "stalled_for_seconds": event.stalled_for_seconds,
        "stall_after_seconds": event.stall_after_seconds,
        "episode": event.episode,
        "requested_by": clean(event.requested_by) or None,
        "links": urls,
    }
    return notification(
        severity,
        "rollout_stalled",
        subject,
        body(title, rows, steps),
        document,
        endpoint_id=event.endpoint_id,
        status=event.rollout_status,
    )


def rejection_alert(event: DeploymentRejected) -> Notification:
    severity = Severity.WARNING
    endpoint = clean(event.endpoint_id, 60) or "unknown endpoint"
    subject = subject_line(
        f"[{severity.upper()}]", f"deploy rejected ({event.reason.value}):", endpoint
    )
    detail = (
        ""
        if event.cerebras_detail is None
        else clean(str(event.cerebras_detail), MAX_ERROR_MESSAGE)
    )
    rows = [
        ("Endpoint", clean(event.endpoint_id) or "-"),
        ("Model", clean(event.model) or "-"),
        ("Reason", event.reason.value),
        ("Message", clean(event.message, MAX_ERROR_MESSAGE)),
        ("Cerebras said", f"{event.status_code}: {detail}" if event.status_code else "-"),
        ("Request", clean(event.request_id)),
        ("Requested by", clean(event.requested_by) or "unknown"),
        ("When", when(event.rejected_at)),
    ]
    steps = {
        "invalid_request": "Fix the request (see Message) and send it again.",
        "endpoint_busy": 'Wait for the rollout in flight to finish, or resend with "force": true.',
        "authentication_failed": "Check the management key in Secrets Manager.",
        "cerebras_refused": "Read what Cerebras said, fix the request or permissions, resend.",
        "request_id_conflict": "Use a new request_id for a different request (see Message).",
    }
    document = {
        "endpoint_id": event.endpoint_id,
        "model": clean(event.model) or None,
        "request_id": event.request_id,
        "reason": event.reason.value,
        "message": clean(event.message, MAX_ERROR_MESSAGE),
        "status_code": event.status_code,
        "cerebras_detail": detail or None,
        "blocking_deployment_id": event.blocking_deployment_id,
        "requested_by": clean(event.requested_by) or None,
    }
    return notification(
        severity,
        "deploy_rejected",
        subject,
        body(f"A deploy request for {endpoint} was rejected.", rows, [steps[event.reason.value]]),
        document,
        endpoint_id=clean(event.endpoint_id, 256) or "unknown",
        status="rejected",
    )


def recovery_alert(
    endpoint_id: str, success: LastOutcome, failed_deployment_id: str
) -> Notification:
    """The endpoint rolled out ``success`` after ``failed_deployment_id`` had failed."""
    severity = Severity.INFO
    subject = subject_line(
        f"[{severity.upper()}]",
        "recovered:",
        clean(endpoint_id, 60),
        f"version {success.version_id} done",
    )
    rows = [
        ("Endpoint", clean(endpoint_id)),
        ("Model", clean(success.model)),
        ("Version", str(success.version_id)),
        ("Deployment", success.deployment_id),
        ("After failure", failed_deployment_id),
        ("Took", duration(success.seconds_since_submission or 0.0)),
        ("Requested by", clean(success.requested_by) or "unknown"),
    ]
    document = {
        "endpoint_id": endpoint_id,
        "model": success.model,
        "version_id": success.version_id,
        "deployment_id": success.deployment_id,
        "failed_deployment_id": failed_deployment_id,
    }
    return notification(
        severity,
        "endpoint_recovered",
        subject,
        body(
            f"{clean(endpoint_id)} is healthy again: {clean(success.model)} rolled out.",
            rows,
            ["Nothing: this closes the earlier failure alert."],
        ),
        document,
        endpoint_id=endpoint_id,
        status="done",
    )


_LOST_WHY = {
    LostReason.ENDPOINT_NOT_FOUND: "its endpoint no longer exists (Cerebras answers 404)",
    LostReason.NOT_LISTED: "its endpoint does not list it",
    LostReason.MAX_AGE: "it has been in flight longer than any rollout should take",
}


def lost_alert(event: RolloutLost, links: Links) -> Notification:
    """The monitor stopped following a rollout it can no longer see."""
    gone = event.reason == LostReason.ENDPOINT_NOT_FOUND
    severity = Severity.CRITICAL if gone else Severity.WARNING
    subject = subject_line(
        f"[{severity.upper()}]",
        f"lost ({event.reason.value}):",
        clean(event.endpoint_id, 60),
        f"version {event.version_id}",
    )
    urls = links.for_deployment(event.endpoint_id, event.org_name, event.deployment_id)
    title = (
        f"The rollout of {clean(event.model)} to {clean(event.endpoint_id)} is no longer "
        f"followed: {_LOST_WHY[event.reason]}. Its last known status was "
        f"{clean(event.last_status, 64)}."
    )
    unseen = when(event.unlisted_since) if event.unlisted_since else "-"
    rows = [
        ("Endpoint", clean(event.endpoint_id)),
        ("Model", clean(event.model)),
        ("Version", clean(str(event.version_id), 64)),
        ("Reason", event.reason.value),
        ("Last status", clean(event.last_status, 64)),
        ("Unseen since", unseen),
        ("Started", when(event.submitted_at)),
        ("Requested by", clean(event.requested_by) or "unknown"),
        ("Deployment", event.deployment_id),
    ]
    steps = [
        "Check the endpoint in the Cerebras console: " + urls[-1],
        "The endpoint is free again: redeploy if the rollout is still wanted.",
    ]
    document = {
        "endpoint_id": event.endpoint_id,
        "model": event.model,
        "version_id": event.version_id,
        "deployment_id": event.deployment_id,
        "reason": event.reason.value,
        "last_status": clean(event.last_status, 64),
        "unlisted_since": event.unlisted_since,
        "links": urls,
    }
    return notification(
        severity,
        "rollout_lost",
        subject,
        body(title, rows, steps),
        document,
        endpoint_id=event.endpoint_id,
        status="lost",
    )


def reachability_alert(event: CerebrasEpisode) -> Notification:
    """Cerebras has not answered a status read for a while (warning), or answers again."""
    down = isinstance(event, CerebrasUnreachable)
    severity = Severity.WARNING if down else Severity.INFO
    subject = subject_line(
        f"[{severity.upper()}]",
        "Cerebras unreachable:" if down else "Cerebras reachable again:",
        f"status reads failed for {duration(event.failing_for_seconds)}",
    )
    kinds = ", ".join(clean(k, 60) for k in event.error_kinds[:10]) or "-"
    rows = [
        ("Failing since", when(event.failing_since)),
        ("For", duration(event.failing_for_seconds)),
        ("Errors", kinds),
        ("Episode", str(event.episode)),
        ("When", when(event.observed_at)),
    ]
    steps = (
        [
            "Rollouts are not being followed: the poller's PollErrors metrics and logs say "
            "which error; check Cerebras's own status and the network path to its API.",
            "If the errors are authentication, check the management key in Secrets Manager.",
        ]
        if down
        else ["Nothing: rollouts are followed again; this closes the unreachable warning."]
    )
    document = {
        "episode": event.episode,
        "failing_since": event.failing_since,
        "failing_for_seconds": event.failing_for_seconds,
        "error_kinds": event.error_kinds[:10],
    }
    return notification(
        severity,
        "cerebras_unreachable" if down else "cerebras_reachable",
        subject,
        body(
            "Every status read of the poller has failed" if down else "Cerebras answers again",
            rows,
            steps,
        ),
        document,
        endpoint_id="-",
        status="unreachable" if down else "reachable",
    )
