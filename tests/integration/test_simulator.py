"""The simulator plays each scripted scenario to its end under a moved clock."""

from __future__ import annotations

import pytest

from rollout_monitor.cerebras.client import AsyncCerebrasClient
from rollout_monitor.cerebras.errors import CerebrasMalformedResponseError
from rollout_monitor_local.clock import ManualClock
from rollout_monitor_local.simulator import SCENARIOS, Fault, FaultKind, Simulator

ENDPOINT = "my-org-llama-3.3-70b"

EXPECTED = {
    "succeeds": ["not_started", "in_progress", "in_progress", "in_progress", "done"],
    "errors": ["not_started", "in_progress", "error"],
    "rolls-back": ["not_started", "in_progress", "rolling_back", "rolled_back"],
    "cancelled": ["not_started", "in_progress", "cancelled"],
    "stalls": ["not_started", "in_progress"],
    "invisible": ["not_started"],
    "fails-at-once": ["error"],
}


def test_every_scenario_is_covered() -> None:
    assert set(EXPECTED) == set(SCENARIOS)


@pytest.mark.parametrize("scenario", sorted(EXPECTED))
async def test_scenario_plays_to_its_end(
    scenario: str, async_client: AsyncCerebrasClient, clock: ManualClock
) -> None:
    model = f"orgs/my-org/models/llama-3.3-70b/versions/{scenario}"
    deployed = await async_client.deploy_model(ENDPOINT, model)
    seen = []
    for _ in range(len(SCENARIOS[scenario].steps)):
        seen.append((await async_client.get_deployment(ENDPOINT, deployed.name)).response)
        clock.advance(20)
    assert [m.rollout_status for m in seen] == EXPECTED[scenario]
    replicas = [m.updated_replicas for m in seen]
    assert replicas == [step.updated_replicas for step in SCENARIOS[scenario].steps]
    clock.advance(3600)  # long after: the last status holds
    final = (await async_client.get_deployment(ENDPOINT, deployed.name)).response
    assert final.rollout_status == EXPECTED[scenario][-1]
    listed = (await async_client.get_endpoint(ENDPOINT)).find(deployed.name)
    if scenario == "invisible":
        assert listed is None
    else:
        assert listed is not None
        expected_state = "complete" if final.rollout_status == "done" else final.rollout_status
        assert listed.state == expected_state
        assert listed.status.value == final.rollout_status
    if final.rollout_status in {"error", "rolled_back"}:
        assert final.error_message


async def test_default_scenario_applies_to_numeric_versions(
    clock: ManualClock, async_client: AsyncCerebrasClient, simulator: Simulator
) -> None:
    simulator.default_scenario = "errors"
    simulator.versions[("my-org", "llama-3.3-70b")][1].aliases = ["production"]
    deployed = await async_client.deploy_model(
        ENDPOINT, "orgs/my-org/models/llama-3.3-70b/versions/1"
    )
    clock.advance(1000)
    status = await async_client.get_deployment(ENDPOINT, deployed.name)
    assert status.response.rollout_status == "error"


async def test_faults_are_served_on_demand_then_cleared(
    async_client: AsyncCerebrasClient, simulator: Simulator
) -> None:
    simulator.inject(Fault(FaultKind.MALFORMED, times=1, path_contains="qwen"))
    assert (await async_client.get_endpoint(ENDPOINT)).name == ENDPOINT  # other path untouched
    with pytest.raises(CerebrasMalformedResponseError):
        await async_client.get_endpoint("my-org-qwen-3-32b")
    assert (await async_client.get_endpoint("my-org-qwen-3-32b")).name == "my-org-qwen-3-32b"
