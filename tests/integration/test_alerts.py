"""Alerts through the template's rules, function and topic, read back from moto's SNS."""

from __future__ import annotations

import json
import threading
from typing import Any

import boto3
import pytest

from rollout_monitor.events import SOURCE
from tests.integration.conftest import World

ENDPOINT = "my-org-llama-3.3-70b"


def play(world: World, scenario: str, steps: int, **extra: Any) -> str:
    """Deploy, poll through ``steps`` moves of 20 s, and deliver every event to its rule."""
    deployment_id = world.deploy(scenario, **extra)
    for _ in range(steps):
        world.clock.advance(20)
        world.poll()
    world.router.settle()
    assert world.router.failures == []
    return deployment_id


def test_an_error_alerts_once_with_everything_needed(world: World) -> None:
    deployment_id = play(world, "errors", 2, reason="promote nightly")
    (alert,) = world.alerts()
    assert alert.subject == f"[CRITICAL] error: {ENDPOINT} version 2"
    assert alert.attributes == {
        "severity": "critical",
        "endpoint_id": ENDPOINT,
        "rollout_status": "error",
    }
    document = alert.document
    links = document.pop("links")
    assert document == {
        "kind": "rollout_failed",
        "severity": "critical",
        "subject": alert.subject,
        "endpoint_id": ENDPOINT,
        "model": "orgs/my-org/models/llama-3.3-70b/versions/errors",
        "version_id": 2,
        "deployment_id": deployment_id,
        "previous_status": "in_progress",
        "rollout_status": "error",
        "error_message": "replica 2 failed health check: CUDA-free OOM while loading",
        "updated_replicas": 1,
        "total_replicas": 4,
        "submitted_at": world.clock.now() - 40,
        "observed_at": world.clock.now(),
        "seconds_since_submission": 40.0,
        "requested_by": "tests@example.com",
        "reason": "promote nightly",
    }
    assert f"filterPattern$3D%22{deployment_id}%22" in links[0]
    assert "$252Faws$252Flambda$252F" in links[0]
    assert links[-1] == f"https://cloud.cerebras.ai/platform/my-org/endpoints/{ENDPOINT}"
    text = alert.text
    for expected in (
        "ended error after 0m 40s",
        "Status        in_progress -> error",
        "Error         replica 2 failed health check: CUDA-free OOM while loading",
        "Replicas      1 of 4 updated",
        "Requested by  tests@example.com",
        "Reason        promote nightly",
        f"Deployment    {deployment_id}",
        "What to do next:",
        links[0],
        links[-1],
    ):
        assert expected in text


def test_a_rollback_alerts_critical(world: World) -> None:
    deployment_id = play(world, "rolls-back", 3)
    (alert,) = world.alerts()
    assert alert.subject == f"[CRITICAL] rolled_back: {ENDPOINT} version 3"
    assert alert.attributes == {
        "severity": "critical",
        "endpoint_id": ENDPOINT,
        "rollout_status": "rolled_back",
    }
    document = alert.document
    assert len(document.pop("links")) == 3
    assert document == {
        "kind": "rollout_failed",
        "severity": "critical",
        "subject": alert.subject,
        "endpoint_id": ENDPOINT,
        "model": "orgs/my-org/models/llama-3.3-70b/versions/rolls-back",
        "version_id": 3,
        "deployment_id": deployment_id,
        "previous_status": "rolling_back",
        "rollout_status": "rolled_back",
        "error_message": "latency SLO breached on new replicas",
        "updated_replicas": 0,
        "total_replicas": 4,
        "submitted_at": world.clock.now() - 60,
        "observed_at": world.clock.now(),
        "seconds_since_submission": 60.0,
        "requested_by": "tests@example.com",
        "reason": None,
    }
    for expected in (
        "ended rolled_back after 1m 00s",
        "Status        rolling_back -> rolled_back",
        "Error         latency SLO breached on new replicas",
        "Replicas      0 of 4 updated",
        "Reason        -",
        f"Deployment    {deployment_id}",
    ):
        assert expected in alert.text


