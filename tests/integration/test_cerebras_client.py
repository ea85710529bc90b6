"""The Management API client against the simulator: errors, retries, refusals, secrecy."""

from __future__ import annotations

import logging
import time

import httpx
import pytest
from pydantic import SecretStr

from rollout_monitor.cerebras.client import AsyncCerebrasClient, CerebrasClient, RetryPolicy
from rollout_monitor.cerebras.credentials import CerebrasSettings
from rollout_monitor.cerebras.errors import (
    CerebrasAuthenticationError,
    CerebrasBadRequestError,
    CerebrasConnectionError,
    CerebrasNotFoundError,
    CerebrasOutcomeUnknownError,
    CerebrasPermissionError,
    CerebrasRateLimitedError,
    CerebrasServerError,
    CerebrasTimeoutError,
    CerebrasValidationError,
    InvalidIdentifierError,
)
from rollout_monitor_local.simulator import Fault, FaultKind, Simulator
from tests.conftest import FAST_RETRY

MODEL = "orgs/my-org/models/llama-3.3-70b/versions/1"
ENDPOINT = "my-org-llama-3.3-70b"


def test_deploy_model_sends_the_documented_request(
    client: CerebrasClient, simulator: Simulator
) -> None:
    operation = client.deploy_model(ENDPOINT, MODEL)
    assert operation.name == operation.response.deployment_id
    assert operation.response.rollout_status == "not_started"
    (request,) = simulator.requests
    assert (request.method, request.path) == (
        "POST",
        f"/management/v1/endpoints/{ENDPOINT}:deployModel",
    )
    assert request.body == b'{"model":"orgs/my-org/models/llama-3.3-70b/versions/1"}'
    assert request.authorization == "Bearer sim-management-key"


def test_read_routes(client: CerebrasClient) -> None:
    deployed = client.deploy_model(ENDPOINT, "orgs/my-org/models/llama-3.3-70b/versions/errors")
    assert deployed.response.version_id == 2
    endpoint = client.get_endpoint(ENDPOINT)
    assert endpoint.find(deployed.name) is not None
    assert {e.endpoint_id for e in client.list_endpoints("my-org").endpoints} == {
        "my-org-llama-3.3-70b",
        "my-org-qwen-3-32b",
    }
    version = client.get_model_version("my-org", "llama-3.3-70b", "1")
    assert version.response.sync_status == "done"
    assert client.get_deployment(ENDPOINT, deployed.name).response.deployment_id == deployed.name


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        (FaultKind.UNAUTHORIZED, CerebrasAuthenticationError),
        (FaultKind.UNPROCESSABLE, CerebrasValidationError),
        (FaultKind.MALFORMED, CerebrasOutcomeUnknownError),
    ],
)
def test_permanent_faults_raise_their_typed_error_after_one_request(
    client: CerebrasClient, simulator: Simulator, fault: FaultKind, error: type[Exception]
) -> None:
    simulator.inject(Fault(fault, times=10))
    with pytest.raises(error):
        client.deploy_model(ENDPOINT, MODEL)
    assert simulator.count() == 1


@pytest.mark.parametrize(
    "fault", [FaultKind.SERVER_ERROR, FaultKind.UNAVAILABLE, FaultKind.HANG, FaultKind.MALFORMED]
)
def test_deploy_model_is_never_retried_when_it_may_have_acted(
    client: CerebrasClient, simulator: Simulator, fault: FaultKind
) -> None:
    simulator.inject(Fault(fault, times=10, seconds=1.5))
    with pytest.raises(CerebrasOutcomeUnknownError):
        client.deploy_model(ENDPOINT, MODEL)
    assert simulator.count("POST") == 1


def test_deploy_model_is_retried_on_429(client: CerebrasClient, simulator: Simulator) -> None:
    simulator.inject(Fault(FaultKind.RATE_LIMIT, times=2, seconds=0))
    assert client.deploy_model(ENDPOINT, MODEL).name
    assert simulator.count("POST") == 3


