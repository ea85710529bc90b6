"""One event of every alert kind (and every reason), for tests of what alerts say.

``tests/data/alerts/*.json`` holds what each alert said before alert content was built once per
kind (subject, text, JSON document, attributes): the default rendering must stay byte-identical.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rollout_monitor.events import (
    CerebrasReachable,
    CerebrasUnreachable,
    DeploymentRejected,
    LostReason,
    RejectionReason,
    RolloutLost,
    RolloutStalled,
    RolloutStatusChanged,
)
from rollout_monitor.formatting import Alert
from rollout_monitor.messages import (
    Links,
    failure_alert,
    lost_alert,
    reachability_alert,
    recovery_alert,
    rejection_alert,
    stall_alert,
)
from rollout_monitor.records import LastOutcome

LINKS = Links(
    "us-east-1",
    ("/aws/lambda/poller", "/aws/lambda/alerts"),
    "https://cloud.cerebras.ai/platform/{org_name}/endpoints/{endpoint_id}",
)
HOSTILE = ("boom\n\r\x00\x1b[31m\u202e\u2028" * 700 + "tail")[:10_000]
T0 = 1_767_225_600.0

CHANGE: dict[str, Any] = {
    "event_id": "d-1:2",
    "deployment_id": "d-1",
    "endpoint_id": "my-org-llama-3.3-70b",
    "model": "orgs/my-org/models/llama-3.3-70b/versions/7",
    "org_name": "my-org",
    "model_arch_id": "llama-3.3-70b",
    "version_id": 7,
    "previous_status": "in_progress",
    "rollout_status": "error",
    "terminal": True,
    "outcome": "failed",
    "error_message": "replica 2 failed its health check",
    "updated_replicas": 1,
    "total_replicas": 4,
    "observed_at": T0 + 100,
    "submitted_at": T0,
    "seconds_since_submission": 100.0,
    "requested_by": "ci@example.com",
    "reason": "weekly refresh",
    "request_id": "r-1",
    "sequence": 2,
}
STALL: dict[str, Any] = {
    "event_id": "d-1:stall:1",
    "deployment_id": "d-1",
    "endpoint_id": "my-org-llama-3.3-70b",
    "model": "orgs/my-org/models/llama-3.3-70b/versions/7",
    "version_id": 7,
    "rollout_status": "in_progress",
    "listed_by_endpoint": True,
    "stalled_for_seconds": 1900.0,
    "stall_after_seconds": 1800.0,
    "last_progress_at": T0 + 60,
    "submitted_at": T0,
    "requested_by": "ci@example.com",
    "episode": 1,
    "observed_at": T0 + 1960,
}
LOST: dict[str, Any] = {
    "event_id": "d-1:lost",
    "deployment_id": "d-1",
    "endpoint_id": "my-org-llama-3.3-70b",
    "model": "orgs/my-org/models/llama-3.3-70b/versions/7",
    "org_name": "my-org",
    "model_arch_id": "llama-3.3-70b",
    "version_id": 7,
    "last_status": "in_progress",
    "unlisted_since": T0 + 100,
    "lost_after_seconds": 900.0,
    "submitted_at": T0,
    "observed_at": T0 + 1000,
    "requested_by": "ci@example.com",
    "request_id": "r-1",
}
EPISODE: dict[str, Any] = {
    "episode": 3,
    "failing_since": T0,
    "failing_for_seconds": 700.0,
    "unreachable_after_seconds": 600.0,
    "error_kinds": ["CerebrasAuthError", "CerebrasServerError"],
    "observed_at": T0 + 700,
}


def _rejected(reason: RejectionReason) -> Alert:
    return rejection_alert(
        DeploymentRejected.model_validate(
            {
                "event_id": f"rejected:{reason.value}",
                "endpoint_id": "my-org-llama-3.3-70b",
                "model": "orgs/my-org/models/llama-3.3-70b/versions/7",
                "request_id": "r-2",
                "requested_by": "ci@example.com",
                "reason": reason,
                "message": f"refused: {reason.value}",
                "status_code": 409 if reason == RejectionReason.CEREBRAS_REFUSED else None,
                "cerebras_detail": {"detail": "conflict"}
                if reason == RejectionReason.CEREBRAS_REFUSED
                else None,
                "blocking_deployment_id": "d-0"
                if reason == RejectionReason.ENDPOINT_BUSY
                else None,
                "rejected_at": T0,
            }
        )
    )


SUCCESS = LastOutcome(
    outcome="succeeded",
    deployment_id="d-2",
    observed_at=T0 + 500,
    model="orgs/my-org/models/llama-3.3-70b/versions/8",
    version_id=8,
    requested_by="ci@example.com",
    seconds_since_submission=300.0,
)

FAILURE = LastOutcome(outcome="failed", deployment_id="d-1", observed_at=T0 + 100)

SAMPLES: dict[str, Callable[[], Alert]] = {
    "failure": lambda: failure_alert(RolloutStatusChanged.model_validate(CHANGE), LINKS),
    "failure-rolled-back": lambda: failure_alert(
        RolloutStatusChanged.model_validate(
            CHANGE | {"rollout_status": "rolled_back", "error_message": None, "reason": None}
        ),
        LINKS,
    ),
    "failure-hostile": lambda: failure_alert(
        RolloutStatusChanged.model_validate(
            CHANGE
            | {
                "error_message": HOSTILE,
                "requested_by": "eve\x00\nwith\tcontrol" + "x" * 5000,
                "reason": "r\u0007" * 3000,
                "org_name": "evil\r\nBcc: x/../y?z=1#w",
            }
        ),
        LINKS,
    ),
    "stall": lambda: stall_alert(RolloutStalled.model_validate(STALL), LINKS),
    "stall-unlisted": lambda: stall_alert(
        RolloutStalled.model_validate(STALL | {"listed_by_endpoint": False, "episode": 2}), LINKS
    ),
    "recovery": lambda: recovery_alert("my-org-llama-3.3-70b", SUCCESS, FAILURE),
    "reachability-down": lambda: reachability_alert(
        CerebrasUnreachable.model_validate(EPISODE | {"event_id": "cerebras:unreachable:3"})
    ),
    "reachability-up": lambda: reachability_alert(
        CerebrasReachable.model_validate(EPISODE | {"event_id": "cerebras:reachable:3"})
    ),
    **{
        f"lost-{reason.value}": (
            lambda reason=reason: lost_alert(
                RolloutLost.model_validate(LOST | {"reason": reason}), LINKS
            )
        )
        for reason in LostReason
    },
    **{
        f"rejected-{reason.value}": (lambda reason=reason: _rejected(reason))
        for reason in RejectionReason
    },
}
