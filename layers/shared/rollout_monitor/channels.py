"""How each channel shows an alert: the email's subject and text, the JSON document for
machines, the AWS Chatbot custom notification, the PagerDuty Events API v2 event.

Pure functions of an :class:`Alert`; the adapters that send them are ``notifier.py`` (SNS)
and ``pagerduty.py``. Each bound below is a named constant, applied before anything is sent.
"""

from __future__ import annotations

import hashlib
import string
from dataclasses import dataclass
from typing import Any

from rollout_monitor.formatting import Alert, PageAction, Severity, subject_line

# -- email: the subject and the text, from templates a user may change ----------------------

DEFAULT_SUBJECT_TEMPLATE = "[$SEVERITY] $headline"
DEFAULT_BODY_TEMPLATE = "$title\n\n$facts\n\nWhat to do next:\n$next_steps\n"
MAX_BODY = 8000  # the text body as a whole
MAX_VALUE_LINES = 40  # a multi-line value shown in the text body
_TRUNCATED = "\n... (truncated)"
TEMPLATE_FIELDS = (
    "SEVERITY",
    "severity",
    "kind",
    "headline",
    "title",
    "facts",
    "next_steps",
    "links",
    "endpoint_id",
    "status",
    "team",
)


class TemplateError(ValueError):
    """A template names a field no alert has, or is not a valid template."""


@dataclass(frozen=True)
class EmailFormat:
    """The subject and text of an alert for people; ``$field`` templates (``string.Template``)
    with the fields of :data:`TEMPLATE_FIELDS`."""

    subject_template: str = DEFAULT_SUBJECT_TEMPLATE
    body_template: str = DEFAULT_BODY_TEMPLATE

    def __post_init__(self) -> None:
        for name, text in (("subject", self.subject_template), ("body", self.body_template)):
            template = string.Template(text)
            unknown = sorted(set(template.get_identifiers()) - set(TEMPLATE_FIELDS))
            if not template.is_valid() or unknown:
                raise TemplateError(
                    f"the alert {name} template may use ${', $'.join(TEMPLATE_FIELDS)}; "
                    f"it names {', '.join(unknown) or 'an invalid placeholder'}"
                )

    @classmethod
    def of(cls, subject_template: str, body_template: str) -> EmailFormat:
        """From configuration: an empty template is the default one; ``\\n`` is a new line
        (a CloudFormation parameter holds one line)."""
        subject_template, body_template = (
            text.replace("\\n", "\n") for text in (subject_template, body_template)
        )
        return cls(
            subject_template or DEFAULT_SUBJECT_TEMPLATE, body_template or DEFAULT_BODY_TEMPLATE
        )

    def subject(self, alert: Alert) -> str:
        """ASCII, one line, under SNS's 100 characters, never empty, whatever the template
        (one that renders nothing, e.g. ``$team`` for an alert without, gives the default)."""
        fields = _fields(alert)
        subject = subject_line(string.Template(self.subject_template).substitute(fields))
        if subject:
            return subject
        return subject_line(string.Template(DEFAULT_SUBJECT_TEMPLATE).substitute(fields))

    def text(self, alert: Alert) -> str:
        """The text; if it is too long the facts are cut, so the next steps always fit."""
        template = string.Template(self.body_template)
        fields = _fields(alert)
        text = template.substitute(fields)
        if len(text.removesuffix("\n")) <= MAX_BODY:
            return text
        # Cut where the text was cut before it had templates (3 characters short of the bound)
        facts = fields["facts"]
        keep = max(MAX_BODY - (len(text) - len(facts)) - len(_TRUNCATED) - 3, 0)
        text = template.substitute(fields | {"facts": facts[:keep] + _TRUNCATED})
        return text if len(text) <= MAX_BODY else text[: MAX_BODY - len(_TRUNCATED)] + _TRUNCATED


def _fields(alert: Alert) -> dict[str, str]:
    return {
        "SEVERITY": alert.severity.upper(),
        "severity": alert.severity.value,
        "kind": alert.kind,
        "headline": " ".join(part for part in alert.headline if part),
        "title": alert.title,
        "facts": rows(alert),
        "next_steps": "\n".join(f"  - {step}" for step in alert.next_steps),
        "links": "\n".join(alert.links),
        "endpoint_id": alert.endpoint_id or "",
        "status": alert.status,
        "team": alert.team or "",
    }


def rows(alert: Alert) -> str:
    """The facts shown to people, one aligned row each (a long value on its own lines)."""
    shown = [(f.label, f.shown) for f in alert.facts if f.label is not None]
    width = max(len(label) for label, _ in shown)
    lines = []
    for label, value in shown:
        first, *rest = (value or "-").split("\n")
        if len(rest) >= MAX_VALUE_LINES:
            rest = [*rest[: MAX_VALUE_LINES - 1], f"({len(rest) - MAX_VALUE_LINES + 1} more lines)"]
        lines.append(f"{label.ljust(width)}  {first}")
        lines.extend(f"{' ' * width}  {line}" for line in rest)
    return "\n".join(lines)


# -- machines: the JSON document ---------------------------------------------------------------


def document(alert: Alert, subject: str) -> dict[str, Any]:
    """The alert for machines: its kind, severity and subject, then every field of its facts."""
    fields = {f.key: f.value for f in alert.facts if f.key is not None}
    routing = {"team": alert.team} if alert.team else {}
    labels = {"labels": dict(alert.labels)} if alert.labels else {}
    links = {"links": list(alert.links)} if alert.links else {}
    return (
        {"kind": alert.kind, "severity": alert.severity.value, "subject": subject}
        | fields
        | routing
        | labels
        | links
    )


