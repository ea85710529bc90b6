"""Discovery: rollouts started outside the monitor are adopted, announced once, followed and
alerted on like its own (issue 17), through the template's stack in moto and the simulator."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.integration.conftest import World, sample_event

ENDPOINT = "my-org-llama-3.3-70b"
EXCLUDED = "my-org-qwen-3-32b"
DISCOVERED = "Deployment Discovered"


def test_a_rollout_started_elsewhere_is_adopted_once_followed_and_alerted_once(
    world_with: Callable[[dict[str, str]], World],
) -> None:
    world = world_with({"DiscoveryOrgs": "my-org", "DiscoveryExclude": "*qwen*"})
    started = world.simulator.start_from_console(ENDPOINT, "errors")
    world.simulator.start_from_console(EXCLUDED, "errors")
    reads_before = world.simulator.count("GET", f"/endpoints/{EXCLUDED}")

    world.poll()  # the schedule: this interval's discovery, then the cycle
    world.router.settle()
    (found,) = world.emitted(DISCOVERED)
    assert found["detail"]["deployment_id"] == started.id
    assert found["detail"]["origin"] == "external"
    record = world.poller.store.deployments.get(started.id)
    assert (record.origin, record.request_id) == ("external", f"external:{started.id}")

    for _ in range(4):  # the rollout errors; discovery runs again in a later interval
        world.clock.advance(100)
        world.poll()
    world.router.settle()
    assert len(world.emitted(DISCOVERED)) == 1  # announced once, adopted once
    changes = [e["detail"] for e in world.emitted("Rollout Status Changed")]
    assert [c["rollout_status"] for c in changes if c["deployment_id"] == started.id][-1] == "error"
    (alert,) = world.alerts()
    assert alert.document["deployment_id"] == started.id
    assert alert.document["kind"] == "rollout_failed"
    # the excluded endpoint was never read, by discovery or the poller
    assert world.simulator.count("GET", f"/endpoints/{EXCLUDED}") == reads_before == 0


def test_discovery_runs_once_per_interval_and_not_at_all_without_orgs(
    world_with: Callable[[dict[str, str]], World],
) -> None:
    world = world_with({"DiscoveryOrgs": "my-org", "DiscoveryMinutes": "5"})
    world.poll()
    world.clock.advance(60)
    world.poll()  # the same 5-minute interval: no second listing
    assert world.simulator.count("GET", "/orgs/my-org/endpoints") == 1
    world.clock.advance(300)
    world.poll()
    assert world.simulator.count("GET", "/orgs/my-org/endpoints") == 2


def test_without_orgs_nothing_is_listed(world: World) -> None:
    world.simulator.start_from_console(ENDPOINT, "errors")
    world.poll()
    assert world.simulator.count("GET", "/endpoints") == 0
    assert world.emitted(DISCOVERED) == []


def test_a_deploy_to_an_endpoint_with_an_adopted_rollout_is_refused_busy_naming_it(
    world_with: Callable[[dict[str, str]], World],
) -> None:
    world = world_with({"DiscoveryOrgs": "my-org"})
    started = world.simulator.start_from_console(ENDPOINT, "stalls")
    world.poll()
    event = sample_event("deploy-requested.json")
    event["detail"] = {
        "endpoint_id": ENDPOINT,
        "model": "orgs/my-org/models/llama-3.3-70b/versions/succeeds",
        "request_id": "after-discovery",
    }
    result = world.runtimes["DeployFunction"].invoke(event)
    assert (result["outcome"], result["reason"]) == ("rejected", "endpoint_busy")
    (rejected,) = world.emitted("Deployment Rejected")
    assert rejected["detail"]["blocking_deployment_id"] == started.id
    assert "started outside the monitor" in rejected["detail"]["message"]
    event["detail"] |= {"request_id": "forced", "force": True}
    assert world.runtimes["DeployFunction"].invoke(event)["outcome"] == "submitted"


def test_the_cost_benchmark_counts_one_listing_and_one_read_per_endpoint() -> None:
    from benchmarks.discovery import one_run

    calls, listings, reads = one_run(10)
    assert (listings, reads) == (1, 10)
    assert calls == {"UpdateItem": 1, "Query": 1}  # the run's slot, the InFlight index


def test_a_rollout_on_an_endpoint_a_deploy_request_holds_is_left_to_that_request(
    world_with: Callable[[dict[str, str]], World],
) -> None:
    """deployModel answered ambiguously: its rollout may be this one, and the request's retry
    adopts it as its own. Discovery adopts it only once the request's hold has gone stale."""
    world = world_with({"DiscoveryOrgs": "my-org"})
    endpoints = world.poller.store.endpoints
    assert endpoints.claim(ENDPOINT, "r-1", world.clock.now(), force=False, stale_after=900) is None
    started = world.simulator.start_from_console(ENDPOINT, "stalls")
    world.poll()
    assert world.emitted(DISCOVERED) == []
    assert world.poller.store.deployments.get(started.id) is None
    world.clock.advance(901)
    world.poll()
    (found,) = world.emitted(DISCOVERED)
    assert found["detail"]["deployment_id"] == started.id


def test_a_discovery_that_fails_costs_the_cycle_nothing(
    world_with: Callable[[dict[str, str]], World], monkeypatch: pytest.MonkeyPatch
) -> None:
    world = world_with({"DiscoveryOrgs": "my-org"})
    deployment_id = world.deploy("errors")
    world.clock.advance(40)

    async def broken() -> None:
        raise RuntimeError("DynamoDB is down")

    monkeypatch.setattr(world.poller, "discover", broken)
    result = world.poll()
    assert (result["cycles"], result["discovered"]) == (1, 0)
    assert world.poller.store.deployments.get(deployment_id).status == "error"
