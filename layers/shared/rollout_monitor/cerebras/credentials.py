"""Where the management key comes from, and the clients built from settings.

On AWS the key lives in Secrets Manager and only its ARN is in the function's environment;
it is fetched when first needed and cached by Powertools Parameters for
``secret_max_age_seconds``; after a 401/403 the client reads it afresh (a rotated key is
picked up at once). Locally it may come from ``CEREBRAS_API_KEY``. Either way it is held as
a ``SecretStr``.
"""

from __future__ import annotations

import json

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from rollout_monitor.cerebras.client import (
    DEFAULT_BASE_URL,
    AsyncCerebrasClient,
    CerebrasClient,
    RetryPolicy,
    StaticKey,
)
from rollout_monitor.cerebras.errors import CerebrasError

SECRET_JSON_KEY = "api_key"  # noqa: S105  (a field name, not a secret)


class MissingCredentialsError(CerebrasError):
    """Neither a secret ARN nor a local key is configured."""


class CerebrasSettings(BaseSettings):
    """``CEREBRAS_*`` environment variables."""

    model_config = SettingsConfigDict(env_prefix="CEREBRAS_", frozen=True)

    api_base_url: str = DEFAULT_BASE_URL
    api_key_secret_arn: str | None = None
    api_key: SecretStr | None = None
    secret_max_age_seconds: int = Field(default=300, ge=0)
    timeout_seconds: float = Field(default=10.0, gt=0)
    retry_deadline_seconds: float = Field(default=25.0, gt=0)
    deployment_status_route: str | None = None

    @field_validator("api_key_secret_arn", "deployment_status_route", "api_key", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @property
    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(deadline=self.retry_deadline_seconds)


class SecretsManagerKey:
    """A key in Secrets Manager, cached per container; ``fresh`` reads it past the cache.
    The secret is the bare key, or a JSON object with the key in ``field``."""

    def __init__(self, secret_arn: str, max_age_seconds: int, field: str = SECRET_JSON_KEY) -> None:
        self._arn = secret_arn
        self._max_age = max_age_seconds
        self._field = field

    def __call__(self, *, fresh: bool = False) -> SecretStr:
        from aws_lambda_powertools.utilities import parameters  # noqa: PLC0415  (cold-start cost)

        raw = parameters.get_secret(self._arn, max_age=self._max_age, force_fetch=fresh)
        text = raw.decode() if isinstance(raw, bytes) else str(raw)
        return SecretStr(_unwrap(text, self._field))

    def __repr__(self) -> str:
        return f"SecretsManagerKey({self._arn!r})"


def key_source(settings: CerebrasSettings) -> SecretsManagerKey | StaticKey:
    """Secrets Manager on AWS, or, locally, the key from the environment.

    The secret may be the bare key or a JSON object with an ``api_key`` field.
    """
    if settings.api_key_secret_arn:
        return SecretsManagerKey(settings.api_key_secret_arn, settings.secret_max_age_seconds)
    if settings.api_key is not None:
        return StaticKey(settings.api_key)
    raise MissingCredentialsError(
        "no Cerebras management key: set CEREBRAS_API_KEY_SECRET_ARN (on AWS) "
        "or CEREBRAS_API_KEY (locally)"
    )


def _unwrap(text: str, field: str = SECRET_JSON_KEY) -> str:
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            document = json.loads(stripped)
        except ValueError:
            return stripped
        if isinstance(document, dict) and isinstance(document.get(field), str):
            return str(document[field])
    return stripped


def build_client(settings: CerebrasSettings) -> CerebrasClient:
    return CerebrasClient(
        key_source(settings),
        base_url=settings.api_base_url,
        timeout=settings.timeout_seconds,
        retry=settings.retry_policy,
        deployment_route=settings.deployment_status_route,
    )


def build_async_client(settings: CerebrasSettings, max_connections: int) -> AsyncCerebrasClient:
    return AsyncCerebrasClient(
        key_source(settings),
        base_url=settings.api_base_url,
        timeout=settings.timeout_seconds,
        retry=settings.retry_policy,
        deployment_route=settings.deployment_status_route,
        max_connections=max_connections,
    )
