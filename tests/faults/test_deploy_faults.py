"""One request, one rollout: Cerebras acts, the answer is lost, and still exactly one deployment
is made, tracked and announced once; with and without Lambda's two retries."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from rollout_monitor_local.simulator import Fault, FaultKind, Simulator
from tests.faults.proxy import After, FaultProxy
from tests.integration.conftest import World

ENDPOINT = "my-org-llama-3.3-70b"


def request(version: str = "1", **extra: Any) -> dict[str, Any]:
    return {
        "endpoint_id": ENDPOINT,
        "model": f"orgs/my-org/models/llama-3.3-70b/versions/{version}",
        "request_id": "release-1",
        "requested_by": "ci@example.com",
    } | extra


def made(simulator: Simulator) -> list[str]:
    return [d.id for d in simulator.endpoints[ENDPOINT].deployments]


def tracked(world: World) -> list[str]:
    return [i["deployment_id"] for i in world.table_items() if i["sk"] == "META"]


def heal_after_first_invocation(
    world: World, proxy: FaultProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = world.runtimes["DeployFunction"]
    original = runtime.invoke

    def invoke(event: dict[str, Any], **kwargs: Any) -> Any:
        try:
            return original(event, **kwargs)
        finally:
            proxy.heal()

    monkeypatch.setattr(runtime, "invoke", invoke)


def assert_one_rollout(world: World, proxy: FaultProxy, *, dead_letters: int = 0) -> None:
    assert proxy.acted == 1  # the fault really hit a deployModel that Cerebras carried out
    (deployment_id,) = made(world.simulator)
    assert tracked(world) == [deployment_id]
    (submitted,) = world.emitted("Deployment Submitted")
    assert submitted["detail"]["deployment_id"] == deployment_id
    assert submitted["detail"]["adopted"] is True
    assert world.emitted("Deployment Rejected") == []
    assert len(world.router.dead_letters) == dead_letters


@pytest.mark.parametrize("after", list(After))
@pytest.mark.parametrize("retries", [False, True], ids=["first-invocation", "lambda-retries"])
def test_a_lost_deploy_answer_gives_exactly_one_tracked_rollout(
    faulty: World,
    proxy: FaultProxy,
    after: After,
    retries: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    proxy.fail_after(":deployModel", after)
    if retries:  # the reads that would reconcile fail too, until that invocation has failed
        proxy.fail_reads_after_fault = True
        heal_after_first_invocation(faulty, proxy, monkeypatch)
    faulty.put(request())
    faulty.router.settle()
    assert len(faulty.router.failures) == (1 if retries else 0)
    assert_one_rollout(faulty, proxy)
    assert faulty.simulator.count("POST", ":deployModel") == 1


@pytest.mark.parametrize(
    ("case", "version", "listing_delay", "clock_offset"),
    [
        ("requested by alias, listed by number", "succeeds", 0.0, 0.0),
        ("not listed for 20 s", "1", 20.0, 0.0),
        ("Cerebras's clock 300 s behind", "1", 0.0, -300.0),
        ("Cerebras's clock 300 s ahead", "1", 0.0, 300.0),
    ],
)
def test_reconciliation_finds_the_deployment(
    faulty: World,
    proxy: FaultProxy,
    case: str,
    version: str,
    listing_delay: float,
    clock_offset: float,
) -> None:
    faulty.simulator.listing_delay = listing_delay
    faulty.simulator.clock_offset = clock_offset
    proxy.fail_after(":deployModel", After.BAD_GATEWAY)
    faulty.put(request(version))
    faulty.router.settle()
    assert faulty.router.failures == [], case
    assert_one_rollout(faulty, proxy)


def test_a_deployment_not_listed_in_time_is_never_sent_twice(
    faulty: World, proxy: FaultProxy
) -> None:
    """Past the wait, the invocation fails (no blind resend); Lambda's retries look again."""
    faulty.simulator.listing_delay = 40.0
    proxy.fail_after(":deployModel", After.BAD_GATEWAY)
    faulty.put(request())
    faulty.router.settle()  # waited 25 s, not listed: fails, and so do the immediate retries
    assert faulty.simulator.count("POST", ":deployModel") == 1
    assert len(faulty.router.dead_letters) == 1
    faulty.clock.advance(20)
    faulty.runtimes["DeployFunction"].invoke(faulty.router.dead_letters[0].event)  # redrive
    assert_one_rollout(faulty, proxy, dead_letters=1)


