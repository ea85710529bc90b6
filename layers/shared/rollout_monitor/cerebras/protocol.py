"""The Management API's protocol, shared by both clients: routes, answers, retries, the key.

:class:`Protocol` builds each route and interprets each answer (typed errors, models); the
retry rules say what may be repeated. Reads are retried on 429, 5xx, timeouts and connection
errors with capped exponential backoff and jitter, ``Retry-After`` honoured. ``deployModel`` is
not idempotent: it is retried only where the server certainly did not act (429, a connection
that failed before sending); any other failure becomes :class:`CerebrasOutcomeUnknownError`
for the caller to reconcile. On 401/403 the key is read again, bypassing its cache, and the
request sent once more if the key has changed (it was rotated).
"""

from __future__ import annotations

import email.utils
import json
import logging
import re
import time
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from typing import Protocol as Interface

import httpx
import tenacity
from pydantic import BaseModel, SecretStr, ValidationError

from rollout_monitor.cerebras.errors import (
    REFUSED_BY_STATUS,
    CerebrasConnectionError,
    CerebrasError,
    CerebrasMalformedResponseError,
    CerebrasOutcomeUnknownError,
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
    ModelVersionList,
    ModelVersionOperation,
    UploadModel,
    UploadModelRequest,
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
class Route[T: BaseModel]:
    method: str
    path: str
    response_model: type[T]
    body: dict[str, Any] | None = None
    idempotent: bool = True


class KeySource(Interface):
    """Where the management key comes from; ``fresh`` bypasses any cache (after a 401/403)."""

    def __call__(self, *, fresh: bool = False) -> SecretStr: ...


@dataclass(frozen=True)
class StaticKey:
    """A key that never changes (tests, the CLI, a key from the environment)."""

    key: SecretStr

    def __call__(self, *, fresh: bool = False) -> SecretStr:
        return self.key


_REFUSED_KEY = frozenset({401, 403})


class BearerAuth(httpx.Auth):
    """Adds the management key; on 401/403 reads it afresh and, if it was rotated, sends the
    request once more (the server refused it, so it did not act). Its repr never shows it."""

    def __init__(self, source: KeySource) -> None:
        self._source = source
        self._sent: list[SecretStr] = []

    def secrets(self) -> tuple[str, ...]:
        """The keys sent lately, so an answer that echoes one can be redacted."""
        return tuple(k.get_secret_value() for k in self._sent)

    def _remember(self, key: SecretStr) -> None:
        if key not in self._sent:
            self._sent = [*self._sent[-1:], key]

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        key = self._source()
        self._remember(key)
        request.headers["Authorization"] = f"Bearer {key.get_secret_value()}"
        response = yield request
        if response.status_code not in _REFUSED_KEY:
            return
        fresh = self._source(fresh=True)
        self._remember(fresh)
        if fresh.get_secret_value() == key.get_secret_value():
            return
        logger.warning("management key was rotated: retrying once with the new key")
        request.headers["Authorization"] = f"Bearer {fresh.get_secret_value()}"
        yield request

    def __repr__(self) -> str:
        return "BearerAuth(key=**********)"


def key_source(key: SecretStr | KeySource) -> KeySource:
    return StaticKey(key) if isinstance(key, SecretStr) else key


@dataclass(frozen=True)
class Protocol:
    """Routes and answers, shared by both clients."""

    deployment_route: str | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    # -- routes -------------------------------------------------------------------------------

    def deploy_model(self, endpoint_id: str, model: str) -> Route[DeployOperation]:
        check_identifier("endpoint_id", endpoint_id)
        ModelVersionName.parse(model)
        return Route(
            "POST",
            f"{API_PREFIX}/endpoints/{endpoint_id}:deployModel",
            DeployOperation,
            {"model": model},
            idempotent=False,
        )

    def get_endpoint(self, endpoint_id: str) -> Route[EndpointStatus]:
        check_identifier("endpoint_id", endpoint_id)
        return Route("GET", f"{API_PREFIX}/endpoints/{endpoint_id}", EndpointStatus)

    def list_endpoints(self, org_name: str) -> Route[EndpointList]:
        check_identifier("org", org_name)
        return Route("GET", f"{API_PREFIX}/orgs/{org_name}/endpoints", EndpointList)

    def get_model_version(
        self, org_name: str, model_arch_id: str, version: str
    ) -> Route[ModelVersionOperation]:
        check_identifier("org", org_name)
        check_identifier("model architecture", model_arch_id)
        check_version_id(version)
        path = f"{API_PREFIX}/orgs/{org_name}/models/{model_arch_id}/versions/{version}"
        return Route("GET", path, ModelVersionOperation)

    def list_model_versions(self, org_name: str, model_arch_id: str) -> Route[ModelVersionList]:
        check_identifier("org", org_name)
        check_identifier("model architecture", model_arch_id)
        path = f"{API_PREFIX}/orgs/{org_name}/models/{model_arch_id}/versions"
        return Route("GET", path, ModelVersionList)

    def upload_model(
        self, org_name: str, model_arch_id: str, weight_uri: str, version_aliases: list[str]
    ) -> Route[ModelVersionOperation]:
        """Not idempotent: a repeated upload makes a second version."""
        check_identifier("org", org_name)
        check_identifier("model architecture", model_arch_id)
        body = UploadModelRequest(
            model_arch_id=model_arch_id,
            model=UploadModel(weight_uri=weight_uri, version_aliases=version_aliases or None),
        )
        return Route(
            "POST",
            f"{API_PREFIX}/orgs/{org_name}/models:upload",
            ModelVersionOperation,
            body.model_dump(exclude_none=True),
            idempotent=False,
        )

    def get_deployment(self, endpoint_id: str, deployment_id: str) -> Route[DeployOperation]:
        if self.deployment_route is None:
            raise CerebrasError("no per-deployment status route is configured")
        path = self.deployment_route.format(
            endpoint_id=check_identifier("endpoint_id", endpoint_id),
            deployment_id=check_identifier("deployment_id", deployment_id),
        )
        return Route("GET", path, DeployOperation)

    # -- answers ------------------------------------------------------------------------------

    def interpret[T: BaseModel](
        self, route: Route[T], response: httpx.Response, secrets: tuple[str, ...] = ()
    ) -> T:
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
        detail = _detail(response, secrets)
        if status == 429:
            raise CerebrasRateLimitedError(_retry_after(response), detail)
        if status >= 500:
            raise CerebrasServerError(status, detail)
        error_type = REFUSED_BY_STATUS.get(status, CerebrasRefusedError)
        raise error_type(status, detail, method=route.method, path=route.path)

    @staticmethod
    def transport_error(exc: httpx.HTTPError) -> CerebrasError:
        """A transport failure, typed; ``sent`` is False only when the request cannot have
        reached the server (no connection was made)."""
        sent = not isinstance(exc, _NOT_SENT)
        if isinstance(exc, httpx.TimeoutException):
            return CerebrasTimeoutError(f"no answer in time: {type(exc).__name__}", sent=sent)
        return CerebrasConnectionError(f"connection failed: {type(exc).__name__}: {exc}", sent=sent)

    def retry_arguments(self, route: Route[Any]) -> dict[str, Any]:
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
            "retry": tenacity.retry_if_exception(
                _safe_to_repeat if route.idempotent else _certainly_not_acted
            ),
            "stop": tenacity.stop_after_attempt(policy.max_attempts)
            | tenacity.stop_before_delay(policy.deadline),
            "wait": wait,
            "reraise": True,
            "before_sleep": _log_retry,
        }


