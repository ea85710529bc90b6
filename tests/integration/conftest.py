"""The monitor's functions wired to the template's resources in moto and to the simulator."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from rollout_monitor.store.items import shard_of
from rollout_monitor_local.clock import ManualClock
from rollout_monitor_local.pollqueue import VirtualPollQueue
from rollout_monitor_local.router import Router
from rollout_monitor_local.runtime import FunctionRuntime
from rollout_monitor_local.simulator import DEFAULT_KEY, Simulator
from rollout_monitor_local.stack import Stack, create_stack
from rollout_monitor_local.topic import SentAlert, sent_alerts

EVENTS = Path(__file__).resolve().parents[2] / "events"


def sample_event(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return event


@dataclass
class World:
    stack: Stack
    simulator: Simulator
    clock: ManualClock
    router: Router
    runtimes: dict[str, FunctionRuntime]
    queue: VirtualPollQueue  # the poll chain's queue, on the test's clock

    def put(self, detail: dict[str, Any], detail_type: str = "Deploy Requested") -> None:
        answer = boto3.client("events").put_events(
            Entries=[
                {
                    "Source": "ci.tests",
                    "DetailType": detail_type,
                    "Detail": json.dumps(detail),
                    "EventBusName": self.stack.outputs["EventBusName"],
                }
            ]
        )
        assert answer["FailedEntryCount"] == 0

    def emitted(self, detail_type: str | None = None) -> list[dict[str, Any]]:
        self.router.read_tap()
        return [
            e for e in self.router.emitted if detail_type is None or e["detail-type"] == detail_type
        ]

    def deploy(self, scenario: str, endpoint_id: str = "my-org-llama-3.3-70b", **extra: Any) -> str:
        """Deploy through the deploy function; return the deployment id."""
        arch = self.simulator.endpoints[endpoint_id].model_arch_id
        event = sample_event("deploy-requested.json")
        event["id"] = f"event-{len(self.simulator.requests)}-{scenario}-{endpoint_id}"
        event["detail"] = {
            "endpoint_id": endpoint_id,
            "model": f"orgs/my-org/models/{arch}/versions/{scenario}",
            "request_id": event["id"],
            "requested_by": "tests@example.com",
        } | extra
        result = self.runtimes["DeployFunction"].invoke(event)
        assert result["outcome"] == "submitted", result
        deployment_id: str = result["deployment_id"]
        return deployment_id

    def poll(self) -> dict[str, Any]:
        """One scheduled poller invocation: this interval's cycle, unless one already ran."""
        result: dict[str, Any] = self.runtimes["PollerFunction"].invoke(
            sample_event("scheduled-poll.json")
        )
        return result

    def alerts(self) -> list[SentAlert]:
        return sent_alerts(self.stack.outputs["AlertTopicArn"])

    @property
    def alerter(self) -> Any:
        return self.runtimes["AlertFunction"].module.service()

    @property
    def poller(self) -> Any:
        return self.runtimes["PollerFunction"].module.runtime()

    def table_items(self) -> list[dict[str, Any]]:
        from rollout_monitor.store import from_item

        items = boto3.client("dynamodb").scan(TableName=self.stack.outputs["TableName"])["Items"]
        return [from_item(i) for i in items]


def make_world(
    simulator: Simulator,
    url: str,
    clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
    parameters: dict[str, str] | None = None,
    environment: dict[str, str] | None = None,
) -> World:
    """The template's stack in moto (with these template ``parameters``), its functions
    loaded (with ``environment`` over the fast defaults), pointed at Cerebras at ``url``."""
    secret = boto3.client("secretsmanager").create_secret(
        Name="rollout-monitor/cerebras-key", SecretString=json.dumps({"api_key": DEFAULT_KEY})
    )
    stack = create_stack(
        parameters={"CerebrasApiKeySecretArn": secret["ARN"], "CerebrasApiBaseUrl": url}
        | (parameters or {})
    )
    # Fast retries, and no metrics flush to stdout: no test waits on real backoff.
    fast = {
        "CEREBRAS_RETRY_DEADLINE_SECONDS": "1",
        "CEREBRAS_TIMEOUT_SECONDS": "1",
        "POWERTOOLS_METRICS_DISABLED": "true",
    } | (environment or {})
    for spec in stack.functions.values():
        for name, value in (spec.environment | fast).items():
            monkeypatch.setenv(name, value)  # so the test restores the environment after
    runtimes = {
        logical_id: FunctionRuntime(spec, fast) for logical_id, spec in stack.functions.items()
    }
    from rollout_monitor.observability import metrics

    metrics.clear_metrics()  # Powertools keeps unflushed metrics across tests when disabled
    deploy_service = runtimes["DeployFunction"].module.service()
    deploy_service.now = clock.now
    poller_runtime = runtimes["PollerFunction"].module.runtime()
    poller_runtime.now = clock.now
    queue = VirtualPollQueue(clock.now)
    poller_runtime.trigger = queue
    shards = poller_runtime.settings.poll_shards
    deploy_service.poll_now = lambda endpoint_id: queue.start(shard_of(endpoint_id, shards), 0)
    runtimes["AlertFunction"].module.service().now = clock.now
    return World(stack, simulator, clock, Router(stack, runtimes), runtimes, queue)


@pytest.fixture
def world_with(
    aws: None,
    simulator: Simulator,
    simulator_url: str,
    clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
) -> Callable[[dict[str, str]], World]:
    """A world whose stack has these template parameters."""
    return lambda parameters: make_world(simulator, simulator_url, clock, monkeypatch, parameters)


@pytest.fixture
def world(
    aws: None,
    simulator: Simulator,
    simulator_url: str,
    clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
) -> World:
    return make_world(simulator, simulator_url, clock, monkeypatch)
