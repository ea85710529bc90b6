"""The Management API client: one protocol (``protocol.py``), a sync and an async face.

:class:`CerebrasClient` and :class:`AsyncCerebrasClient` only send, under the protocol's
retry rules, and bound every call as a whole by the retry policy's deadline: connect, write,
read and retries included.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import httpx
import tenacity
from pydantic import BaseModel, SecretStr

from rollout_monitor.cerebras.errors import CerebrasError, CerebrasTimeoutError
from rollout_monitor.cerebras.models import (
    DeployOperation,
    EndpointList,
    EndpointStatus,
    ModelVersionList,
    ModelVersionOperation,
)
from rollout_monitor.cerebras.protocol import (
    DEFAULT_BASE_URL,
    BearerAuth,
    Budget,
    KeySource,
    Protocol,
    RetryPolicy,
    Route,
    StaticKey,
    key_source,
    unknown_outcome,
)

__all__ = [
    "DEFAULT_BASE_URL",
    "AsyncCerebrasClient",
    "CerebrasClient",
    "KeySource",
    "RetryPolicy",
    "StaticKey",
]


class CerebrasClient:
    """Blocking client, for the deploy function and the CLI.

    Every call is bounded as a whole by the retry policy's ``deadline``: each attempt gets at
    most the time left, and its answer is read in chunks, so a server that trickles bytes is
    cut off at the deadline (httpx's own timeouts are per operation).
    """

    def __init__(
        self,
        api_key: SecretStr | KeySource,
        *,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float = 10.0,
        retry: RetryPolicy | None = None,
        deployment_route: str | None = None,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._protocol = Protocol(deployment_route, retry or RetryPolicy())
        self._auth = BearerAuth(key_source(api_key))
        self._timeout = timeout
        self._clock = clock
        self._http = httpx.Client(
            base_url=base_url,
            auth=self._auth,
            timeout=timeout,
            transport=transport,
        )

    def __repr__(self) -> str:
        return f"CerebrasClient(base_url={str(self._http.base_url)!r})"

    def close(self) -> None:
        self._http.close()

    def deploy_model(self, endpoint_id: str, model: str) -> DeployOperation:
        """Raises :class:`CerebrasOutcomeUnknownError` when the deployment may exist."""
        return self._send(self._protocol.deploy_model(endpoint_id, model))

    def get_endpoint(self, endpoint_id: str) -> EndpointStatus:
        return self._send(self._protocol.get_endpoint(endpoint_id))

    def list_endpoints(self, org_name: str) -> EndpointList:
        return self._send(self._protocol.list_endpoints(org_name))

    def get_model_version(
        self, org_name: str, model_arch_id: str, version: str
    ) -> ModelVersionOperation:
        return self._send(self._protocol.get_model_version(org_name, model_arch_id, version))

    def list_model_versions(self, org_name: str, model_arch_id: str) -> ModelVersionList:
        return self._send(self._protocol.list_model_versions(org_name, model_arch_id))

    def upload_model(
        self, org_name: str, model_arch_id: str, weight_uri: str, version_aliases: list[str]
    ) -> ModelVersionOperation:
        """Raises :class:`CerebrasOutcomeUnknownError` when the version may exist."""
        route = self._protocol.upload_model(org_name, model_arch_id, weight_uri, version_aliases)
        return self._send(route)

    def get_deployment(self, endpoint_id: str, deployment_id: str) -> DeployOperation:
        return self._send(self._protocol.get_deployment(endpoint_id, deployment_id))

    def _send[T: BaseModel](self, route: Route[T]) -> T:
        deadline = Budget(self._clock() + self._protocol.retry.deadline)
        retrying = tenacity.Retrying(**self._protocol.retry_arguments(route))
        attempt: Callable[[Route[T], Budget], T] = self._attempt
        try:
            return retrying(attempt, route, deadline)
        except CerebrasError as exc:
            unknown = unknown_outcome(route, exc)
            if unknown is exc:
                raise
            raise unknown from exc

    def _attempt[T: BaseModel](self, route: Route[T], budget: Budget) -> T:
        with budget.attempt(self._clock()) as left:
            return self._exchange(route, budget.at, left)

    def _exchange[T: BaseModel](self, route: Route[T], deadline: float, left: float) -> T:
        try:
            with self._http.stream(
                route.method, route.path, json=route.body, timeout=min(self._timeout, left)
            ) as streamed:
                expected = int(streamed.headers.get("content-length") or -1)
                body = b""
                for chunk in streamed.iter_bytes():
                    body += chunk
                    complete = 0 <= expected <= len(body)  # whole: late, but not cut off
                    if not complete and self._clock() > deadline:
                        raise CerebrasTimeoutError("the answer did not end by the deadline")
                response = httpx.Response(
                    streamed.status_code,
                    headers=streamed.headers,
                    content=body,
                    request=streamed.request,
                )
        except httpx.HTTPError as exc:
            raise self._protocol.transport_error(exc) from exc
        return self._protocol.interpret(route, response, self._auth.secrets())


class AsyncCerebrasClient:
    """Non-blocking client, for the poller's concurrent status reads.

    Each attempt is also bounded as a whole by ``timeout`` (httpx's own timeouts are per read,
    so a server that trickles bytes could otherwise hold a request for ever).
    """

    def __init__(
        self,
        api_key: SecretStr | KeySource,
        *,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float = 10.0,
        retry: RetryPolicy | None = None,
        deployment_route: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        max_connections: int = 10,
    ) -> None:
        self._protocol = Protocol(deployment_route, retry or RetryPolicy())
        self._auth = BearerAuth(key_source(api_key))
        self._timeout = timeout
        self._http = httpx.AsyncClient(
            base_url=base_url,
            auth=self._auth,
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

    async def _send[T: BaseModel](self, route: Route[T]) -> T:
        deadline = Budget(time.monotonic() + self._protocol.retry.deadline)
        retrying = tenacity.AsyncRetrying(**self._protocol.retry_arguments(route))
        attempt: Callable[[Route[T], Budget], Awaitable[T]] = self._attempt
        try:
            return await retrying(attempt, route, deadline)
        except CerebrasError as exc:
            unknown = unknown_outcome(route, exc)
            if unknown is exc:
                raise
            raise unknown from exc

    async def _attempt[T: BaseModel](self, route: Route[T], budget: Budget) -> T:
        with budget.attempt(time.monotonic()) as left:
            return await self._exchange(route, min(self._timeout, left))

    async def _exchange[T: BaseModel](self, route: Route[T], left: float) -> T:
        try:
            async with asyncio.timeout(left):
                response = await self._http.request(route.method, route.path, json=route.body)
        except TimeoutError as exc:
            raise CerebrasTimeoutError(f"no answer within {left:.3g}s") from exc
        except httpx.HTTPError as exc:
            raise self._protocol.transport_error(exc) from exc
        return self._protocol.interpret(route, response, self._auth.secrets())
