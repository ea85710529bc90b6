"""Fixtures shared by every layer of tests."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from moto import mock_aws
from moto.core.botocore_stubber import BotocoreStubber
from pydantic import SecretStr

from rollout_monitor.cerebras.client import AsyncCerebrasClient, CerebrasClient, RetryPolicy
from rollout_monitor_local.clock import ManualClock
from rollout_monitor_local.server import serve
from rollout_monitor_local.simulator import DEFAULT_KEY, DEPLOYMENT_ROUTE, Simulator
from rollout_monitor_local.stack import Stack, create_stack

FAST_RETRY = RetryPolicy(
    max_attempts=4, initial_backoff=0.01, max_backoff=0.05, jitter=0.01, deadline=2.0
)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def simulator(clock: ManualClock) -> Simulator:
    return Simulator(clock=clock)


@pytest.fixture
def simulator_url(simulator: Simulator) -> Iterator[str]:
    with serve(simulator.app) as url:
        yield url


@pytest.fixture
def client(simulator_url: str) -> Iterator[CerebrasClient]:
    client = CerebrasClient(
        SecretStr(DEFAULT_KEY),
        base_url=simulator_url,
        timeout=1.0,
        retry=FAST_RETRY,
        deployment_route=DEPLOYMENT_ROUTE,
    )
    yield client
    client.close()


@pytest.fixture
async def async_client(simulator: Simulator) -> AsyncCerebrasClient:
    return AsyncCerebrasClient(
        SecretStr(DEFAULT_KEY),
        base_url="http://simulator",
        timeout=1.0,
        retry=FAST_RETRY,
        deployment_route=DEPLOYMENT_ROUTE,
        transport=httpx.ASGITransport(app=simulator.app),
    )


_MOTO_LOCK = threading.Lock()
_unlocked_process_request = BotocoreStubber.process_request


def _atomic_process_request(self: BotocoreStubber, request: Any) -> Any:
    # DynamoDB evaluates a condition and writes atomically; in-process moto does not lock,
    # so two threads could both pass one condition. One request at a time, as the service.
    with _MOTO_LOCK:
        return _unlocked_process_request(self, request)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A private, empty AWS account in moto, for one test."""
    monkeypatch.setattr(BotocoreStubber, "process_request", _atomic_process_request)
    for name in (
        "AWS_ENDPOINT_URL",
        "AWS_PROFILE",
        "CEREBRAS_API_KEY",
        "CEREBRAS_API_KEY_SECRET_ARN",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        yield


@pytest.fixture
def no_aws_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No credentials or region anywhere botocore looks, and no instance role to ask."""
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture
def stack(aws: None) -> Stack:
    """The stack created from template.yaml itself."""
    return create_stack()


@pytest.fixture
def monitor_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """caplog for the package's loggers, which do not propagate to the root in Lambda."""
    package = logging.getLogger("rollout_monitor")
    package.addHandler(caplog.handler)
    caplog.set_level(logging.DEBUG)
    yield caplog
    package.removeHandler(caplog.handler)
