"""What each alert says: the subject, the text for people, the JSON for machines, the attributes.

Built from the event that triggered it; every untrusted string is cleaned and bounded here.
When to alert, and once, is :mod:`rollout_monitor.alerts`; where it goes, ``notifier.py``.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any
from urllib.parse import quote

from rollout_monitor.events import DeploymentRejected, RolloutStalled, RolloutStatusChanged
from rollout_monitor.ports import MAX_SUBJECT_LENGTH, Notification
from rollout_monitor.records import LastOutcome

MAX_FIELD = 300  # requested_by, reason and other short untrusted text
MAX_ERROR_MESSAGE = 4000  # Cerebras's error message, verbatim up to this
MAX_VALUE_LINES = 40  # a multi-line value shown in the text body
MAX_BODY = 8000  # the text body as a whole


class Severity(StrEnum):
    CRITICAL = "critical"
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True)
class Links:
    region: str
    log_groups: tuple[str, ...]
    console_endpoint_url: str  # with {endpoint_id} and {org_name}

    def for_deployment(self, endpoint_id: str, org_name: str, deployment_id: str) -> list[str]:
        base = f"https://{self.region}.console.aws.amazon.com/cloudwatch/home?region={self.region}"
        links = [
            f"{base}#logsV2:log-groups/log-group/{_console_quote(group)}"
            f"/log-events$3FfilterPattern$3D%22{deployment_id}%22"
            for group in self.log_groups
        ]
        links.append(self.console_endpoint_url.format(endpoint_id=endpoint_id, org_name=org_name))
        return links


def _console_quote(value: str) -> str:
    return quote(quote(value, safe=""), safe="").replace("%", "$")


def clean(text: str | None, limit: int = MAX_FIELD, *, multiline: bool = False) -> str:
    """Untrusted text made safe to show: no control characters, bounded."""
    if not text:
        return ""
    kept = []
    for ch in text:
        if ch == "\n" and multiline:
            kept.append(ch)
        elif unicodedata.category(ch)[0] == "C" or ch in "\u2028\u2029":
            kept.append(" ")
        else:
            kept.append(ch)
    cleaned = "".join(kept).strip()
    if not multiline:
        cleaned = " ".join(cleaned.split())
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 15] + "... (truncated)"


def subject_line(*parts: str) -> str:
    """ASCII, one line, under 100 characters; the most telling part first."""
    text = " ".join(p for p in parts if p)
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    printable = " ".join("".join(c if 32 <= ord(c) < 127 else " " for c in ascii_text).split())
    if len(printable) <= MAX_SUBJECT_LENGTH:
        return printable
    return printable[: MAX_SUBJECT_LENGTH - 3].rstrip() + "..."


def _when(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m {secs:02d}s" if hours else f"{minutes}m {secs:02d}s"


def _replicas(updated: int | None, total: int | None) -> str:
    if updated is None and total is None:
        return "unknown"
    shown = ["?" if n is None else str(n) for n in (updated, total)]
    return f"{shown[0]} of {shown[1]} updated"


def _body(title: str, rows: list[tuple[str, str]], next_steps: list[str]) -> str:
    width = max(len(k) for k, _ in rows)
    lines = [title, ""]
    for key, value in rows:
        first, *rest = (value or "-").split("\n")
        if len(rest) >= MAX_VALUE_LINES:
            rest = [*rest[: MAX_VALUE_LINES - 1], f"({len(rest) - MAX_VALUE_LINES + 1} more lines)"]
        lines.append(f"{key.ljust(width)}  {first}")
        lines.extend(f"{' ' * width}  {line}" for line in rest)
    steps = ["", "What to do next:"] + [f"  - {step}" for step in next_steps]
    text = "\n".join(lines)
    tail = "\n".join(steps) + "\n"
    if len(text) + len(tail) > MAX_BODY:  # the next steps and links always fit
        text = text[: MAX_BODY - len(tail) - 20] + "\n... (truncated)"
    return text + "\n" + tail


def _notification(
    severity: Severity,
    kind: str,
    subject: str,
    text: str,
    document: dict[str, Any],
    *,
    endpoint_id: str | None,
    status: str,
) -> Notification:
    """One alert: the subject, the text for people, the JSON for machines, the attributes."""
    return Notification(
        subject,
        text,
        {"kind": kind, "severity": severity.value, "subject": subject} | document,
        {
            "severity": severity.value,
            "endpoint_id": clean(endpoint_id, 256) or "unknown",
            "rollout_status": status,
        },
    )


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
        f"ended {event.rollout_status} after {_duration(event.seconds_since_submission)}."
    )
    rows = [
        ("Endpoint", clean(event.endpoint_id)),
        ("Model", clean(event.model)),
        ("Version", version),
        ("Status", f"{event.previous_status or 'submitted'} -> {event.rollout_status}"),
        ("Error", error or "(Cerebras sent no error message)"),
        ("Replicas", _replicas(event.updated_replicas, event.total_replicas)),
        ("Started", _when(event.submitted_at)),
        ("Ended", _when(event.observed_at)),
        ("Took", _duration(event.seconds_since_submission)),
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
    return _notification(
        severity,
        "rollout_failed",
        subject,
        _body(title, rows, steps),
        document,
        endpoint_id=event.endpoint_id,
        status=event.rollout_status,
    )


def stall_alert(event: RolloutStalled, links: Links) -> Notification:
    severity = Severity.WARNING
    subject = subject_line(
        f"[{severity.upper()}]",
        f"stalled {_duration(event.stalled_for_seconds)} in {event.rollout_status}:",
        clean(event.endpoint_id, 60),
        f"version {event.version_id}",
    )
    org = event.model.split("/")[1] if event.model.startswith("orgs/") else ""
    urls = links.for_deployment(event.endpoint_id, org, event.deployment_id)
    seen = "" if event.listed_by_endpoint else " The endpoint does not list this deployment at all."
    title = (
        f"The rollout of {clean(event.model)} to {clean(event.endpoint_id)} has made no "
        f"progress for {_duration(event.stalled_for_seconds)}.{seen}"
    )
    rows = [
        ("Endpoint", clean(event.endpoint_id)),
        ("Model", clean(event.model)),
        ("Version", str(event.version_id)),
        ("Status", event.rollout_status),
        ("Listed", "yes" if event.listed_by_endpoint else "no"),
        (
            "No progress",
            f"since {_when(event.last_progress_at)} ({_duration(event.stalled_for_seconds)})",
        ),
        ("Deadline", _duration(event.stall_after_seconds)),
        ("Started", _when(event.submitted_at)),
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
    return _notification(
        severity,
        "rollout_stalled",
        subject,
        _body(title, rows, steps),
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
        ("When", _when(event.rejected_at)),
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
    return _notification(
        severity,
        "deploy_rejected",
        subject,
        _body(f"A deploy request for {endpoint} was rejected.", rows, [steps[event.reason.value]]),
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
        ("Took", _duration(success.seconds_since_submission or 0.0)),
        ("Requested by", clean(success.requested_by) or "unknown"),
    ]
    document = {
        "endpoint_id": endpoint_id,
        "model": success.model,
        "version_id": success.version_id,
        "deployment_id": success.deployment_id,
        "failed_deployment_id": failed_deployment_id,
    }
    return _notification(
        severity,
        "endpoint_recovered",
        subject,
        _body(
            f"{clean(endpoint_id)} is healthy again: {clean(success.model)} rolled out.",
            rows,
            ["Nothing: this closes the earlier failure alert."],
        ),
        document,
        endpoint_id=endpoint_id,
        status="done",
    )
