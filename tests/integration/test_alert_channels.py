"""Where alerts go, through the template's stack in moto: a team's subscription, the chat topic,
PagerDuty (a fake on loopback), and a subject template set as a stack parameter."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import jsonschema
import pytest

from rollout_monitor.events import SOURCE
from rollout_monitor_local.pagerduty import FakePagerDuty
from rollout_monitor_local.server import serve
from tests.integration.conftest import World

ENDPOINT = "my-org-llama-3.3-70b"
OTHER = "my-org-qwen-3-32b"
CHATBOT_SCHEMA = json.loads(
    (Path(__file__).parents[1] / "data" / "chatbot" / "custom-notification.schema.json").read_text()
)


def play(world: World, scenario: str, **extra: Any) -> str:
    """Deploy, poll until the scenario ends, and deliver every event to its rule."""
    deployment_id = world.deploy(scenario, **extra)
    for _ in range(4):
        world.clock.advance(20)
        world.poll()
    world.router.settle()
    assert world.router.failures == []
    return deployment_id


def _queue(name: str) -> tuple[str, str]:
    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
    return url, arn["QueueArn"]


def _bodies(url: str) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs")
    bodies = []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages"):
        for message in messages:
            bodies.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return bodies


def test_a_team_s_filter_policy_and_bus_rule_see_only_its_rollouts(world: World) -> None:
    alerts_url, alerts_arn = _queue("search-alerts")
    boto3.client("sns").subscribe(
        TopicArn=world.stack.outputs["AlertTopicArn"],
        Protocol="sqs",
        Endpoint=alerts_arn,
        Attributes={"FilterPolicy": json.dumps({"team": ["search"]}), "RawMessageDelivery": "true"},
    )
    events_url, events_arn = _queue("search-events")
    events = boto3.client("events")
    bus = world.stack.outputs["EventBusName"]
    events.put_rule(
        Name="search-rollouts",
        EventBusName=bus,
        EventPattern=json.dumps({"source": [SOURCE], "detail": {"team": ["search"]}}),
    )
    events.put_targets(
        Rule="search-rollouts", EventBusName=bus, Targets=[{"Id": "q", "Arn": events_arn}]
    )

    ours = play(world, "errors", team="search", labels={"env": "prod"})
    play(world, "errors", endpoint_id=OTHER, team="ads")
    play(world, "rolls-back")  # no team at all

    assert len(world.alerts()) == 3  # the topic sent all three
    (alert,) = _bodies(alerts_url)  # the team's subscription got its own
    assert (alert["deployment_id"], alert["team"], alert["labels"]) == (
        ours,
        "search",
        {"env": "prod"},
    )
    seen = _bodies(events_url)
    assert {e["detail"]["deployment_id"] for e in seen} == {ours}
    assert {e["detail-type"] for e in seen} >= {"Deployment Submitted", "Rollout Status Changed"}


def test_a_subject_template_set_on_the_stack_changes_the_subject(
    world_with: Callable[[dict[str, str]], World],
) -> None:
    world = world_with({"AlertSubjectTemplate": "$SEVERITY for $team: $headline"})
    play(world, "errors", team="search")
    (alert,) = world.alerts()
    assert alert.subject == f"CRITICAL for search: error: {ENDPOINT} version 2"
    assert alert.document["subject"] == alert.subject


def test_the_chat_topic_gets_every_alert_as_a_custom_notification(
    world_with: Callable[[dict[str, str]], World],
) -> None:
    from moto.sns.models import sns_backends

    world = world_with({"CreateChatbotTopic": "true"})
    failed = play(world, "errors")
    play(world, "succeeds")
    arn = world.stack.outputs["ChatbotTopicArn"]
    _, _, _, region, account, _ = arn.split(":")
    sent = [json.loads(n[1]) for n in sns_backends[account][region].topics[arn].sent_notifications]
    for message in sent:
        jsonschema.validate(message, CHATBOT_SCHEMA)
    assert [m["metadata"]["eventType"] for m in sent] == ["rollout_failed", "endpoint_recovered"]
    assert {m["metadata"]["threadId"] for m in sent} == {failed}  # one thread, closed
    assert len(world.alerts()) == 2  # the alert topic still gets them


@pytest.fixture
def pager() -> Iterator[tuple[FakePagerDuty, str]]:
    fake = FakePagerDuty()
    with serve(fake.app) as base:
        yield fake, base + fake.url


def test_a_failure_then_a_recovery_trigger_then_resolve_one_incident_once(
    world_with: Callable[[dict[str, str]], World], pager: tuple[FakePagerDuty, str]
) -> None:
    fake, url = pager
    secret = boto3.client("secretsmanager").create_secret(
        Name="pagerduty", SecretString=json.dumps({"routing_key": fake.routing_key})
    )
    world = world_with({"PagerDutyRoutingKeySecretArn": secret["ARN"], "PagerDutyEventsUrl": url})
    play(world, "errors")
    (failure,) = world.emitted("Rollout Status Changed")[-1:]
    play(world, "succeeds")
    actions = [(e["event_action"], e["dedup_key"]) for e in fake.accepted]
    assert actions == [
        ("trigger", f"rollout-monitor/{ENDPOINT}"),
        ("resolve", f"rollout-monitor/{ENDPOINT}"),
    ]
    assert fake.open_incidents == set()
    assert fake.accepted[0]["payload"]["custom_details"]["rollout_status"] == "error"

    result = world.runtimes["AlertFunction"].invoke(failure)  # Lambda delivers it again
    assert result["sent"] == []
    assert len(fake.received) == 2  # nothing new reached PagerDuty
    assert fake.routing_key not in json.dumps(world.emitted())
