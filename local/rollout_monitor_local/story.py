"""What a local run should produce, what it saw, and the judge between the two.

A :class:`StoryItem` is one deploy request and what it must end in; each is named by the
simulator scenario (version alias) it deploys, so ``--scenario errors`` plays the ``errors``
alias. :func:`judge` fails a run on any missing or doubled event or alert.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

TERMINAL = frozenset({"done", "error", "rolled_back", "cancelled"})
_SYNC = "Model Version Sync Changed"
IN_FLIGHT = frozenset({"not_started", "in_progress", "rolling_back"})


@dataclass(frozen=True)
class StoryItem:
    """One deploy request of a story, and what it must end in."""

    label: str
    detail: dict[str, Any]
    final_status: str | None  # None: rejected
    changes: int = 0  # Rollout Status Changed events
    stalls: int = 0
    alert_kinds: tuple[str, ...] = ()
    detail_type: str = "Deploy Requested"  # or "Release Requested": upload, sync, then deploy
    # A rollout started "from the console" (this scenario on the request's endpoint): nothing
    # is requested; discovery adopts it (Deployment Discovered) and the poller follows it.
    external: str | None = None


def _request(scenario: str, endpoint: str) -> dict[str, Any]:
    arch = endpoint.removeprefix("my-org-").split("-canary")[0].split("-blue")[0].split("-green")[0]
    return {
        "endpoint_id": endpoint,
        "model": f"orgs/my-org/models/{arch}/versions/{scenario}",
        "request_id": f"demo-{scenario}",
        "requested_by": "demo@example.com",
        "reason": f"local demo: {scenario}",
    }


STORIES: dict[str, StoryItem] = {
    item.label: item
    for item in (
        StoryItem("succeeds", _request("succeeds", "my-org-llama-3.3-70b"), "done", 2),
        StoryItem(
            "errors",
            _request("errors", "my-org-qwen-3-32b"),
            "error",
            2,
            alert_kinds=("rollout_failed",),
        ),
        StoryItem(
            "rolls-back",
            _request("rolls-back", "my-org-llama-3.3-70b-canary"),
            "rolled_back",
            3,
            alert_kinds=("rollout_failed",),
        ),
        StoryItem(
            "stalls",
            _request("stalls", "my-org-qwen-3-32b-canary"),
            "in_progress",
            1,
            stalls=1,
            alert_kinds=("rollout_stalled",),
        ),
        StoryItem(
            "invalid",
            {"endpoint_id": "../etc/passwd", "model": "latest", "request_id": "demo-invalid"},
            None,
            alert_kinds=("deploy_rejected",),
        ),
        # Not in the default story: `cancelled` alerts only when AlertStatuses lists it,
        # `fails-at-once` is over when deployModel answers, and `invisible` (never listed by
        # its endpoint) ends as a stall.
        StoryItem("cancelled", _request("cancelled", "my-org-llama-3.3-70b-blue"), "cancelled", 2),
        StoryItem(
            "fails-at-once",
            _request("fails-at-once", "my-org-llama-3.3-70b-green"),
            "error",
            1,
            alert_kinds=("rollout_failed",),
        ),
        StoryItem(
            "invisible",
            _request("invisible", "my-org-qwen-3-32b-blue"),
            "not_started",
            0,
            stalls=1,
            alert_kinds=("rollout_stalled",),
        ),
    )
}
STORIES |= {
    "release": StoryItem(
        "release",
        {
            "org_name": "my-org",
            "model_arch_id": "llama-3.3-70b",
            "weight_uri": "s3://demo-weights/llama-3.3-70b/fine-tune-1",
            "version_aliases": ["demo-fine-tune"],
            "endpoint_id": "my-org-llama-3.3-70b-blue",
            "request_id": "demo-release",
            "requested_by": "demo@example.com",
            "reason": "local demo: upload, sync, deploy",
        },
        "done",
        2,
        detail_type="Release Requested",
    ),
    "external": StoryItem(
        "external",
        {"endpoint_id": "my-org-llama-3.3-70b-green", "request_id": "external"},
        "error",
        2,  # adopted as it starts (not_started): then in_progress, then error
        alert_kinds=("rollout_failed",),
        external="errors",
    ),
}
DEFAULT_SCENARIOS = ("succeeds", "errors", "rolls-back", "stalls", "invalid", "release", "external")
DEFAULT_STORY = tuple(STORIES[name] for name in DEFAULT_SCENARIOS)
EXTRA_ENDPOINTS = {
    "my-org-llama-3.3-70b-canary": "llama-3.3-70b",
    "my-org-qwen-3-32b-canary": "qwen-3-32b",
    "my-org-llama-3.3-70b-blue": "llama-3.3-70b",
    "my-org-qwen-3-32b-blue": "qwen-3-32b",
    "my-org-llama-3.3-70b-green": "llama-3.3-70b",
}


@dataclass
class Row:
    """One deployment (or rejected request) as the live view shows it."""

    key: str
    label: str
    endpoint_id: str
    version: str
    status: str = "requested"
    updated_replicas: int | None = None
    total_replicas: int | None = None
    submitted_at: float | None = None
    observed_at: float | None = None
    stalled: bool = False
    deployment_id: str | None = None


@dataclass
class Observed:
    """Everything the run saw, in order."""

    events: list[dict[str, Any]] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    rows: dict[str, Row] = field(default_factory=dict)
    poller_failures: list[str] = field(default_factory=list)


@dataclass
class Verdict:
    ok: bool
    problems: list[str]
    counts: dict[str, int]
    scripted: int = 0  # how many story items were judged
    interrupted: bool = False


def judge(story: tuple[StoryItem, ...], seen: Observed) -> Verdict:
    """Did every item end as scripted, with each event and alert exactly once?"""
    problems = _doubles(seen)
    by_request = _events_by_request(seen)
    for item in story:
        problems += _judge_item(item, by_request.get(item.detail["request_id"], []), seen)
    counts = {
        "deployments": sum(1 for r in seen.rows.values() if r.deployment_id),
        "transitions": sum(1 for e in seen.events if e["detail-type"] == "Rollout Status Changed"),
        "events": len(seen.events),
        "alerts": len(seen.alerts),
        "poller failures": len(seen.poller_failures),
    }
    return Verdict(not problems, problems, counts, scripted=len(story))


def _doubles(seen: Observed) -> list[str]:
    ids = Counter(e["detail"].get("event_id") for e in seen.events)
    problems = [f"event {i} announced {n} times" for i, n in ids.items() if n > 1]
    alert_ids = Counter(
        (a["kind"], a.get("deployment_id") or a.get("request_id")) for a in seen.alerts
    )
    return problems + [f"alert {k} sent {n} times" for k, n in alert_ids.items() if n > 1]


def _events_by_request(seen: Observed) -> dict[str, list[dict[str, Any]]]:
    by_request: dict[str, list[dict[str, Any]]] = {}
    for event in seen.events:
        request_id = event["detail"].get("request_id")
        deployment = event["detail"].get("deployment_id")
        row = next(
            (r for r in seen.rows.values() if deployment and r.deployment_id == deployment), None
        )
        key = row.key if row else (request_id or "?")  # an adopted rollout's row is its own
        by_request.setdefault(key, []).append(event)
    return by_request


def _judge_item(item: StoryItem, events: list[dict[str, Any]], seen: Observed) -> list[str]:
    problems: list[str] = []
    request_id = item.detail["request_id"]
    kinds = Counter(e["detail-type"] for e in events)
    row = seen.rows.get(request_id)
    syncs = [e["detail"]["outcome"] for e in events if e["detail-type"] == _SYNC]
    del kinds[_SYNC]
    if item.detail_type == "Release Requested" and (
        syncs[:1] != ["waiting"] or syncs[-1:] != ["ready"] or "ready" in syncs[:-1]
    ):
        problems.append(f"{item.label}: expected its sync waited on, then ready; saw {syncs}")
    if item.final_status is None:
        if kinds != Counter({"Deployment Rejected": 1}):
            problems.append(f"{item.label}: expected one rejection, saw {dict(kinds)}")
    else:
        first = "Deployment Discovered" if item.external else "Deployment Submitted"
        expected = Counter(
            {first: 1}
            | ({"Rollout Status Changed": item.changes} if item.changes else {})
            | ({"Rollout Stalled": item.stalls} if item.stalls else {})
        )
        if kinds != expected:
            problems.append(f"{item.label}: expected {dict(expected)}, saw {dict(kinds)}")
        if row is None or row.status != item.final_status:
            status = row.status if row else "nothing"
            problems.append(f"{item.label}: expected {item.final_status}, ended {status}")
    deployment_id = row.deployment_id if row else None
    alerts = sorted(
        a["kind"]
        for a in seen.alerts
        if a.get("request_id") == request_id
        or (deployment_id and a.get("deployment_id") == deployment_id)
    )
    if alerts != sorted(item.alert_kinds):
        problems.append(f"{item.label}: expected alerts {list(item.alert_kinds)}, saw {alerts}")
    return problems