def test_deploy_model_is_retried_when_the_connection_was_never_made() -> None:
    attempts = 0

    def refuse(request: httpx.Request) -> httpx.Response:
        nonlocal attempts
        attempts += 1
        raise httpx.ConnectError("connection refused", request=request)

    client = CerebrasClient(
        SecretStr("k"),
        base_url="http://cerebras",
        retry=FAST_RETRY,
        transport=httpx.MockTransport(refuse),
    )
    with pytest.raises(CerebrasConnectionError) as caught:
        client.deploy_model(ENDPOINT, MODEL)
    assert caught.value.sent is False
    assert attempts == FAST_RETRY.max_attempts


def test_a_rotated_key_is_read_afresh_and_the_call_sent_once_more(
    simulator_url: str, simulator: Simulator
) -> None:
    keys = {"cached": "old-key", "fresh": "sim-management-key"}
    reads: list[bool] = []

    def source(*, fresh: bool = False) -> SecretStr:
        reads.append(fresh)
        return SecretStr(keys["fresh" if fresh else "cached"])

    client = CerebrasClient(source, base_url=simulator_url, retry=FAST_RETRY)
    assert client.deploy_model(ENDPOINT, MODEL).name
    assert reads == [False, True]
    assert [r.authorization for r in simulator.requests] == [
        "Bearer old-key",
        "Bearer sim-management-key",
    ]
    assert simulator.count("POST") == 2  # the first was refused: it did not act


def test_an_unchanged_key_that_is_refused_is_not_sent_again(
    simulator_url: str, simulator: Simulator
) -> None:
    client = CerebrasClient(SecretStr("wrong"), base_url=simulator_url, retry=FAST_RETRY)
    with pytest.raises(CerebrasAuthenticationError):
        client.deploy_model(ENDPOINT, MODEL)
    assert simulator.count() == 1


def test_validation_error_carries_the_422_detail(
    client: CerebrasClient, simulator: Simulator
) -> None:
    simulator.inject(Fault(FaultKind.UNPROCESSABLE))
    with pytest.raises(CerebrasValidationError) as caught:
        client.deploy_model(ENDPOINT, MODEL)
    assert caught.value.status_code == 422
    assert caught.value.errors == [
        {"loc": ["body", "model"], "msg": "version is not deployable", "type": "value_error"}
    ]


@pytest.mark.parametrize(
    ("endpoint", "model", "error", "status"),
    [
        ("no-such-endpoint", MODEL, CerebrasNotFoundError, 404),
        (ENDPOINT, "orgs/other-org/models/llama-3.3-70b/versions/1", CerebrasPermissionError, 403),
        (ENDPOINT, "orgs/my-org/models/qwen-3-32b/versions/1", CerebrasBadRequestError, 400),
        (ENDPOINT, "orgs/my-org/models/llama-3.3-70b/versions/999", CerebrasNotFoundError, 404),
    ],
)
def test_refusals_are_typed_and_never_retried(
    client: CerebrasClient,
    simulator: Simulator,
    endpoint: str,
    model: str,
    error: type[CerebrasNotFoundError],
    status: int,
) -> None:
    with pytest.raises(error) as caught:
        client.deploy_model(endpoint, model)
    assert caught.value.status_code == status
    assert caught.value.detail
    assert simulator.count() == 1


def test_wrong_key_is_refused_once(simulator_url: str, simulator: Simulator) -> None:
    wrong = CerebrasClient(SecretStr("not-the-key"), base_url=simulator_url, retry=FAST_RETRY)
    with pytest.raises(CerebrasAuthenticationError):
        wrong.get_endpoint(ENDPOINT)
    assert simulator.count() == 1


@pytest.mark.parametrize("fault", [FaultKind.SERVER_ERROR, FaultKind.UNAVAILABLE])
def test_5xx_is_retried_then_succeeds(
    client: CerebrasClient, simulator: Simulator, fault: FaultKind
) -> None:
    simulator.inject(Fault(fault, times=2))
    assert client.get_endpoint(ENDPOINT).name == ENDPOINT
    assert simulator.count() == 3