@dataclass
class Budget:
    """A call's deadline across its attempts. An attempt that would start past it re-raises
    the previous attempt's error: a slow machine changes when a call gives up, never what it
    reports."""

    at: float
    last: CerebrasError | None = None

    @contextmanager
    def attempt(self, now: float) -> Iterator[float]:
        """Yield the time left for one attempt; remember how it failed."""
        if now >= self.at:
            raise self.last or CerebrasTimeoutError("the call's deadline has passed", sent=False)
        try:
            yield self.at - now
        except CerebrasError as exc:
            self.last = exc
            raise


_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def _safe_to_repeat(error: BaseException) -> bool:
    return isinstance(error, CerebrasTransientError)


def _certainly_not_acted(error: BaseException) -> bool:
    """For a call that changes something: 429, or a request that never left this machine."""
    if isinstance(error, CerebrasRateLimitedError):
        return True
    return isinstance(error, CerebrasTimeoutError | CerebrasConnectionError) and not error.sent


def unknown_outcome(route: Route[Any], error: CerebrasError) -> CerebrasError:
    """What a failed call that changes something means to its caller."""
    if route.idempotent or _certainly_not_acted(error):
        return error
    if isinstance(error, CerebrasTransientError | CerebrasMalformedResponseError):
        return CerebrasOutcomeUnknownError(error)
    return error


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


MAX_DETAIL = 2000  # characters of an error body kept (it reaches events, alerts and items)
_BEARER = re.compile(r"(?i)bearer\s+[^\s\"',;]+")
REDACTED = "[redacted]"


def _detail(response: httpx.Response, secrets: tuple[str, ...] = ()) -> Any:
    """What an error answer says, with any key it echoes redacted, and bounded."""
    try:
        body = response.json()
    except ValueError:
        return _redact(response.text, secrets)[:MAX_DETAIL]
    detail = body.get("detail", body) if isinstance(body, dict) else body
    text = json.dumps(detail)
    redacted = _redact(text, secrets)
    if len(redacted) > MAX_DETAIL:
        return redacted[:MAX_DETAIL] + "... (truncated)"
    return detail if redacted == text else json.loads(redacted)


def _redact(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        if secret:  # as sent, and as it reads inside JSON (escaped)
            text = text.replace(secret, REDACTED).replace(json.dumps(secret)[1:-1], REDACTED)
    return _BEARER.sub(f"Bearer {REDACTED}", text)


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