def test_absence_is_proven_only_by_a_listing_after_the_listing_delay(
    faulty: World, proxy: FaultProxy
) -> None:
    """A 503 that Cerebras did NOT act on: sent again only once a listing proves it absent."""
    faulty.simulator.inject(Fault(FaultKind.UNAVAILABLE, path_contains=":deployModel"))
    runtime = faulty.runtimes["DeployFunction"]
    faulty.put(request())
    faulty.router.settle()
    assert made(faulty.simulator) == []
    assert len(faulty.router.dead_letters) == 1  # never sent blind within the delay
    faulty.clock.advance(61)
    result = runtime.invoke(faulty.router.dead_letters[0].event)
    assert result["outcome"] == "submitted"
    assert faulty.simulator.count("POST", ":deployModel") == 2
    assert len(made(faulty.simulator)) == 1
    (submitted,) = faulty.emitted("Deployment Submitted")
    assert submitted["detail"]["adopted"] is False


def test_a_rotated_key_deploys_with_one_retry_and_no_rejection(
    faulty: World, proxy: FaultProxy
) -> None:
    faulty.deploy("succeeds")  # the function has the key cached now
    secrets = boto3.client("secretsmanager")
    arn = faulty.runtimes["DeployFunction"].environment["CEREBRAS_API_KEY_SECRET_ARN"]
    secrets.put_secret_value(SecretId=arn, SecretString='{"api_key": "rotated-key"}')
    faulty.simulator.api_key = "rotated-key"  # the old key is revoked
    deployment_id = faulty.deploy("succeeds", endpoint_id="my-org-qwen-3-32b")
    assert deployment_id in tracked(faulty)
    refused = [r for r in faulty.simulator.requests if r.authorization != "Bearer rotated-key"]
    assert [r.method for r in refused[-1:]] == ["GET"]  # one refused read, then the new key
    with_new_key = [r for r in faulty.simulator.requests if r.authorization == "Bearer rotated-key"]
    # the version guard's read (retried with the new key), the endpoint's, deployModel
    assert [r.method for r in with_new_key] == ["GET", "GET", "POST"]
    assert faulty.emitted("Deployment Rejected") == []


def test_a_deployment_over_at_once_gives_one_status_event_and_one_alert(faulty: World) -> None:
    deployment_id = faulty.deploy("fails-at-once")
    faulty.router.settle()
    (changed,) = faulty.emitted("Rollout Status Changed")
    assert changed["detail"]["event_id"] == f"{deployment_id}:0"
    assert (changed["detail"]["previous_status"], changed["detail"]["rollout_status"]) == (
        None,
        "error",
    )
    (alert,) = faulty.alerts()
    assert alert.document["kind"] == "rollout_failed"
    assert faulty.poll()["in_flight"] == 0  # nothing left to follow


def test_a_fast_failure_adopted_after_a_crash_gives_one_status_event_and_one_alert(
    faulty: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = faulty.runtimes["DeployFunction"].module.service()
    real = service.deployments.record_submission

    def crash(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("process died after deployModel")

    monkeypatch.setattr(service.deployments, "record_submission", crash)
    faulty.put(request("fails-at-once"))
    runtime = faulty.runtimes["DeployFunction"]
    (event,) = faulty.router.take_waiting("DeployFunctionDeployRequested")
    with pytest.raises(RuntimeError):
        runtime.invoke(event)
    monkeypatch.setattr(service.deployments, "record_submission", real)
    assert runtime.invoke(event)["outcome"] == "submitted"  # Lambda's retry adopts it
    faulty.router.settle()
    assert faulty.simulator.count("POST", ":deployModel") == 1
    (submitted,) = faulty.emitted("Deployment Submitted")
    assert submitted["detail"]["adopted"] is True
    (changed,) = faulty.emitted("Rollout Status Changed")
    assert changed["detail"]["rollout_status"] == "error"
    (alert,) = faulty.alerts()
    assert alert.document["kind"] == "rollout_failed"


def test_a_reused_request_id_with_other_content_is_refused_and_named(faulty: World) -> None:
    faulty.put(request())
    faulty.router.settle()
    faulty.put(
        request(endpoint_id="my-org-qwen-3-32b", model="orgs/my-org/models/qwen-3-32b/versions/1")
    )
    faulty.router.settle()
    (rejected,) = faulty.emitted("Deployment Rejected")
    detail = rejected["detail"]
    assert detail["reason"] == "request_id_conflict"
    assert "differ in endpoint_id, model" in detail["message"]
    assert "endpoint_id=my-org-llama-3.3-70b" in detail["message"]
    assert "endpoint_id=my-org-qwen-3-32b" in detail["message"]
    assert len(made(faulty.simulator)) == 1
    (alert,) = faulty.alerts()
    assert alert.document["reason"] == "request_id_conflict"


def test_an_invalid_request_does_not_block_the_valid_one_with_its_id(faulty: World) -> None:
    faulty.put(request(force="yes"))
    faulty.put(request())
    faulty.router.settle()
    (rejected,) = faulty.emitted("Deployment Rejected")
    assert rejected["detail"]["reason"] == "invalid_request"
    assert "force" in rejected["detail"]["message"]
    (submitted,) = faulty.emitted("Deployment Submitted")
    assert submitted["detail"]["request_id"] == "release-1"
    assert len(made(faulty.simulator)) == 1