def test_a_stall_alerts_as_a_warning(world: World) -> None:
    deployment_id = play(world, "stalls", 1)
    world.clock.advance(1800)
    world.poll()
    world.router.settle()
    (alert,) = world.alerts()
    assert alert.subject == f"[WARNING] stalled 30m 00s in in_progress: {ENDPOINT} version 5"
    assert alert.attributes == {
        "severity": "warning",
        "endpoint_id": ENDPOINT,
        "rollout_status": "in_progress",
    }
    document = alert.document
    links = document.pop("links")
    assert links[-1] == f"https://cloud.cerebras.ai/platform/my-org/endpoints/{ENDPOINT}"
    assert document == {
        "kind": "rollout_stalled",
        "severity": "warning",
        "subject": alert.subject,
        "endpoint_id": ENDPOINT,
        "model": "orgs/my-org/models/llama-3.3-70b/versions/stalls",
        "version_id": 5,
        "deployment_id": deployment_id,
        "rollout_status": "in_progress",
        "listed_by_endpoint": True,
        "stalled_for_seconds": 1800.0,
        "stall_after_seconds": 1800.0,
        "episode": 1,
        "requested_by": "tests@example.com",
    }
    for expected in (
        "has made no progress for 30m 00s.",
        "Status        in_progress",
        "Listed        yes",
        "Stall         episode 1",
        f"Deployment    {deployment_id}",
        "What to do next:",
    ):
        assert expected in alert.text


def test_a_rejection_alerts_as_a_warning(world: World) -> None:
    world.put({"endpoint_id": "../etc", "model": "m", "request_id": "bad-7", "requested_by": "eve"})
    world.router.settle()
    (alert,) = world.alerts()
    assert alert.subject == "[WARNING] deploy rejected (invalid_request): ../etc"
    assert alert.attributes == {
        "severity": "warning",
        "endpoint_id": "../etc",
        "rollout_status": "rejected",
    }
    message = alert.document.pop("message")
    assert message.startswith("invalid deploy request: endpoint_id: ")
    assert "model: " in message
    assert alert.document == {
        "kind": "deploy_rejected",
        "severity": "warning",
        "subject": alert.subject,
        "endpoint_id": "../etc",
        "model": "m",
        "request_id": "bad-7",
        "reason": "invalid_request",
        "status_code": None,
        "cerebras_detail": None,
        "blocking_deployment_id": None,
        "requested_by": "eve",
    }
    for expected in (
        "A deploy request for ../etc was rejected.",
        "Reason         invalid_request",
        "Request        bad-7",
        "Requested by   eve",
        "Fix the request",
    ):
        assert expected in alert.text


def test_a_rejection_without_an_endpoint_still_alerts(world: World) -> None:
    world.put({"model": "orgs/my-org/models/llama-3.3-70b/versions/1", "request_id": "no-endpoint"})
    world.router.settle()
    assert world.router.failures == []
    (alert,) = world.alerts()
    assert alert.attributes["endpoint_id"] == "unknown"
    assert alert.subject == "[WARNING] deploy rejected (invalid_request): unknown endpoint"


def test_success_and_in_flight_statuses_do_not_alert(world: World) -> None:
    play(world, "succeeds", 5)
    assert len(world.emitted("Rollout Status Changed")) == 2
    assert world.alerts() == []


