"""How every alert is laid out: cleaned, bounded text, the subject line, the body's rows.

Shared by all the messages of :mod:`rollout_monitor.messages`.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any
from urllib.parse import quote

from rollout_monitor.ports import MAX_SUBJECT_LENGTH, Notification

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


def body(title: str, rows: list[tuple[str, str]], next_steps: list[str]) -> str:
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


def notification(
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
