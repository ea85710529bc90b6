"""What an alert is (:class:`Alert`, its :class:`Fact` s) and the helpers every kind uses to
say it: cleaned, bounded text, times, durations, the subject line.

Each kind is built in :mod:`rollout_monitor.messages`; each channel renders it in
:mod:`rollout_monitor.channels`.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from dataclasses import field as dc_field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any
from urllib.parse import quote

from rollout_monitor.ports import MAX_SUBJECT_LENGTH

MAX_FIELD = 300  # requested_by, reason and other short untrusted text
MAX_ERROR_MESSAGE = 4000  # Cerebras's error message, verbatim up to this


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
            f"/log-events$3FfilterPattern$3D%22{_console_quote(deployment_id)}%22"
            for group in self.log_groups
        ]
        # Names from Cerebras are quoted whole: one can neither leave its path segment nor
        # add a query, a fragment or a line to the link.
        console = self.console_endpoint_url.format(
            endpoint_id=quote(endpoint_id, safe=""), org_name=quote(org_name, safe="")
        )
        links.append(console)
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


def when(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m {secs:02d}s" if hours else f"{minutes}m {secs:02d}s"


def replicas(updated: int | None, total: int | None) -> str:
    if updated is None and total is None:
        return "unknown"
    shown = ["?" if n is None else str(n) for n in (updated, total)]
    return f"{shown[0]} of {shown[1]} updated"


@dataclass(frozen=True)
class Fact:
    """One fact of an alert: shown to people as a row (``label``), given to machines as a
    field (``key``), or both. The same fact, written once."""

    label: str | None  # the row's label; None: a field of the JSON document only
    shown: str  # the row's value, cleaned for people
    key: str | None = None  # the document's field; None: a row only
    value: Any = None  # the field's value


def row(label: str, shown: str) -> Fact:
    return Fact(label, shown)


def field(key: str, value: Any) -> Fact:
    return Fact(None, "", key, value)


class PageAction(StrEnum):
    """What an alert does to the endpoint's incident in a pager (PagerDuty)."""

    TRIGGER = "trigger"
    RESOLVE = "resolve"


@dataclass(frozen=True)
class Alert:
    """What one alert says, built once per kind (``messages.py``) and rendered per channel
    (``channels.py``): the email, the JSON document, the chat message, the pager event."""

    kind: str
    severity: Severity
    headline: tuple[str, ...]  # the subject after the severity, the most telling part first
    title: str  # what happened, in a sentence
    facts: tuple[Fact, ...]
    next_steps: tuple[str, ...]
    links: tuple[str, ...] = ()  # the logs, then the endpoint's console page
    endpoint_id: str | None = None  # as routed: attributes, pager incident
    status: str = ""
    thread: str = ""  # one conversation per deployment (or per episode) in chat
    team: str | None = None
    labels: dict[str, str] = dc_field(default_factory=dict)
    page: PageAction | None = None

    @property
    def routing(self) -> dict[str, str]:
        """What a subscriber filters on (SNS message attributes)."""
        attributes = {
            "severity": self.severity.value,
            "endpoint_id": clean(self.endpoint_id, 256) or "unknown",
            "rollout_status": self.status,
        }
        return attributes | ({"team": self.team} if self.team else {})