def test_cancelled_alerts_only_when_listed(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    play(world, "cancelled", 2)
    assert world.alerts() == []
    monkeypatch.setattr(
        world.alerter, "alert_statuses", frozenset({"error", "rolled_back", "cancelled"})
    )
    play(world, "cancelled", 2, endpoint_id="my-org-qwen-3-32b")
    (alert,) = world.alerts()
    assert alert.subject == "[CRITICAL] cancelled: my-org-qwen-3-32b version 4"


def test_the_alert_statuses_come_from_the_template_parameter(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rollout_monitor_local.runtime import FunctionRuntime
    from rollout_monitor_local.stack import create_stack

    stack = create_stack(parameters={"AlertStatuses": "error,rolled_back,cancelled"})
    spec = stack.functions["AlertFunction"]
    for name, value in spec.environment.items():
        monkeypatch.setenv(name, value)  # restored after the test
    assert spec.environment["ALERT_STATUSES"] == "error,rolled_back,cancelled"
    service = FunctionRuntime(spec).module.service()
    assert service.alert_statuses == {"error", "rolled_back", "cancelled"}


def test_a_recovery_after_a_failure_is_noticed_once(world: World) -> None:
    play(world, "errors", 2)
    recovered = play(world, "succeeds", 4)
    play(world, "succeeds", 4)
    subjects = [a.subject for a in world.alerts()]
    assert subjects == [
        f"[CRITICAL] error: {ENDPOINT} version 2",
        f"[INFO] recovered: {ENDPOINT} version 1 done",
    ]
    info = world.alerts()[1]
    assert info.attributes == {
        "severity": "info",
        "endpoint_id": ENDPOINT,
        "rollout_status": "done",
    }
    assert info.document["deployment_id"] == recovered


def _error_event(world: World) -> dict[str, Any]:
    world.deploy("errors")
    world.clock.advance(40)
    world.poll()
    (event,) = world.emitted("Rollout Status Changed")
    return event


def test_the_same_event_twice_in_a_row_and_at_once_sends_one_message(world: World) -> None:
    event = _error_event(world)
    runtime = world.runtimes["AlertFunction"]
    first = runtime.invoke(event)
    second = runtime.invoke(event)
    assert (len(first["sent"]), second["sent"], len(second["skipped"])) == (1, [], 1)
    barrier = threading.Barrier(3)

    def deliver() -> None:
        barrier.wait()
        runtime.invoke(event)

    threads = [threading.Thread(target=deliver) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(world.alerts()) == 1


def test_concurrent_first_deliveries_send_one_message(world: World) -> None:
    event = _error_event(world)
    runtime = world.runtimes["AlertFunction"]
    results: list[dict[str, Any]] = []
    barrier = threading.Barrier(4)

    def deliver() -> None:
        barrier.wait()
        results.append(runtime.invoke(event))

    threads = [threading.Thread(target=deliver) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(world.alerts()) == 1
    assert sum(len(r["sent"]) for r in results) == 1


def test_sns_failing_fails_the_invocation_and_records_nothing_sent(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    event = _error_event(world)
    runtime = world.runtimes["AlertFunction"]

    def refuse(notification: Any) -> str:
        raise RuntimeError("SNS is down")

    monkeypatch.setattr(world.alerter.channels[0], "send", refuse)
    with pytest.raises(RuntimeError, match="SNS is down"):
        runtime.invoke(event)
    assert world.alerts() == []
    assert [i for i in world.table_items() if i["pk"].startswith("ALERT#")] == []
    monkeypatch.undo()
    assert len(runtime.invoke(event)["sent"]) == 1  # Lambda's retry sends it, once
    assert len(world.alerts()) == 1


def test_sqs_subscribers_get_the_json_and_can_filter_on_severity(world: World) -> None:
    sqs = boto3.client("sqs")
    sns = boto3.client("sns")
    url = sqs.create_queue(QueueName="pager")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(
        TopicArn=world.stack.outputs["AlertTopicArn"],
        Protocol="sqs",
        Endpoint=arn,
        Attributes={"FilterPolicy": json.dumps({"severity": ["critical"]})},
    )
    play(world, "errors", 2)
    world.put({"endpoint_id": "../x", "model": "m"})  # a warning: filtered out
    world.router.settle()
    assert len(world.alerts()) == 2
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    (message,) = messages
    envelope = json.loads(message["Body"])
    assert json.loads(envelope["Message"])["kind"] == "rollout_failed"
    assert envelope["MessageAttributes"]["severity"]["Value"] == "critical"


PATTERN_CASES = [
    (
        "AlertFunctionStatusChanged",
        SOURCE,
        "Rollout Status Changed",
        {"rollout_status": "error"},
        True,
    ),
    (
        "AlertFunctionStatusChanged",
        SOURCE,
        "Rollout Status Changed",
        {"rollout_status": "done"},
        True,
    ),
    (
        "AlertFunctionStatusChanged",
        SOURCE,
        "Rollout Status Changed",
        {"rollout_status": "in_progress"},
        False,
    ),
    (
        "AlertFunctionStatusChanged",
        SOURCE,
        "Rollout Status Changed",
        {"rollout_status": "not_started"},
        False,
    ),
    (
        "AlertFunctionStatusChanged",
        "someone.else",
        "Rollout Status Changed",
        {"rollout_status": "error"},
        False,
    ),
    ("AlertFunctionStatusChanged", SOURCE, "Rollout Stalled", {"rollout_status": "error"}, False),
    ("AlertFunctionStalled", SOURCE, "Rollout Stalled", {"episode": 1}, True),
    ("AlertFunctionStalled", "someone.else", "Rollout Stalled", {"episode": 1}, False),
    ("AlertFunctionRejected", SOURCE, "Deployment Rejected", {"reason": "x"}, True),
    ("AlertFunctionRejected", SOURCE, "Deployment Submitted", {"reason": "x"}, False),
    ("DeployFunctionDeployRequested", "ci.any", "Deploy Requested", {}, True),
    ("DeployFunctionDeployRequested", "ci.any", "Deploy requested", {}, False),
]


@pytest.mark.parametrize(("rule", "source", "detail_type", "detail", "matches"), PATTERN_CASES)
def test_template_rule_patterns(
    world: World, rule: str, source: str, detail_type: str, detail: dict[str, Any], matches: bool
) -> None:
    """Each event is put on the stack's bus; moto matches it against every rule's pattern."""
    answer = boto3.client("events").put_events(
        Entries=[
            {
                "Source": source,
                "DetailType": detail_type,
                "Detail": json.dumps(detail),
                "EventBusName": world.stack.outputs["EventBusName"],
            }
        ]
    )
    assert answer["FailedEntryCount"] == 0
    received = world.router.take_waiting(rule)
    assert len(received) == (1 if matches else 0)
    others = [r for r in world.router._queues if r != rule]
    for other in others:
        world.router.take_waiting(other)
