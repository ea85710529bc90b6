"""The Management API client: one request/response implementation, a sync and an async face.

:class:`_Protocol` builds each route and interprets each answer (typed errors, models);
:class:`CerebrasClient` and :class:`AsyncCerebrasClient` only send, under the same tenacity
retry policy: 429, 5xx, timeouts and connection errors are retried with capped exponential
backoff and jitter, ``Retry-After`` is honoured, and a total deadline bounds it all.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import time
from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass, field
from typing import Any

import httpx
import tenacity
from pydantic import BaseModel, SecretStr, ValidationError

from rollout_monitor.cerebras.errors import (
    REFUSED_BY_STATUS,
    CerebrasConnectionError,
    CerebrasError,
    CerebrasMalformedResponseError,
    CerebrasRateLimitedError,
    CerebrasRefusedError,
    CerebrasServerError,
    CerebrasTimeoutError,
    CerebrasTransientError,
)
from rollout_monitor.cerebras.models import (
    DeployOperation,
    EndpointList,
    EndpointStatus,
    ModelVersionOperation,
)
from rollout_monitor.cerebras.names import ModelVersionName, check_identifier, check_version_id

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.cerebras.ai"
API_PREFIX = "/management/v1"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How long and how often a transient failure is retried. ``deadline`` is in seconds."""

    max_attempts: int = 6
    initial_backoff: float = 0.5
    max_backoff: float = 8.0
    jitter: float = 0.5
    deadline: float = 25.0


@dataclass(frozen=True, slots=True)
class _Route[T: BaseModel]:
    method: str
    path: str
    response_model: type[T]
    body: dict[str, Any] | None = None


class _BearerAuth(httpx.Auth):
    """Adds the management key; its repr never shows it."""

    def __init__(self, key: SecretStr) -> None:
        self._key = key

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._key.get_secret_value()}"
        yield request

    def __repr__(self) -> str:
        return "_BearerAuth(key=**********)"


@dataclass(frozen=True)
class _Protocol:
    """Routes and answers, shared by both clients."""

    deployment_route: str | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    # -- routes -------------------------------------------------------------------------------

    def deploy_model(self, endpoint_id: str, model: str) -> _Route[DeployOperation]:
        check_identifier("endpoint_id", endpoint_id)
        ModelVersionName.parse(model)
        return _Route(
            "POST",
            f"{API_PREFIX}/endpoints/{endpoint_id}:deployModel",
            DeployOperation,
            {"model": model},
        )

    def get_endpoint(self, endpoint_id: str) -> _Route[EndpointStatus]:
        check_identifier("endpoint_id", endpoint_id)
        return _Route("GET", f"{API_PREFIX}/endpoints/{endpoint_id}", EndpointStatus)

    def list_endpoints(self, org_name: str) -> _Route[EndpointList]:
        check_identifier("org", org_name)
        return _Route("GET", f"{API_PREFIX}/orgs/{org_name}/endpoints", EndpointList)

    def get_model_version(
        self, org_name: str, model_arch_id: str, version: str
    ) -> _Route[ModelVersionOperation]:
        check_identifier("org", org_name)
        check_identifier("model architecture", model_arch_id)
        check_version_id(version)
        path = f"{API_PREFIX}/orgs/{org_name}/models/{model_arch_id}/versions/{version}"
        return _Route("GET", path, ModelVersionOperation)

    def get_deployment(self, endpoint_id: str, deployment_id: str) -> _Route[DeployOperation]:
        if self.deployment_route is None:
            raise CerebrasError("no per-deployment status route is configured")
        path = self.deployment_route.format(
            endpoint_id=check_identifier("endpoint_id", endpoint_id),
            deployment_id=check_identifier("deployment_id", deployment_id),
        )
        return _Route("GET", path, DeployOperation)

    # -- answers ------------------------------------------------------------------------------

    def interpret[T: BaseModel](self, route: _Route[T], response: httpx.Response) -> T:
        status = response.status_code
        if 200 <= status < 300:
            try:
                return route.response_model.model_validate_json(response.content)
            except ValidationError as exc:
                raise CerebrasMalformedResponseError(
                    f"{route.method} {route.path} -> {status}: body is not a "
                    f"{route.response_model.__name__}: {exc.error_count()} error(s), first: "
                    f"{exc.errors()[0]['msg']} at {exc.errors()[0]['loc']}"
                ) from exc
        detail = _detail(response)
        if status == 429:
            raise CerebrasRateLimitedError(_retry_after(response), detail)
        if status >= 500:
            raise CerebrasServerError(status, detail)
        error_type = REFUSED_BY_STATUS.get(status, CerebrasRefusedError)
        raise error_type(status, detail, method=route.method, path=route.path)

    @staticmethod
    def transport_error(exc: httpx.HTTPError) -> CerebrasError:
        if isinstance(exc, httpx.TimeoutException):
            return CerebrasTimeoutError(f"no answer in time: {type(exc).__name__}")
        return CerebrasConnectionError(f"connection failed: {type(exc).__name__}: {exc}")

    def retry_arguments(self) -> dict[str, Any]:
        policy = self.retry
        backoff = tenacity.wait_exponential_jitter(
            multiplier=policy.initial_backoff, max=policy.max_backoff, jitter=policy.jitter
        )

        def wait(state: tenacity.RetryCallState) -> float:
            error = state.outcome.exception() if state.outcome else None
            if isinstance(error, CerebrasRateLimitedError) and error.retry_after is not None:
                return error.retry_after
            return float(backoff(state))

        return {
            "retry": tenacity.retry_if_exception_type(CerebrasTransientError),
            "stop": tenacity.stop_after_attempt(policy.max_attempts)
            | tenacity.stop_before_delay(policy.deadline),
            "wait": wait,
            "reraise": True,
            "before_sleep": _log_retry,
        }


