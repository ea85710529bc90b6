"""Releases and the version guard (issue 17): one event takes a model from storage to a
serving endpoint; a deploy never sends a version that is not synced. Through the template's
stack in moto and the simulator, on the test's clock."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from rollout_monitor_local.simulator import Fault, FaultKind
from tests.integration.conftest import World, sample_event

ENDPOINT = "my-org-llama-3.3-70b"
ARCH = "llama-3.3-70b"
SYNC = "Model Version Sync Changed"


def release_event(request_id: str, weight_uri: str, **extra: Any) -> dict[str, Any]:
    event = sample_event("release-requested.json")
    event["id"] = f"event-{request_id}"
    event["detail"] = {
        "org_name": "my-org",
        "model_arch_id": ARCH,
        "weight_uri": weight_uri,
        "version_aliases": [],
        "endpoint_id": ENDPOINT,
        "request_id": request_id,
        "requested_by": "tests@example.com",
    } | extra
    return event


def release(world: World, request_id: str, weight_uri: str, **extra: Any) -> dict[str, Any]:
    result: dict[str, Any] = world.runtimes["DeployFunction"].invoke(
        release_event(request_id, weight_uri, **extra)
    )
    return result


def run_schedule(world: World, seconds: float, every: float = 60) -> None:
    """The schedule's poller, each ``every`` seconds for ``seconds``, its events delivered."""
    for _ in range(int(seconds // every)):
        world.clock.advance(every)
        world.poll()
        world.router.settle()


def timeline(world: World, request_id: str) -> list[tuple[str, str]]:
    """What the monitor announced about one request, in order: (detail type, what)."""
    seen = []
    for event in world.emitted():
        detail = event["detail"]
        if detail.get("request_id") != request_id and event["detail-type"] != (
            "Rollout Status Changed"
        ):
            continue
        what = {
            SYNC: lambda d: f"{d['sync_status']}/{d['outcome']}",
            "Deployment Submitted": lambda d: d["model"],
            "Rollout Status Changed": lambda d: d["rollout_status"],
            "Deployment Rejected": lambda d: d["reason"],
        }[event["detail-type"]](detail)
        seen.append((event["detail-type"], what))
    return seen


def test_a_release_uploads_waits_for_the_sync_then_deploys_each_step_once_in_order(
    world: World,
) -> None:
    result = release(world, "rel-1", "s3://weights-bucket/llama/ft-7", version_aliases=["ft-seven"])
    assert result["outcome"] == "waiting"
    assert world.simulator.count("POST", "models:upload") == 1
    assert world.simulator.count("POST", ":deployModel") == 0

    run_schedule(world, 60 * 5)  # synced at 30 s; the rollout takes 80 s
    world.router.settle()

    assert world.simulator.count("POST", "models:upload") == 1
    assert world.simulator.count("POST", ":deployModel") == 1
    assert timeline(world, "rel-1") == [
        (SYNC, "queued/waiting"),
        (SYNC, "done/ready"),
        ("Deployment Submitted", f"orgs/my-org/models/{ARCH}/versions/8"),
        ("Rollout Status Changed", "in_progress"),
        ("Rollout Status Changed", "done"),
    ]
    assert world.alerts() == []


@pytest.mark.parametrize(
    ("weights", "status", "seconds"),
    [
        ("s3://weights-bucket/sync-fails/ft", "failed", 120),
        ("s3://weights-bucket/sync-stalls/ft", "in_progress", 60 * 31),
    ],
)
def test_a_failed_or_stalled_sync_is_alerted_once_and_never_deployed(
    world: World, weights: str, status: str, seconds: float
) -> None:
    assert release(world, "rel-bad", weights)["outcome"] == "waiting"
    run_schedule(world, seconds)
    run_schedule(world, 60 * 3)  # later runs change nothing

    assert world.simulator.count("POST", ":deployModel") == 0
    outcome = "failed" if status == "failed" else "stalled"
    assert timeline(world, "rel-bad")[-2:] == [
        (SYNC, f"{status}/{outcome}"),
        ("Deployment Rejected", "version_not_ready"),
    ]
    assert world.router.failures == []
    (alert,) = world.alerts()
    assert alert.document["kind"] == "deploy_rejected"
    assert alert.document["reason"] == "version_not_ready"


def test_a_deploy_of_an_unsynced_version_waits_then_deploys_once_synced(world: World) -> None:
    version = world.simulator.upload("my-org", ARCH, "s3://weights-bucket/ft-9", sync="syncs")
    event = sample_event("deploy-requested.json")
    event["detail"] = {
        "endpoint_id": ENDPOINT,
        "model": f"orgs/my-org/models/{ARCH}/versions/{version.version_id}",
        "request_id": "guarded",
    }
    result = world.runtimes["DeployFunction"].invoke(event)
    assert result["outcome"] == "waiting"
    assert world.simulator.count("POST", ":deployModel") == 0
    (waiting,) = world.emitted(SYNC)
    assert waiting["detail"]["outcome"] == "waiting"
    assert waiting["detail"]["wait_until"] == world.clock.now() + 30 * 60

    run_schedule(world, 60)
    (submitted,) = world.emitted("Deployment Submitted")
    assert submitted["detail"]["request_id"] == "guarded"
    assert world.simulator.count("POST", ":deployModel") == 1
    # and the rollout is of the synced version: it succeeds, it does not fail at once
    run_schedule(world, 120)
    changes = world.emitted("Rollout Status Changed")
    assert changes[-1]["detail"]["rollout_status"] == "done"


def test_a_deploy_whose_version_is_not_synced_by_the_deadline_is_rejected_version_not_ready(
    world_with: Callable[[dict[str, str]], World],
) -> None:
    world = world_with({"VersionWaitMinutes": "2"})
    version = world.simulator.upload(
        "my-org", ARCH, "s3://weights-bucket/ft-10", sync="sync-stalls"
    )
    event = sample_event("deploy-requested.json")
    event["detail"] = {
        "endpoint_id": ENDPOINT,
        "model": f"orgs/my-org/models/{ARCH}/versions/{version.version_id}",
        "request_id": "too-late",
    }
    assert world.runtimes["DeployFunction"].invoke(event)["outcome"] == "waiting"
    run_schedule(world, 60)
    assert world.emitted("Deployment Rejected") == []
    run_schedule(world, 120)
    (rejected,) = world.emitted("Deployment Rejected")
    assert rejected["detail"]["reason"] == "version_not_ready"
    assert "still in_progress at the deadline" in rejected["detail"]["message"]
    assert world.simulator.count("POST", ":deployModel") == 0
    # the request's result is the rejection: a redelivery says so, and sends nothing
    again = world.runtimes["DeployFunction"].invoke(event)
    assert (again["outcome"], again["duplicate"]) == ("rejected", True)


def test_duplicate_and_concurrent_release_requests_upload_once_and_deploy_once(
    world: World,
) -> None:
    results: list[dict[str, Any]] = []
    event = release_event("rel-dup", "s3://weights-bucket/ft-11")

    def deliver() -> None:
        results.append(world.runtimes["DeployFunction"].invoke(event))

    threads = [threading.Thread(target=deliver) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    results.append(world.runtimes["DeployFunction"].invoke(event))  # a late redelivery
    assert {r["outcome"] for r in results} == {"waiting"}
    assert world.simulator.count("POST", "models:upload") == 1

    run_schedule(world, 60)
    for waiting in world.router.emitted:  # the wait's end delivered again: nothing new
        if waiting["detail-type"] == SYNC and waiting["detail"]["outcome"] == "ready":
            world.runtimes["DeployFunction"].invoke(waiting)
    world.runtimes["DeployFunction"].invoke(event)
    assert world.simulator.count("POST", "models:upload") == 1
    assert world.simulator.count("POST", ":deployModel") == 1
    assert len(world.emitted("Deployment Submitted")) == 1


def test_a_forged_wait_end_deploys_nothing(world: World) -> None:
    forged = sample_event("deploy-requested.json")
    forged["detail-type"] = SYNC
    forged["source"] = "cerebras.rollout-monitor"
    forged["detail"] = {
        "schema_version": "1",
        "event_id": "sync:nobody:2",
        "request_id": "nobody",
        "release": False,
        "model": f"orgs/my-org/models/{ARCH}/versions/succeeds",
        "endpoint_id": ENDPOINT,
        "sync_status": "done",
        "previous_sync_status": "queued",
        "outcome": "ready",
        "sequence": 2,
        "wait_until": 0,
        "observed_at": 0,
    }
    result = world.runtimes["DeployFunction"].invoke(forged)
    assert result["outcome"] == "ignored"
    assert world.simulator.count("POST", ":deployModel") == 0


@pytest.mark.parametrize("kind", [FaultKind.SERVER_ERROR, FaultKind.UNAUTHORIZED])
def test_a_wait_whose_version_cannot_be_read_still_ends_at_its_deadline(
    world_with: Callable[[dict[str, str]], World], kind: FaultKind
) -> None:
    world = world_with({"VersionWaitMinutes": "2"})
    assert release(world, "rel-ro", "s3://weights-bucket/sync-stalls/ro")["outcome"] == "waiting"
    (first,) = world.emitted(SYNC)
    version = first["detail"]["model"].rsplit("/", 1)[1]
    world.simulator.inject(Fault(kind, times=100_000, path_contains=f"/versions/{version}"))
    run_schedule(world, 60 * 4)
    (ended,) = [e for e in world.emitted(SYNC) if e["detail"]["outcome"] != "waiting"]
    assert (ended["detail"]["outcome"], ended["detail"]["sync_status"]) == ("stalled", "queued")
    (rejected,) = world.emitted("Deployment Rejected")
    assert rejected["detail"]["reason"] == "version_not_ready"


def test_a_version_not_served_just_after_its_upload_is_waited_for_not_failed(
    world: World,
) -> None:
    assert release(world, "rel-404", "s3://weights-bucket/ft-404")["outcome"] == "waiting"
    (first,) = world.emitted(SYNC)
    version = first["detail"]["model"].rsplit("/", 1)[1]
    world.simulator.inject(
        Fault(FaultKind.NOT_FOUND, times=2, path_contains=f"/versions/{version}")
    )
    run_schedule(world, 60 * 3)  # two 404s in the first minutes, then it is served
    assert world.emitted("Deployment Rejected") == []
    assert len(world.emitted("Deployment Submitted")) == 1


def test_a_held_deploy_redelivered_after_its_wait_ended_unsynced_is_rejected(
    world_with: Callable[[dict[str, str]], World],
) -> None:
    world = world_with({"VersionWaitMinutes": "2"})
    version = world.simulator.upload("my-org", ARCH, "s3://weights-bucket/ft-h", sync="sync-stalls")
    event = sample_event("deploy-requested.json")
    event["detail"] = {
        "endpoint_id": ENDPOINT,
        "request_id": "held-1",
        "model": f"orgs/my-org/models/{ARCH}/versions/{version.version_id}",
    }
    assert world.runtimes["DeployFunction"].invoke(event)["outcome"] == "waiting"
    rule = next(k for k in world.stack.rules if "VersionWaitEnded" in k)
    for _ in range(4):
        world.clock.advance(60)
        world.poll()
    (ended,) = world.router.take_waiting(rule)  # the wait's end, never delivered
    assert ended["detail"]["outcome"] == "stalled"
    releases = world.runtimes["DeployFunction"].module.releases()
    claim = releases.requests.get("held-1")
    assert releases.requests.resume(claim, world.clock.now(), 90)  # taken back, then it died
    world.clock.advance(120)  # past the lease: the request's own redelivery decides it
    again = world.runtimes["DeployFunction"].invoke(event)
    assert (again["outcome"], again["reason"]) == ("rejected", "version_not_ready")
    assert world.simulator.count("POST", ":deployModel") == 0


def test_a_release_refused_401_is_rejected_authentication_failed(world: World) -> None:
    world.simulator.inject(
        Fault(FaultKind.UNAUTHORIZED, times=100, path_contains=f"/models/{ARCH}/versions")
    )
    assert release(world, "rel-401", "s3://weights-bucket/ft-401")["outcome"] == "rejected"
    (rejected,) = world.emitted("Deployment Rejected")
    assert rejected["detail"]["reason"] == "authentication_failed"
    assert world.simulator.count("POST", "models:upload") == 0
