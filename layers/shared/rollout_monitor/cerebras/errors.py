"""Typed errors of the Management API client.

Two families decide what callers do: :class:`CerebrasRefusedError` (a 4xx: permanent, never
retried) and :class:`CerebrasTransientError` (429, 5xx, timeout, connection: retried with
backoff until the deadline). No message here ever contains the API key.
"""

from __future__ import annotations

from typing import Any


class CerebrasError(Exception):
    """Base of every error the client raises."""


class InvalidIdentifierError(CerebrasError, ValueError):
    """A path parameter or model name was refused before any request was made."""

    def __init__(self, kind: str, value: str, why: str) -> None:
        shown = value if len(value) <= 60 else value[:57] + "..."
        super().__init__(f"invalid {kind} {shown!r}: {why}")
        self.kind = kind
        self.value = value
        self.why = why


class CerebrasRefusedError(CerebrasError):
    """The API answered 4xx: the request itself is wrong or not allowed. Not retried."""

    def __init__(self, status_code: int, detail: Any, *, method: str = "", path: str = "") -> None:
        self.status_code = status_code
        self.detail = detail
        self.method = method
        self.path = path
        super().__init__(f"{method} {path} -> {status_code}: {_short(detail)}")


class CerebrasBadRequestError(CerebrasRefusedError):
    """400."""


class CerebrasAuthenticationError(CerebrasRefusedError):
    """401: the management key is missing, wrong or revoked."""


class CerebrasPaymentRequiredError(CerebrasRefusedError):
    """402."""


class CerebrasPermissionError(CerebrasRefusedError):
    """403: no permission, or the organisation has no preview access."""


class CerebrasNotFoundError(CerebrasRefusedError):
    """404."""


class CerebrasValidationError(CerebrasRefusedError):
    """422, with FastAPI's ``detail`` list of ``{loc, msg, type}``."""

    @property
    def errors(self) -> list[dict[str, Any]]:
        return list(self.detail) if isinstance(self.detail, list) else []


class CerebrasTransientError(CerebrasError):
    """A failure worth retrying."""


class CerebrasRateLimitedError(CerebrasTransientError):
    """429; ``retry_after`` is the server's ``Retry-After`` in seconds, when sent."""

    def __init__(self, retry_after: float | None, detail: Any = None) -> None:
        self.status_code = 429
        self.retry_after = retry_after
        self.detail = detail
        super().__init__(f"rate limited (Retry-After: {retry_after}): {_short(detail)}")


class CerebrasServerError(CerebrasTransientError):
    """5xx."""

    def __init__(self, status_code: int, detail: Any = None) -> None:
        self.status_code = status_code
        self.detail = detail
        super().__init__(f"server error {status_code}: {_short(detail)}")


class CerebrasTimeoutError(CerebrasTransientError):
    """No complete answer within the request timeout. ``sent``: the request may have arrived."""

    def __init__(self, message: str, *, sent: bool = True) -> None:
        super().__init__(message)
        self.sent = sent


class CerebrasConnectionError(CerebrasTransientError):
    """The connection could not be made (``sent`` False) or was dropped after sending."""

    def __init__(self, message: str, *, sent: bool = True) -> None:
        super().__init__(message)
        self.sent = sent


class CerebrasOutcomeUnknownError(CerebrasError):
    """A call that changes something failed in a way that leaves its outcome unknown (5xx, a
    timeout or a lost connection after sending, a malformed answer): the change may have been
    made. Never retried blind; the caller finds out what happened first."""

    def __init__(self, cause: CerebrasError) -> None:
        super().__init__(f"outcome unknown after {type(cause).__name__}: {cause}")
        self.cause = cause


class CerebrasMalformedResponseError(CerebrasError):
    """A 2xx whose body is not the documented shape. Not retried: the request may have acted."""


REFUSED_BY_STATUS: dict[int, type[CerebrasRefusedError]] = {
    400: CerebrasBadRequestError,
    401: CerebrasAuthenticationError,
    402: CerebrasPaymentRequiredError,
    403: CerebrasPermissionError,
    404: CerebrasNotFoundError,
    422: CerebrasValidationError,
}


def _short(detail: Any, limit: int = 300) -> str:
    text = str(detail)
    return text if len(text) <= limit else text[: limit - 3] + "..."