def test_5xx_fails_typed_after_the_attempts(client: CerebrasClient, simulator: Simulator) -> None:
    simulator.inject(Fault(FaultKind.SERVER_ERROR, times=100))
    with pytest.raises(CerebrasServerError) as caught:
        client.get_endpoint(ENDPOINT)
    assert caught.value.status_code == 500
    assert simulator.count() == FAST_RETRY.max_attempts


def test_5xx_fails_typed_at_the_deadline(simulator_url: str, simulator: Simulator) -> None:
    policy = RetryPolicy(
        max_attempts=1000, initial_backoff=0.05, max_backoff=0.05, jitter=0, deadline=0.5
    )
    client = CerebrasClient(SecretStr("sim-management-key"), base_url=simulator_url, retry=policy)
    simulator.inject(Fault(FaultKind.UNAVAILABLE, times=1000))
    started = time.monotonic()
    with pytest.raises(CerebrasServerError) as caught:
        client.get_endpoint(ENDPOINT)
    elapsed = time.monotonic() - started
    assert caught.value.status_code == 503  # the last real answer, however slow the machine
    assert 1 <= simulator.count() < 1000  # retried until the deadline, not to max_attempts
    assert elapsed < 0.5 + 2.0  # the deadline, plus at most one attempt in flight


def test_timeouts_are_retried_then_fail_typed(simulator_url: str, simulator: Simulator) -> None:
    client = CerebrasClient(
        SecretStr("sim-management-key"), base_url=simulator_url, timeout=0.2, retry=FAST_RETRY
    )
    simulator.inject(Fault(FaultKind.HANG, times=100, seconds=5))
    with pytest.raises(CerebrasTimeoutError):
        client.get_endpoint(ENDPOINT)
    assert simulator.count() == FAST_RETRY.max_attempts


def test_timeout_then_recovery(client: CerebrasClient, simulator: Simulator) -> None:
    simulator.inject(Fault(FaultKind.HANG, times=1, seconds=5))
    assert client.get_endpoint(ENDPOINT).name == ENDPOINT
    assert simulator.count() == 2


def test_latency_below_the_timeout_is_served(client: CerebrasClient, simulator: Simulator) -> None:
    simulator.inject(Fault(FaultKind.LATENCY, seconds=0.2))
    started = time.monotonic()
    assert client.get_endpoint(ENDPOINT).name == ENDPOINT
    assert time.monotonic() - started >= 0.2
    assert simulator.count() == 1


def test_rate_limit_honours_retry_after(
    client: CerebrasClient, simulator: Simulator, monitor_logs: pytest.LogCaptureFixture
) -> None:
    caplog = monitor_logs
    simulator.inject(Fault(FaultKind.RATE_LIMIT, times=1, seconds=0.3))
    caplog.set_level(logging.WARNING, logger="rollout_monitor")
    started = time.monotonic()
    assert client.get_endpoint(ENDPOINT).name == ENDPOINT
    assert time.monotonic() - started >= 0.3
    assert simulator.count() == 2
    retries = {id(r): r for r in caplog.records if r.getMessage() == "retrying Cerebras request"}
    (record,) = retries.values()  # the same record, whether or not the package propagates
    assert record.wait_seconds == 0.3  # type: ignore[attr-defined]
    assert record.error == "CerebrasRateLimitedError"  # type: ignore[attr-defined]


def test_retry_after_beyond_the_deadline_fails_at_once(
    client: CerebrasClient, simulator: Simulator
) -> None:
    simulator.inject(Fault(FaultKind.RATE_LIMIT, times=1, seconds=60))
    with pytest.raises(CerebrasRateLimitedError) as caught:
        client.get_endpoint(ENDPOINT)
    assert caught.value.retry_after == 60
    assert simulator.count() == 1


def test_connection_refused_is_retried_then_typed() -> None:
    client = CerebrasClient(SecretStr("k"), base_url="http://127.0.0.1:9", retry=FAST_RETRY)
    with pytest.raises(CerebrasConnectionError):
        client.get_endpoint(ENDPOINT)


BAD_IDS = ["../x", "a/b", "", "x" * 300, "line\nbreak", "tab\there", "..", "a\\b", "nul\x00"]


