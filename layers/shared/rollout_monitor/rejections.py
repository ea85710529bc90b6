"""What a ``Deployment Rejected`` says, for each reason a deploy request is refused.

Built once per reason from the request (or, for an invalid one, from whatever was sent,
cleaned and bounded). Deterministic event ids: a redelivery announces the same rejection.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

from pydantic import TypeAdapter, ValidationError

from rollout_monitor.cerebras.errors import CerebrasAuthenticationError, CerebrasRefusedError
from rollout_monitor.events import (
    MAX_REQUEST_ID,
    REQUEST_ID_PATTERN,
    SOURCE,
    DeploymentRejected,
    DeployRequested,
    DetailType,
    RejectionReason,
)
from rollout_monitor.events.base import Labels, Team
from rollout_monitor.records import (
    EXTERNAL_REQUEST,
    EndpointHolder,
    RequestClaim,
    RequestContent,
)

MAX_SHOWN = 256  # untrusted text copied from an invalid request into its rejection
MAX_MESSAGE = 1000


def invalid(request_id: str, detail: Any, problem: str, now: float) -> DeploymentRejected:
    """An invalid request; its event id is derived from its content (it claims no id)."""
    shown = detail if isinstance(detail, Mapping) else {}
    return DeploymentRejected.of(
        request_id,
        RejectionReason.INVALID_REQUEST,
        f"invalid deploy request: {problem}"[:MAX_MESSAGE],
        rejected_at=now,
        endpoint_id=_text(shown.get("endpoint_id")),
        model=_text(shown.get("model")),
        requested_by=_text(shown.get("requested_by")),
        team=_valid(_TEAM, shown.get("team")),
        labels=_valid(_LABELS, shown.get("labels")),
    ).model_copy(update={"event_id": f"rejected:{request_id}:invalid:{_digest(detail)}"})


_TEAM: TypeAdapter[str] = TypeAdapter(Team)
_LABELS: TypeAdapter[dict[str, str]] = TypeAdapter(Labels)


def _valid[T](adapter: TypeAdapter[T], value: Any) -> T | None:
    """An invalid request's routing, when it is valid itself: its team still sees it."""
    try:
        return None if value is None else adapter.validate_python(value)
    except ValidationError:
        return None


def conflict(
    request: DeployRequested,
    request_id: str,
    claim: RequestClaim,
    content: RequestContent,
    now: float,
) -> DeploymentRejected:
    """A request id already used for other content: both requests' fields, and what differs."""
    first = claim.content
    differs = [
        name
        for name in ("endpoint_id", "model", "force")
        if first is None or getattr(first, name) != getattr(content, name)
    ]
    message = (
        f"request_id {request_id} was first used for "
        f"{first.describe() if first else 'another request'} (fingerprint "
        f"{claim.fingerprint}); this request has {content.describe()} (fingerprint "
        f"{content.fingerprint}): they differ in {', '.join(differs)}"
    )
    return rejection(
        request, request_id, RejectionReason.REQUEST_ID_CONFLICT, message, now
    ).model_copy(update={"event_id": f"rejected:{request_id}:conflict:{content.fingerprint}"})


def envelope_problem(detail: Any, detail_type: str, source: str) -> str | None:
    """What is wrong with a delivery before its detail is even read."""
    if detail_type != DetailType.DEPLOY_REQUESTED.value:
        return (
            f"detail-type must be {DetailType.DEPLOY_REQUESTED.value!r}, got {_text(detail_type)!r}"
        )
    if source == SOURCE:
        return f"source {SOURCE!r} is the monitor's own: deploy requests come from elsewhere"
    if not isinstance(detail, Mapping):
        return f"detail must be a JSON object, got {type(detail).__name__}"
    return None


def problems(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'detail'}: {e['msg']}" for e in exc.errors()
    )


def request_id_of(detail: Any, event_id: str) -> str:
    """The request's idempotency key; the event id when it has none (or an unusable one)."""
    given = detail.get("request_id") if isinstance(detail, Mapping) else None
    if (
        isinstance(given, str)
        and len(given) <= MAX_REQUEST_ID
        and re.fullmatch(REQUEST_ID_PATTERN, given)
    ):
        return given
    if event_id and len(event_id) <= MAX_REQUEST_ID and re.fullmatch(REQUEST_ID_PATTERN, event_id):
        return event_id
    return f"event-{_digest(event_id)}"


def _digest(value: Any) -> str:
    canonical = json.dumps(value, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _text(value: Any, limit: int = MAX_SHOWN) -> str | None:
    if value is None:
        return None
    text = "".join(ch for ch in str(value) if ch.isprintable())
    return text[:limit]


def rejection(
    request: DeployRequested,
    request_id: str,
    reason: RejectionReason,
    message: str,
    now: float,
    **extra: Any,
) -> DeploymentRejected:
    return DeploymentRejected.of(
        request_id,
        reason,
        message,
        rejected_at=now,
        endpoint_id=request.endpoint_id,
        model=request.model,
        requested_by=request.requested_by,
        team=request.team,
        labels=request.labels,
        **extra,
    )


def busy(
    request: DeployRequested, request_id: str, hold: EndpointHolder, now: float
) -> DeploymentRejected:
    """The endpoint has a rollout in flight: ours, or one started elsewhere (adopted)."""
    blocking = hold.deployment_id or f"request {hold.request_id}"
    if hold.request_id.startswith(EXTERNAL_REQUEST):
        blocking += " (started outside the monitor)"
    return rejection(
        request,
        request_id,
        RejectionReason.ENDPOINT_BUSY,
        f"endpoint {request.endpoint_id} already has a rollout in flight: {blocking}; "
        "send force=true to deploy anyway",
        now,
        blocking_deployment_id=hold.deployment_id,
    )


def refusal_reason(exc: CerebrasRefusedError) -> RejectionReason:
    """401 (even with the key read afresh) is the key's fault; any other 4xx the request's."""
    if isinstance(exc, CerebrasAuthenticationError):
        return RejectionReason.AUTHENTICATION_FAILED
    return RejectionReason.CEREBRAS_REFUSED


def refusal(
    request: DeployRequested, request_id: str, exc: CerebrasRefusedError, now: float
) -> DeploymentRejected:
    return rejection(
        request,
        request_id,
        refusal_reason(exc),
        f"Cerebras refused the deployment with {exc.status_code}",
        now,
        status_code=exc.status_code,
        cerebras_detail=exc.detail,
    )
