"""Each channel's rendering of the same alert content (channels.py)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

import httpx
import jsonschema
import pytest
from pydantic import SecretStr

from rollout_monitor.channels import (
    CHATBOT_DESCRIPTION,
    EmailFormat,
    TemplateError,
    chat_text,
    chatbot,
    dedup_key,
    document,
    pagerduty,
)
from rollout_monitor.notifier import MAX_MESSAGE_BYTES, AlertTopic, attributes
from rollout_monitor.pagerduty import PagerDuty, PagerDutyError
from rollout_monitor.rejections import invalid
from rollout_monitor_local.pagerduty import FakePagerDuty
from rollout_monitor_local.server import serve
from tests.unit.alert_samples import SAMPLES

DATA = Path(__file__).parents[1] / "data"
CHATBOT_SCHEMA = json.loads((DATA / "chatbot" / "custom-notification.schema.json").read_text())


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_the_default_email_and_document_are_what_they_were(name: str) -> None:
    """Byte for byte, the subject and text each kind had before content was built once."""
    before = json.loads((DATA / "alerts" / f"{name}.json").read_text())
    alert = SAMPLES[name]()
    email = EmailFormat.of("", "")
    subject = email.subject(alert)
    assert subject == before["subject"]
    assert email.text(alert) == before["text"]
    assert json.loads(json.dumps(document(alert, subject))) == before["document"]
    assert alert.routing == before["attributes"]


def test_a_subject_template_changes_the_subject() -> None:
    alert = SAMPLES["failure"]()
    email = EmailFormat.of("$severity/$team: $status on $endpoint_id ($kind)", "")
    assert email.subject(alert) == "critical/: error on my-org-llama-3.3-70b (rollout_failed)"
    assert email.text(alert) == EmailFormat().text(alert)  # the body keeps its default


def test_a_body_template_from_configuration_has_its_new_lines() -> None:
    alert = SAMPLES["stall"]()
    text = EmailFormat.of("", r"$title\n\nSee: $links").text(alert)
    assert text == alert.title + "\n\nSee: " + "\n".join(alert.links)  # a link a line


@pytest.mark.parametrize("template", ["[$SEVERITY] $nope", "$", "${title"])
def test_a_template_with_an_unknown_or_broken_field_is_refused_by_name(template: str) -> None:
    with pytest.raises(TemplateError, match="may use \\$SEVERITY"):
        EmailFormat.of(template, "")


def test_hostile_text_cannot_grow_the_text_past_its_bound() -> None:
    text = EmailFormat().text(SAMPLES["failure-hostile"]())
    assert len(text.removesuffix("\n")) <= 8000
    assert text.rstrip().endswith("with a new request_id.")


# -- Chatbot -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_every_chat_message_is_a_valid_custom_notification(name: str) -> None:
    alert = SAMPLES[name]()
    message = chatbot(alert, EmailFormat().subject(alert))
    jsonschema.validate(message, CHATBOT_SCHEMA)
    assert len(json.dumps(message).encode()) < MAX_MESSAGE_BYTES
    assert message["metadata"]["threadId"] == alert.thread
    for link in alert.links:  # the logs and the console, as next steps
        assert any(chat_text(link, 500) in step for step in message["content"]["nextSteps"])


def test_a_deployment_s_alerts_share_one_thread_and_its_recovery_closes_it() -> None:
    threads = {
        SAMPLES[name]().thread for name in ("failure", "stall", "lost-not_listed", "recovery")
    }
    assert threads == {"d-1"}  # the recovery names the failed deployment d-1


def test_hostile_text_makes_no_mention_link_or_code_in_chat() -> None:
    alert = SAMPLES["failure-hostile"]()
    alert = type(alert)(
        **vars(alert)
        | {"title": "<!channel> <https://evil.example|click> `rm -rf` & more" + "x" * 9000}
    )
    message = chatbot(alert, EmailFormat().subject(alert))
    jsonschema.validate(message, CHATBOT_SCHEMA)
    content = json.dumps(message["content"])
    assert "<!channel>" not in content
    assert "<https://evil" not in content
    assert "&lt;!channel&gt;" in message["content"]["description"]
    assert "`rm" not in message["content"]["description"]
    assert len(message["content"]["description"]) <= CHATBOT_DESCRIPTION


# -- PagerDuty ---------------------------------------------------------------------------------


def test_a_failure_triggers_and_a_recovery_resolves_the_endpoint_s_incident() -> None:
    failure, recovery = SAMPLES["failure"](), SAMPLES["recovery"]()
    trigger = pagerduty(failure, EmailFormat().subject(failure), "key")
    resolve = pagerduty(recovery, EmailFormat().subject(recovery), "key")
    assert (trigger["event_action"], resolve["event_action"]) == ("trigger", "resolve")
    assert trigger["dedup_key"] == resolve["dedup_key"] == "rollout-monitor/my-org-llama-3.3-70b"
    assert trigger["payload"]["severity"] == "critical"
    assert trigger["payload"]["summary"] == "[CRITICAL] error: my-org-llama-3.3-70b version 7"
    details = trigger["payload"]["custom_details"]
    assert details["error_message"] == "replica 2 failed its health check"
    assert details["deployment_id"] == "d-1"
    assert "links" not in details
    assert [link["href"] for link in trigger["links"]] == list(failure.links)
    assert set(resolve) == {"routing_key", "event_action", "dedup_key"}


def test_only_critical_alerts_and_recoveries_go_to_the_pager() -> None:
    paged = {name for name, make in SAMPLES.items() if make().page is not None}
    assert paged == {
        "failure",
        "failure-hostile",
        "failure-rolled-back",
        "lost-endpoint_not_found",
        "recovery",
    }


def test_a_dedup_key_is_never_longer_than_pagerduty_takes() -> None:
    assert len(dedup_key("e" * 1000)) <= 255
    assert dedup_key("e" * 1000) != dedup_key("e" * 999)


def test_routing_attributes_carry_the_team_and_each_label() -> None:
    alert = SAMPLES["failure"]()
    alert = type(alert)(**vars(alert) | {"team": "search", "labels": {"env": "prod", "tier": "1"}})
    sent = attributes(alert)
    assert sent["team"] == {"DataType": "String", "StringValue": "search"}
    assert json.loads(sent["labels"]["StringValue"]) == ["env=prod", "tier=1"]
    assert sent["labels"]["DataType"] == "String.Array"


@pytest.fixture
def fake_pagerduty() -> FakePagerDuty:
    return FakePagerDuty()


def _pager(fake: FakePagerDuty, url: str, waits: list[float]) -> PagerDuty:
    return PagerDuty(
        lambda: SecretStr(fake.routing_key), httpx.Client(), EmailFormat(), url, waits.append
    )


def test_a_429_then_202_is_sent_once(fake_pagerduty: FakePagerDuty) -> None:
    fake_pagerduty.answers = [429, 503]
    waits: list[float] = []
    with serve(fake_pagerduty.app) as base:
        pager = _pager(fake_pagerduty, base + fake_pagerduty.url, waits)
        answer = pager.send(SAMPLES["failure"]())
    assert (len(fake_pagerduty.received), len(fake_pagerduty.accepted)) == (3, 1)
    assert len(waits) == 2  # backed off twice, on the test's sleep
    assert min(waits) > 0
    assert answer == "rollout-monitor/my-org-llama-3.3-70b"


def test_a_refused_event_raises_without_the_routing_key(fake_pagerduty: FakePagerDuty) -> None:
    with serve(fake_pagerduty.app) as base:
        pager = PagerDuty(
            lambda: SecretStr("not-the-key"), httpx.Client(), EmailFormat(), base + "/v2/enqueue"
        )
        with pytest.raises(PagerDutyError, match="400") as refused:
            pager.send(SAMPLES["failure"]())
    assert "not-the-key" not in str(refused.value)
    assert fake_pagerduty.accepted == []


class StubSns:
    """Keeps what ``publish`` was given (the topic adapters' only call)."""

    def __init__(self) -> None:
        self.published: list[dict[str, Any]] = []

    def publish(self, **kwargs: Any) -> dict[str, str]:
        self.published.append(kwargs)
        return {"MessageId": f"m-{len(self.published)}"}


def test_an_error_message_of_emoji_fits_the_topic_s_limit() -> None:
    alert = SAMPLES["failure"]()
    error = next(f for f in alert.facts if f.key == "error_message")
    huge = replace(error, shown="\U0001f525" * 4000, value="\U0001f525" * 4000)
    alert = replace(alert, facts=tuple(huge if f is error else f for f in alert.facts))
    sns = StubSns()
    AlertTopic("arn:aws:sns:us-east-1:123456789012:t", cast(Any, sns), EmailFormat()).send(alert)
    (published,) = sns.published
    assert len(published["Message"].encode()) <= MAX_MESSAGE_BYTES
    assert json.loads(json.loads(published["Message"])["sqs"])["error_message"] == huge.value


def test_a_subject_template_that_renders_nothing_falls_back_to_the_default() -> None:
    alert = SAMPLES["failure"]()  # no team
    assert EmailFormat.of("$team", "").subject(alert) == EmailFormat().subject(alert)


def test_untrusted_names_in_chat_are_inside_code_spans() -> None:
    alert = replace(
        SAMPLES["rejected-invalid_request"](), title="*URGENT* https://evil.example @here"
    )
    message = chatbot(alert, "[WARNING] deploy rejected: *URGENT* https://evil.example")
    title, description = message["content"]["title"], message["content"]["description"]
    assert title.endswith("`[WARNING] deploy rejected: *URGENT* https://evil.example`")
    assert description.startswith("`*URGENT* https://evil.example @here`\n")
    for line in description.split("\n")[1:]:  # each fact's value in its own span
        assert line.count("`") == 2


def test_an_invalid_request_keeps_its_valid_team_for_routing() -> None:
    rejected = invalid(
        "r-9", {"team": "search", "labels": {"env": "prod"}, "model": "bad"}, "x", 1.0
    )
    assert (rejected.team, rejected.labels) == ("search", {"env": "prod"})
    hostile = invalid("r-9", {"team": "<!channel>", "labels": {"a": "\n"}}, "x", 1.0)
    assert (hostile.team, hostile.labels) == (None, {})


def test_a_routing_key_secret_without_its_field_is_never_sent(
    fake_pagerduty: FakePagerDuty,
) -> None:
    with serve(fake_pagerduty.app) as base:
        pager = PagerDuty(
            lambda: SecretStr('{"other": "secret"}'),
            httpx.Client(),
            EmailFormat(),
            base + "/v2/enqueue",
        )
        with pytest.raises(PagerDutyError, match="JSON without routing_key"):
            pager.send(SAMPLES["failure"]())
    assert fake_pagerduty.received == []
