"""The stack the benchmarks drive, built as ``tests/integration/conftest.py`` builds it: the
template's resources in moto (in-process), its functions loaded as Lambda loads them, the
simulator on loopback, the bus's rules delivering through the :class:`Router`, and the poll
queue on the benchmark's clock (a :class:`VirtualPollQueue`: moto's SQS would hide a delayed
message for real seconds, whatever the clock)."""

from __future__ import annotations

import io
import json
import logging
import os
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import boto3
from moto import mock_aws
from moto.core.botocore_stubber import BotocoreStubber

from rollout_monitor.store.items import shard_of
from rollout_monitor_local.clock import Clock
from rollout_monitor_local.pollqueue import VirtualPollQueue
from rollout_monitor_local.router import Router
from rollout_monitor_local.runtime import FunctionRuntime
from rollout_monitor_local.server import serve
from rollout_monitor_local.simulator import DEFAULT_KEY, Simulator
from rollout_monitor_local.stack import FunctionSpec, Stack, create_stack

EVENTS = Path(__file__).resolve().parents[1] / "events"
POLLER = "PollerFunction"
DEPLOY = "DeployFunction"
ALERTS = "AlertFunction"
ARCH = "llama-3.3-70b"
SQS_BATCH_SIZE = 1  # the template's poll-queue event source: BatchSize


def sample_event(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return event


@dataclass
class World:
    stack: Stack
    simulator: Simulator
    clock: Clock
    router: Router
    runtimes: dict[str, FunctionRuntime]
    queue: VirtualPollQueue

    @property
    def poller(self) -> Any:
        """The poller's warm container (``wiring.PollerContainer``)."""
        return self.runtimes[POLLER].module.runtime()

    def deploy(self, endpoint_id: str, version: str, request_id: str) -> str:
        """One ``Deploy Requested`` event handed to the deploy function; the deployment id."""
        event = sample_event("deploy-requested.json")
        event["id"] = request_id
        event["detail"] = {
            "endpoint_id": endpoint_id,
            "model": f"orgs/my-org/models/{ARCH}/versions/{version}",
            "request_id": request_id,
            "requested_by": "bench@example.com",
        }
        result = self.runtimes[DEPLOY].invoke(event)
        if result.get("outcome") != "submitted":
            raise RuntimeError(f"deploy of {endpoint_id} was not submitted: {result}")
        deployment_id: str = result["deployment_id"]
        return deployment_id

    def request(self, endpoint_id: str, version: str, request_id: str) -> None:
        """A ``Deploy Requested`` event put on the stack's bus, as a user's CI would."""
        detail = {
            "endpoint_id": endpoint_id,
            "model": f"orgs/my-org/models/{ARCH}/versions/{version}",
            "request_id": request_id,
            "requested_by": "bench@example.com",
        }
        answer = boto3.client("events").put_events(
            Entries=[
                {
                    "Source": "bench.ci",
                    "DetailType": "Deploy Requested",
                    "Detail": json.dumps(detail),
                    "EventBusName": self.stack.outputs["EventBusName"],
                }
            ]
        )
        if answer["FailedEntryCount"]:
            raise RuntimeError(f"the bus refused a request: {answer}")

    def due_poll_events(self) -> list[dict[str, Any]]:
        """The poll-queue messages due now, in batches of up to the event source's size."""
        records = [r for event in self.queue.receive() for r in event["Records"]]
        return [
            {"Records": records[start : start + SQS_BATCH_SIZE]}
            for start in range(0, len(records), SQS_BATCH_SIZE)
        ]


Around = Callable[[str, dict[str, Any], Callable[[], Any]], Any]


def _plain(function: str, event: dict[str, Any], invoke: Callable[[], Any]) -> Any:
    del function, event
    return invoke()


class Runtime(FunctionRuntime):
    """A function's warm container whose every invocation, by the benchmark or by the
    router, goes through ``around`` (the cost meter's way in)."""

    def __init__(self, spec: FunctionSpec, environment: dict[str, str], around: Around) -> None:
        super().__init__(spec, environment)
        self.around = around

    def invoke(self, event: dict[str, Any], *, remaining_millis: int = 60_000) -> Any:
        def call() -> Any:
            return FunctionRuntime.invoke(self, event, remaining_millis=remaining_millis)

        return self.around(self.spec.logical_id, event, call)


_MOTO_LOCK = threading.Lock()


@contextmanager
def _serialised_moto() -> Iterator[None]:
    """One moto request at a time, as DynamoDB is atomic per item (``docs/decisions.md``,
    "Tests serialise moto's requests"): the poller writes from a thread pool."""
    unlocked = BotocoreStubber.process_request

    def atomic(self: BotocoreStubber, request: Any) -> Any:
        with _MOTO_LOCK:
            return unlocked(self, request)

    BotocoreStubber.process_request = atomic  # type: ignore[method-assign]
    try:
        yield
    finally:
        BotocoreStubber.process_request = unlocked  # type: ignore[method-assign]


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = dict(os.environ)
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "CEREBRAS_API_KEY"):
        os.environ.pop(name, None)
    os.environ.update(values)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextmanager
