"""Alert messages stay valid whatever untrusted text they carry."""

from __future__ import annotations

import json
import unicodedata

from rollout_monitor.events import DeploymentRejected, RejectionReason, RolloutStatusChanged
from rollout_monitor.formatting import Alert
from rollout_monitor.messages import Links, clean, failure_alert, rejection_alert, subject_line
from rollout_monitor.notifier import MAX_MESSAGE_BYTES, MAX_SUBJECT_LENGTH
from rollout_monitor_local.topic import SentAlert
from tests.fakes import FakeTopic
from tests.unit.alert_samples import CHANGE, HOSTILE

LINKS = Links(
    "us-east-1", ("/aws/lambda/poller",), "https://console.example/{org_name}/{endpoint_id}"
)


def event(**overrides: object) -> RolloutStatusChanged:
    hostile = {
        "error_message": HOSTILE,
        "requested_by": "eve\x00\nwith\tcontrol" + "x" * 5000,
        "reason": "r\u0007" * 3000,
    }
    return RolloutStatusChanged.model_validate(CHANGE | hostile | overrides)


def rendered(alert: Alert) -> SentAlert:
    """The alert as the alert topic sends it (its default subject and text, its JSON)."""
    topic = FakeTopic()
    topic.send(alert)
    return topic.sent[0]


def valid_subject(subject: str) -> bool:
    return (
        len(subject) < 100
        and subject.isascii()
        and "\n" not in subject
        and all(32 <= ord(c) < 127 for c in subject)
    )


def no_control_characters(text: str) -> bool:
    return all(c == "\n" or unicodedata.category(c)[0] != "C" for c in text)


def test_a_10000_character_error_message_gives_a_valid_subject_and_a_bounded_body() -> None:
    alert = rendered(failure_alert(event(), LINKS))
    assert valid_subject(alert.subject)
    assert alert.subject == "[CRITICAL] error: my-org-llama-3.3-70b version 7"
    assert len(alert.text) <= 8_000
    assert "more lines)" in alert.text
    assert alert.text.rstrip().endswith("with a new request_id.")  # the next steps survive
    assert no_control_characters(alert.text)
    assert "\x1b" not in json.dumps(alert.document, ensure_ascii=False)
    assert len(alert.document["error_message"]) <= 4_000
    assert alert.document["error_message"].endswith("... (truncated)")
    assert len(alert.document["requested_by"]) <= 300
    assert (
        len(json.dumps(alert.document).encode()) + len(alert.text.encode()) * 2 < MAX_MESSAGE_BYTES
    )


def test_hostile_text_in_the_subject_is_made_ascii_and_short() -> None:
    rejected = DeploymentRejected(
        event_id="rejected:r",
        endpoint_id="\u202eevil\nendpoint" + "é" * 300,
        model=None,
        request_id="r",
        requested_by=None,
        reason=RejectionReason.INVALID_REQUEST,
        message=HOSTILE,
        rejected_at=1.0,
    )
    alert = rendered(rejection_alert(rejected))
    assert valid_subject(alert.subject)
    assert alert.subject.startswith("[WARNING] deploy rejected (invalid_request): evil endpointeee")
    assert alert.subject.endswith("...")
    assert no_control_characters(alert.text)


def test_subject_line_keeps_the_most_telling_part_first() -> None:
    subject = subject_line("[CRITICAL]", "rolled_back:", "x" * 200)
    assert subject.startswith("[CRITICAL] rolled_back: xxx")
    assert len(subject) == MAX_SUBJECT_LENGTH


def test_clean_keeps_newlines_only_when_asked() -> None:
    assert clean("a\nb\x00c") == "a b c"
    assert clean("a\nb\x00c", multiline=True) == "a\nb c"
    assert clean(None) == ""