# -- chat: the AWS Chatbot (Amazon Q Developer) custom notification ---------------------------

# Chatbot renders an SNS message only in its own custom-notification format. The bounds are
# the project's, sized for Slack (3,000 characters of text per block) and Teams; the whole
# message also stays within SNS's 256 KB (notifier.py).
CHATBOT_TITLE = 250
CHATBOT_DESCRIPTION = 3000
CHATBOT_STEPS = 5
CHATBOT_STEP = 500
CHATBOT_KEYWORDS = 5
CHATBOT_KEYWORD = 50
CHATBOT_CONTEXT_VALUE = 256
_MORE = "(the rest is in the email and the JSON alert)"
_EMOJI = {
    Severity.CRITICAL: ":rotating_light:",
    Severity.WARNING: ":warning:",
    Severity.INFO: ":white_check_mark:",
}


def chat_text(text: str, limit: int) -> str:
    """Untrusted text for chat markdown, shown inside a code span (where Slack and Teams make
    no mention, link or formatting): Slack's three escapes, no backtick to leave the span,
    bounded."""
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    escaped = escaped.replace("`", "'")
    return escaped if len(escaped) <= limit else escaped[: limit - 3] + "..."


def _chat_steps(alert: Alert) -> list[str]:
    """The next steps, then every link no step gives (each log group, the console)."""
    unsaid = [
        f"Open {link}" for link in alert.links if not any(link in s for s in alert.next_steps)
    ]
    return [chat_text(step, CHATBOT_STEP) for step in (*alert.next_steps, *unsaid)][:CHATBOT_STEPS]


def chatbot(alert: Alert, subject: str) -> dict[str, Any]:
    """The custom notification: the title, the facts as markdown, the steps and links, one
    thread per deployment."""
    lines = [f"`{chat_text(alert.title, CHATBOT_STEP)}`"] + [
        f"*{f.label}:* `{chat_text(f.shown, CHATBOT_STEP).replace(chr(10), ' ')}`"
        for f in alert.facts
        if f.label is not None
    ]
    description = "\n".join(lines)
    while len(description) > CHATBOT_DESCRIPTION:  # whole facts go, never half a code span
        lines = lines[:-1]
        description = "\n".join([*lines, _MORE])
    keywords = [alert.severity.value, alert.kind, alert.status, alert.team or ""]
    context = {
        "severity": alert.severity.value,
        "endpoint_id": alert.endpoint_id or "",
        "status": alert.status,
    } | ({"team": alert.team} if alert.team else {})
    return {
        "version": "1.0",
        "source": "custom",
        "content": {
            "textType": "client-markdown",
            "title": f"{_EMOJI[alert.severity]} `{chat_text(subject, CHATBOT_TITLE - 30)}`",
            "description": description,
            "nextSteps": _chat_steps(alert),
            "keywords": [chat_text(k, CHATBOT_KEYWORD) for k in keywords if k][:CHATBOT_KEYWORDS],
        },
        "metadata": {
            "threadId": chat_text(alert.thread, CHATBOT_KEYWORD * 2),
            "summary": chat_text(subject, CHATBOT_TITLE),
            "eventType": alert.kind,
            "relatedResources": [chat_text(link, CHATBOT_STEP) for link in alert.links],
            "additionalContext": {
                key: chat_text(value, CHATBOT_CONTEXT_VALUE) for key, value in context.items()
            },
        },
    }


# -- pager: the PagerDuty Events API v2 event ---------------------------------------------------

PAGERDUTY_SUMMARY = 1024  # Events API v2: payload.summary
PAGERDUTY_DEDUP_KEY = 255  # Events API v2: dedup_key
PAGERDUTY_SEVERITY = {
    Severity.CRITICAL: "critical",
    Severity.WARNING: "warning",
    Severity.INFO: "info",
}


def dedup_key(endpoint_id: str) -> str:
    """One incident per endpoint: every failure of it joins the open one; recovery resolves
    it. An endpoint id too long for the key is hashed."""
    key = f"rollout-monitor/{endpoint_id}"
    if len(key) <= PAGERDUTY_DEDUP_KEY:
        return key
    return "rollout-monitor/sha256:" + hashlib.sha256(endpoint_id.encode()).hexdigest()


def pagerduty(alert: Alert, subject: str, routing_key: str) -> dict[str, Any]:
    """A ``trigger`` (with the alert's facts) or a ``resolve`` for the endpoint's incident."""
    event: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": (alert.page or PageAction.TRIGGER).value,
        "dedup_key": dedup_key(alert.endpoint_id or "unknown"),
    }
    if alert.page == PageAction.RESOLVE:
        return event
    details = document(alert, subject)
    details.pop("links", None)
    return event | {
        "payload": {
            "summary": subject[:PAGERDUTY_SUMMARY],
            "source": f"cerebras-rollout-monitor/{alert.endpoint_id or 'unknown'}"[:255],
            "severity": PAGERDUTY_SEVERITY[alert.severity],
            "component": (alert.endpoint_id or "unknown")[:255],
            "group": (alert.team or "rollout-monitor")[:255],
            "class": alert.kind,
            "custom_details": details,
        },
        "links": [
            {"href": link, "text": "logs" if "cloudwatch" in link else "console"}
            for link in alert.links
        ],
        "client": "cerebras-rollout-monitor",
    }