def _logs_to(stream: TextIO) -> Iterator[None]:
    """The functions' JSON logs go to ``stream`` instead of this terminal."""
    from rollout_monitor.observability import logger  # noqa: PLC0415  (after the environment)

    handler = logger.registered_handler
    previous = handler.setStream(stream)  # type: ignore[attr-defined]
    try:
        yield
    finally:
        handler.setStream(previous)  # type: ignore[attr-defined]


class NullStream(io.StringIO):
    """Takes text and keeps none of it."""

    def write(self, text: str) -> int:
        return len(text)


@contextmanager
def build_world(
    clock: Clock,
    *,
    metrics: bool = False,
    log_stream: TextIO | None = None,
    before_functions: Callable[[], None] = lambda: None,
    around: Around = _plain,
) -> Iterator[World]:
    """The stack on ``clock``, with the template's default parameters. ``metrics``: the
    functions flush their EMF metrics to stdout (else disabled); ``before_functions`` runs
    once boto3's default session exists, before any function builds a client; ``around``
    wraps every invocation."""
    logging.getLogger("moto").setLevel(logging.ERROR)
    logging.getLogger("samtranslator").setLevel(logging.ERROR)  # "unpublished metrics" at exit
    warnings.filterwarnings("ignore", message="Tried to parse", category=UserWarning)
    warnings.filterwarnings("ignore", message="No application metrics", category=UserWarning)
    disabled = "false" if metrics else "true"
    with ExitStack() as stack:
        stack.enter_context(
            _environment(
                {
                    "AWS_DEFAULT_REGION": "us-east-1",
                    "AWS_ACCESS_KEY_ID": "bench",
                    "AWS_SECRET_ACCESS_KEY": "bench",
                    "POWERTOOLS_METRICS_DISABLED": disabled,
                }
            )
        )
        stack.enter_context(mock_aws())
        stack.enter_context(_serialised_moto())
        simulator = Simulator(clock=clock)
        url = stack.enter_context(serve(simulator.app))
        boto3.setup_default_session()
        before_functions()
        secret = boto3.client("secretsmanager").create_secret(
            Name="rollout-monitor/cerebras-key", SecretString=json.dumps({"api_key": DEFAULT_KEY})
        )
        template_stack = create_stack(
            parameters={"CerebrasApiKeySecretArn": secret["ARN"], "CerebrasApiBaseUrl": url}
        )
        overrides = {"POWERTOOLS_METRICS_DISABLED": disabled}
        runtimes: dict[str, FunctionRuntime] = {
            logical_id: Runtime(spec, overrides, around)
            for logical_id, spec in template_stack.functions.items()
        }
        stack.enter_context(_logs_to(log_stream or NullStream()))
        yield _wired(template_stack, simulator, clock, runtimes)


def _wired(
    stack: Stack, simulator: Simulator, clock: Clock, runtimes: dict[str, FunctionRuntime]
) -> World:
    """Every function on ``clock``; the deploy's kick and the poller's chain on one queue."""
    from rollout_monitor.observability import metrics  # noqa: PLC0415

    metrics.clear_metrics()
    deploy = runtimes[DEPLOY].module.service()
    deploy.now = clock.now
    poller = runtimes[POLLER].module.runtime()
    poller.now = clock.now
    queue = VirtualPollQueue(clock.now)
    poller.trigger = queue
    shards = poller.settings.poll_shards
    deploy.poll_now = lambda endpoint_id: queue.start(shard_of(endpoint_id, shards), 0)
    runtimes[ALERTS].module.service().now = clock.now
    return World(stack, simulator, clock, Router(stack, runtimes), runtimes, queue)
