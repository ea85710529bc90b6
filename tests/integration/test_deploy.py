"""The deploy path, end to end through the template's own resources in moto."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from rollout_monitor.deploy import DeployService, RequestInProgressError
from rollout_monitor_local.simulator import Fault, FaultKind
from tests.integration.conftest import World, sample_event

ENDPOINT = "my-org-llama-3.3-70b"
MODEL = "orgs/my-org/models/llama-3.3-70b/versions/1"


def deploy_service(world: World) -> DeployService:
    service: DeployService = world.runtimes["DeployFunction"].module.service()
    return service


def request(**overrides: Any) -> dict[str, Any]:
    return {
        "endpoint_id": ENDPOINT,
        "model": MODEL,
        "request_id": "req-1",
        "requested_by": "ci@example.com",
        "reason": "promote nightly",
    } | overrides


def deployments(world: World) -> list[dict[str, Any]]:
    return [i for i in world.table_items() if i["sk"] == "META"]


def test_valid_request_deploys_records_and_announces(world: World) -> None:
    world.put(request())
    assert world.router.deliver() == 1
    (call,) = [r for r in world.simulator.requests if r.method == "POST"]
    assert call.path == f"/management/v1/endpoints/{ENDPOINT}:deployModel"
    assert call.body == b'{"model":"orgs/my-org/models/llama-3.3-70b/versions/1"}'
    assert call.authorization == "Bearer sim-management-key"

    store = world.poller.store.deployments
    (record,) = store.in_flight()
    assert record.endpoint_id == ENDPOINT
    assert (record.request_id, record.requested_by, record.reason) == (
        "req-1",
        "ci@example.com",
        "promote nightly",
    )
    assert (record.status, record.version_id, record.model) == ("not_started", 1, MODEL)
    assert record.submitted_at == world.clock.now()
    assert record.api_response["response"]["deployment_id"] == record.deployment_id
    (history,) = store.history(record.deployment_id)
    assert (history.sequence, history.status) == (0, "not_started")

    (event,) = world.emitted()
    assert event["source"] == "cerebras.rollout-monitor"
    assert event["detail-type"] == "Deployment Submitted"
    assert event["detail"] == {
        "schema_version": "1",
        "event_id": f"{record.deployment_id}:submitted",
        "deployment_id": record.deployment_id,
        "endpoint_id": ENDPOINT,
        "model": MODEL,
        "org_name": "my-org",
        "model_arch_id": "llama-3.3-70b",
        "version_id": 1,
        "request_id": "req-1",
        "requested_by": "ci@example.com",
        "reason": "promote nightly",
        "team": None,
        "labels": {},
        "rollout_status": "not_started",
        "submitted_at": world.clock.now(),
        "adopted": False,
    }
    assert world.router.failures == []


def test_sample_envelopes_drive_the_handler(world: World) -> None:
    runtime = world.runtimes["DeployFunction"]
    assert runtime.invoke(sample_event("deploy-requested.json"))["outcome"] == "submitted"
    invalid = runtime.invoke(sample_event("deploy-requested-invalid.json"))
    assert (invalid["outcome"], invalid["reason"]) == ("rejected", "invalid_request")
    forced = runtime.invoke(sample_event("deploy-requested-forced.json"))
    assert forced["outcome"] == "submitted"
    assert world.simulator.count("POST") == 2
    assert [e["detail-type"] for e in world.emitted()] == [
        "Deployment Submitted",
        "Deployment Rejected",
        "Deployment Submitted",
    ]


def test_duplicate_delivery_in_a_row_deploys_once(world: World) -> None:
    runtime = world.runtimes["DeployFunction"]
    event = sample_event("deploy-requested.json")
    first = runtime.invoke(event)
    second = runtime.invoke(event)
    assert second["deployment_id"] == first["deployment_id"]
    assert second["duplicate"] is True
    assert world.simulator.count("POST") == 1
    assert len(deployments(world)) == 1
    assert len(world.emitted("Deployment Submitted")) == 1


def test_concurrent_duplicates_deploy_once(world: World) -> None:
    world.simulator.inject(Fault(FaultKind.LATENCY, seconds=0.5, path_contains="deployModel"))
    runtime = world.runtimes["DeployFunction"]
    event = sample_event("deploy-requested.json")
    results: list[dict[str, Any]] = []
    barrier = threading.Barrier(2)

    def deliver() -> None:
        barrier.wait()
        results.append(runtime.invoke(event))

    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 2
    assert results[0]["deployment_id"] == results[1]["deployment_id"] is not None
    assert sorted(r["duplicate"] for r in results) == [False, True]
    assert world.simulator.count("POST") == 1
    assert len(deployments(world)) == 1
    assert len(world.emitted("Deployment Submitted")) == 1


def test_crash_after_the_api_call_is_reconciled_not_redeployed(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = deploy_service(world).deployments
    real = store.record_submission

    def crash(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("injected crash before the record")

    monkeypatch.setattr(store, "record_submission", crash)
    runtime = world.runtimes["DeployFunction"]
    event = sample_event("deploy-requested.json")
    with pytest.raises(RuntimeError, match="injected crash"):
        runtime.invoke(event)
    assert world.simulator.count("POST") == 1
    assert deployments(world) == []
    monkeypatch.setattr(store, "record_submission", real)

    retried = runtime.invoke(event)  # Lambda's retry of the same event
    assert world.simulator.count("POST") == 1
    (record,) = deployments(world)
    assert retried["deployment_id"] == record["deployment_id"]
    (submitted,) = world.emitted("Deployment Submitted")
    assert submitted["detail"]["adopted"] is True
    assert submitted["detail"]["deployment_id"] == record["deployment_id"]


def test_hard_crash_is_taken_over_after_the_lease(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = deploy_service(world)
    real = service.deployments.record_submission

    def crash(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("process died")

    monkeypatch.setattr(service.deployments, "record_submission", crash)
    monkeypatch.setattr(service.requests, "interrupt", lambda *a: None)  # no clean-up ran
    monkeypatch.setattr(service, "duplicate_wait_seconds", 0)
    runtime = world.runtimes["DeployFunction"]
    event = sample_event("deploy-requested.json")
    with pytest.raises(RuntimeError):
        runtime.invoke(event)
    monkeypatch.setattr(service.deployments, "record_submission", real)
    with pytest.raises(RequestInProgressError):  # within the lease: another may still be at it
        runtime.invoke(event)
    world.clock.advance(service.lease_seconds + 1)
    assert runtime.invoke(event)["outcome"] == "submitted"
    assert world.simulator.count("POST") == 1
    assert len(deployments(world)) == 1


INVALID = [
    ({"model": MODEL}, "endpoint_id"),
    ({"endpoint_id": ENDPOINT}, "model"),
    ({"endpoint_id": "../x", "model": MODEL}, "endpoint_id"),
    ({"endpoint_id": "a/b", "model": MODEL}, "endpoint_id"),
    ({"endpoint_id": "line\nbreak", "model": MODEL}, "endpoint_id"),
    ({"endpoint_id": "x" * 300, "model": MODEL}, "endpoint_id"),
    ({"endpoint_id": ENDPOINT, "model": "llama-3.3-70b"}, "model"),
    ({"endpoint_id": ENDPOINT, "model": "orgs/my-org/models/llama/versions/Bad_Alias"}, "model"),
    ({"endpoint_id": ENDPOINT, "model": "orgs/../models/x/versions/1"}, "model"),
    ({"endpoint_id": ENDPOINT, "model": MODEL, "reason": "r" * 5000}, "reason"),
    ({"endpoint_id": ENDPOINT, "model": MODEL, "requested_by": "b" * 300}, "requested_by"),
    ({"endpoint_id": ENDPOINT, "model": MODEL, "force": "maybe"}, "force"),
    ({"endpoint_id": 42, "model": MODEL}, "endpoint_id"),
]


@pytest.mark.parametrize(("detail", "field"), INVALID)
def test_invalid_request_is_rejected_without_an_api_call(
    world: World, detail: dict[str, Any], field: str
) -> None:
    world.put(detail | {"request_id": "bad-1"})
    world.router.deliver()
    assert world.simulator.count() == 0
    (rejected,) = world.emitted()
    assert rejected["detail-type"] == "Deployment Rejected"
    assert rejected["detail"]["reason"] == "invalid_request"
    assert rejected["detail"]["request_id"] == "bad-1"
    assert field in rejected["detail"]["message"]
    assert world.router.failures == []  # not retried
    assert deployments(world) == []


def test_busy_endpoint_is_rejected_naming_the_deployment_and_force_deploys(world: World) -> None:
    runtime = world.runtimes["DeployFunction"]
    first = runtime.invoke(sample_event("deploy-requested.json"))
    busy_event = sample_event("deploy-requested.json")
    busy_event["id"] = "another-event"
    busy_event["detail"]["request_id"] = "second-request"
    busy = runtime.invoke(busy_event)
    assert (busy["outcome"], busy["reason"]) == ("rejected", "endpoint_busy")
    (rejected,) = world.emitted("Deployment Rejected")
    assert rejected["detail"]["blocking_deployment_id"] == first["deployment_id"]
    assert first["deployment_id"] in rejected["detail"]["message"]
    forced = runtime.invoke(sample_event("deploy-requested-forced.json"))
    assert forced["outcome"] == "submitted"
    assert forced["deployment_id"] != first["deployment_id"]
    assert world.simulator.count("POST") == 2


@pytest.mark.parametrize(
    ("fault", "reason", "status"),
    [
        (FaultKind.UNAUTHORIZED, "authentication_failed", 401),
        (FaultKind.UNPROCESSABLE, "cerebras_refused", 422),
    ],
)
def test_cerebras_refusals_become_rejections(
    world: World, fault: FaultKind, reason: str, status: int, monitor_logs: pytest.LogCaptureFixture
) -> None:
    world.simulator.inject(Fault(fault, path_contains="deployModel"))
    world.put(request())
    world.router.settle()  # the rejection reaches the alert function too
    (rejected,) = world.emitted("Deployment Rejected")
    assert (rejected["detail"]["reason"], rejected["detail"]["status_code"]) == (reason, status)
    assert rejected["detail"]["cerebras_detail"]
    assert world.router.failures == []
    assert world.simulator.count("POST") == 1
    # The key the function sent is nowhere in what it logged, emitted or alerted.
    assert world.simulator.requests[-1].authorization == "Bearer sim-management-key"
    (alert,) = world.alerts()
    logged = [f"{r.getMessage()} {r.__dict__}" for r in monitor_logs.records]
    assert any("deploy request rejected" in line for line in logged)
    for text in (*logged, str(world.emitted()), alert.text, str(alert.document)):
        assert "sim-management-key" not in text


@pytest.mark.parametrize(
    ("overrides", "status"),
    [
        ({"endpoint_id": "no-such-endpoint"}, 404),
        ({"model": "orgs/other-org/models/llama-3.3-70b/versions/1"}, 403),
    ],
)
def test_natural_refusals_carry_status_and_detail(
    world: World, overrides: dict[str, Any], status: int
) -> None:
    world.put(request(**overrides))
    world.router.deliver()
    (rejected,) = world.emitted("Deployment Rejected")
    assert rejected["detail"]["status_code"] == status
    assert rejected["detail"]["reason"] == "cerebras_refused"
    assert rejected["detail"]["cerebras_detail"]


def test_persistent_5xx_fails_the_invocation_for_lambda_to_retry(world: World) -> None:
    world.simulator.inject(Fault(FaultKind.SERVER_ERROR, times=1000))
    world.put(request())
    world.router.deliver()
    assert len(world.router.failures) == world.router.max_attempts
    (dead,) = world.router.dead_letters
    assert type(dead.error).__name__ == "CerebrasServerError"
    assert dead.event["detail"]["request_id"] == "req-1"
    assert world.emitted() == []
    assert deployments(world) == []
    # The claim was handed back: once Cerebras recovers, a redrive deploys.
    world.simulator.faults.clear()
    assert world.runtimes["DeployFunction"].invoke(dead.event)["outcome"] == "submitted"


def test_unusable_request_id_is_rejected_under_the_event_id(world: World) -> None:
    event = sample_event("deploy-requested.json")
    event["detail"]["request_id"] = "has spaces; and ; semicolons"
    result = world.runtimes["DeployFunction"].invoke(event)
    assert (result["outcome"], result["reason"]) == ("rejected", "invalid_request")
    assert result["request_id"] == event["id"]
    (rejected,) = world.emitted("Deployment Rejected")
    assert "request_id" in rejected["detail"]["message"]
    assert world.simulator.count() == 0
