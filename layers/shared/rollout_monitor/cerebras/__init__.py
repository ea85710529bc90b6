"""Adapter for the Cerebras Management API: models, typed errors, the client."""

from rollout_monitor.cerebras.client import (
    DEFAULT_BASE_URL,
    AsyncCerebrasClient,
    CerebrasClient,
    RetryPolicy,
)
from rollout_monitor.cerebras.errors import (
    CerebrasAuthenticationError,
    CerebrasConnectionError,
    CerebrasError,
    CerebrasMalformedResponseError,
    CerebrasNotFoundError,
    CerebrasPermissionError,
    CerebrasRateLimitedError,
    CerebrasRefusedError,
    CerebrasServerError,
    CerebrasTimeoutError,
    CerebrasTransientError,
    CerebrasValidationError,
    InvalidIdentifierError,
)
from rollout_monitor.cerebras.status import ObservedStatus, RolloutStatus, normalise_status

__all__ = [
    "DEFAULT_BASE_URL",
    "AsyncCerebrasClient",
    "CerebrasAuthenticationError",
    "CerebrasClient",
    "CerebrasConnectionError",
    "CerebrasError",
    "CerebrasMalformedResponseError",
    "CerebrasNotFoundError",
    "CerebrasPermissionError",
    "CerebrasRateLimitedError",
    "CerebrasRefusedError",
    "CerebrasServerError",
    "CerebrasTimeoutError",
    "CerebrasTransientError",
    "CerebrasValidationError",
    "InvalidIdentifierError",
    "ObservedStatus",
    "RetryPolicy",
    "RolloutStatus",
    "normalise_status",
]