@pytest.mark.parametrize("endpoint_id", BAD_IDS)
def test_bad_endpoint_id_is_refused_before_any_request(
    client: CerebrasClient, simulator: Simulator, endpoint_id: str
) -> None:
    with pytest.raises(InvalidIdentifierError, match="invalid endpoint_id"):
        client.get_endpoint(endpoint_id)
    with pytest.raises(InvalidIdentifierError):
        client.deploy_model(endpoint_id, MODEL)
    assert simulator.count() == 0


@pytest.mark.parametrize(
    ("org", "arch", "version"),
    [("../o", "a", "1"), ("o", "a/b", "1"), ("o", "a", "../1"), ("o", "a", "Bad_Alias!")],
)
def test_bad_version_path_parts_are_refused(
    client: CerebrasClient, simulator: Simulator, org: str, arch: str, version: str
) -> None:
    with pytest.raises(InvalidIdentifierError):
        client.get_model_version(org, arch, version)
    assert simulator.count() == 0


def test_bad_model_name_is_refused(client: CerebrasClient, simulator: Simulator) -> None:
    for model in ["llama", "orgs/my-org/models/x/versions/1/extra", "orgs/../models/x/versions/1"]:
        with pytest.raises(InvalidIdentifierError, match="invalid"):
            client.deploy_model(ENDPOINT, model)
    assert simulator.count() == 0


CANARY = "csk-CANARY-7f3a9b2c4d"


def test_the_key_never_leaks(
    simulator_url: str,
    simulator: Simulator,
    monitor_logs: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog = monitor_logs
    caplog.set_level(logging.DEBUG)
    client = CerebrasClient(SecretStr(CANARY), base_url=simulator_url, retry=FAST_RETRY)
    texts = [repr(client)]
    with pytest.raises(CerebrasAuthenticationError) as auth_failure:
        client.deploy_model(ENDPOINT, MODEL)
    texts += [str(auth_failure.value), repr(auth_failure.value)]
    simulator.inject(Fault(FaultKind.SERVER_ERROR, times=100))
    with pytest.raises(CerebrasServerError) as server_failure:
        client.get_endpoint(ENDPOINT)
    texts += [str(server_failure.value), repr(server_failure.value)]
    monkeypatch.setenv("CEREBRAS_API_KEY", CANARY)
    settings = CerebrasSettings()
    texts += [repr(settings), str(settings), settings.model_dump_json()]
    texts += [r.getMessage() + str(r.__dict__) for r in caplog.records]
    assert simulator.requests[0].authorization == f"Bearer {CANARY}"  # it was really sent
    assert len(caplog.records) > 0
    for text in texts:
        assert CANARY not in text


async def test_async_client_shares_the_behaviour(
    async_client: AsyncCerebrasClient, simulator: Simulator
) -> None:
    simulator.inject(Fault(FaultKind.SERVER_ERROR, times=1))
    with pytest.raises(CerebrasOutcomeUnknownError):  # a POST that may have acted: not resent
        await async_client.deploy_model(ENDPOINT, MODEL)
    assert simulator.count() == 1
    operation = await async_client.deploy_model(ENDPOINT, MODEL)
    assert simulator.count() == 2
    simulator.inject(Fault(FaultKind.SERVER_ERROR, times=1))
    status = await async_client.get_endpoint(ENDPOINT)  # a read is retried
    assert status.find(operation.name) is not None
    assert simulator.count() == 4
    simulator.inject(Fault(FaultKind.UNAUTHORIZED))
    with pytest.raises(CerebrasAuthenticationError):
        await async_client.get_endpoint(ENDPOINT)
    assert simulator.count() == 5


async def test_async_client_bounds_a_hung_response_in_process(
    async_client: AsyncCerebrasClient, simulator: Simulator
) -> None:
    simulator.inject(Fault(FaultKind.HANG, times=100, seconds=30))
    started = time.monotonic()
    with pytest.raises(CerebrasTimeoutError):
        await async_client.get_endpoint(ENDPOINT)
    assert time.monotonic() - started < FAST_RETRY.deadline + 1.0
    assert 2 <= simulator.count() <= 3  # 1 s timeouts against a 2 s deadline