def _log_retry(state: tenacity.RetryCallState) -> None:
    error = state.outcome.exception() if state.outcome else None
    logger.warning(
        "retrying Cerebras request",
        extra={
            "attempt": state.attempt_number,
            "wait_seconds": round(state.upcoming_sleep, 3),
            "error": type(error).__name__,
        },
    )


def _detail(response: httpx.Response) -> Any:
    try:
        body = response.json()
    except ValueError:
        return response.text[:500]
    return body.get("detail", body) if isinstance(body, dict) else body


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class CerebrasClient:
    """Blocking client, for the deploy function and the CLI."""

    def __init__(
        self,
        api_key: SecretStr,
        *,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float = 10.0,
        retry: RetryPolicy | None = None,
        deployment_route: str | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._protocol = _Protocol(deployment_route, retry or RetryPolicy())
        self._http = httpx.Client(
            base_url=base_url, auth=_BearerAuth(api_key), timeout=timeout, transport=transport
        )

    def __repr__(self) -> str:
        return f"CerebrasClient(base_url={str(self._http.base_url)!r})"

    def close(self) -> None:
        self._http.close()

    def deploy_model(self, endpoint_id: str, model: str) -> DeployOperation:
        return self._send(self._protocol.deploy_model(endpoint_id, model))

    def get_endpoint(self, endpoint_id: str) -> EndpointStatus:
        return self._send(self._protocol.get_endpoint(endpoint_id))

    def list_endpoints(self, org_name: str) -> EndpointList:
        return self._send(self._protocol.list_endpoints(org_name))

    def get_model_version(
        self, org_name: str, model_arch_id: str, version: str
    ) -> ModelVersionOperation:
        return self._send(self._protocol.get_model_version(org_name, model_arch_id, version))

    def get_deployment(self, endpoint_id: str, deployment_id: str) -> DeployOperation:
        return self._send(self._protocol.get_deployment(endpoint_id, deployment_id))

    def _send[T: BaseModel](self, route: _Route[T]) -> T:
        retrying = tenacity.Retrying(**self._protocol.retry_arguments())
        attempt: Callable[[_Route[T]], T] = self._attempt
        return retrying(attempt, route)

    def _attempt[T: BaseModel](self, route: _Route[T]) -> T:
        try:
            response = self._http.request(route.method, route.path, json=route.body)
        except httpx.HTTPError as exc:
            raise self._protocol.transport_error(exc) from exc
        return self._protocol.interpret(route, response)


class AsyncCerebrasClient:
    """Non-blocking client, for the poller's concurrent status reads.

    Each attempt is also bounded as a whole by ``timeout`` (httpx's own timeouts are per read,
    so a server that trickles bytes could otherwise hold a request for ever).
    """

    def __init__(
        self,
        api_key: SecretStr,
        *,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float = 10.0,
        retry: RetryPolicy | None = None,
        deployment_route: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        max_connections: int = 10,
    ) -> None:
        self._protocol = _Protocol(deployment_route, retry or RetryPolicy())
        self._timeout = timeout
        self._http = httpx.AsyncClient(
            base_url=base_url,
            auth=_BearerAuth(api_key),
            timeout=timeout,
            transport=transport,
            limits=httpx.Limits(max_connections=max_connections),
        )

    def __repr__(self) -> str:
        return f"AsyncCerebrasClient(base_url={str(self._http.base_url)!r})"

    async def aclose(self) -> None:
        await self._http.aclose()

    async def deploy_model(self, endpoint_id: str, model: str) -> DeployOperation:
        return await self._send(self._protocol.deploy_model(endpoint_id, model))

    async def get_endpoint(self, endpoint_id: str) -> EndpointStatus:
        return await self._send(self._protocol.get_endpoint(endpoint_id))

    async def list_endpoints(self, org_name: str) -> EndpointList:
        return await self._send(self._protocol.list_endpoints(org_name))

    async def get_model_version(
        self, org_name: str, model_arch_id: str, version: str
    ) -> ModelVersionOperation:
        return await self._send(self._protocol.get_model_version(org_name, model_arch_id, version))

    async def get_deployment(self, endpoint_id: str, deployment_id: str) -> DeployOperation:
        return await self._send(self._protocol.get_deployment(endpoint_id, deployment_id))

    async def _send[T: BaseModel](self, route: _Route[T]) -> T:
        retrying = tenacity.AsyncRetrying(**self._protocol.retry_arguments())
        attempt: Callable[[_Route[T]], Awaitable[T]] = self._attempt
        return await retrying(attempt, route)

    async def _attempt[T: BaseModel](self, route: _Route[T]) -> T:
        try:
            async with asyncio.timeout(self._timeout):
                response = await self._http.request(route.method, route.path, json=route.body)
        except TimeoutError as exc:
            raise CerebrasTimeoutError(f"no answer within {self._timeout}s") from exc
        except httpx.HTTPError as exc:
            raise self._protocol.transport_error(exc) from exc
        return self._protocol.interpret(route, response)
