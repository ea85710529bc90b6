"""Hostile and malformed deliveries: none crashes the deploy function, none reaches Cerebras,
each is answered by a Deployment Rejected that says what was wrong."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.integration.conftest import World, sample_event

OK = {
    "endpoint_id": "my-org-llama-3.3-70b",
    "model": "orgs/my-org/models/llama-3.3-70b/versions/1",
}
MISSING = object()


def detail(**changes: Any) -> dict[str, Any]:
    body = dict(OK)
    for name, value in changes.items():
        if value is MISSING:
            body.pop(name, None)
        else:
            body[name] = value
    return body


def model(version: str, org: str = "my-org") -> str:
    return f"orgs/{org}/models/llama-3.3-70b/versions/{version}"


# (case, envelope changes, detail, what the rejection's message must name)
CASES: list[tuple[str, dict[str, Any], Any, str]] = [
    ("detail is a list", {}, ["endpoint_id"], "detail must be a JSON object"),
    ("detail is a string", {}, "deploy please", "detail must be a JSON object"),
    ("detail is a number", {}, 42, "detail must be a JSON object"),
    ("detail is null", {}, None, "detail must be a JSON object"),
    ("detail is missing", {"detail": MISSING}, None, "detail must be a JSON object"),
    ("detail-type with a trailing space", {"detail-type": "Deploy Requested "}, OK, "detail-type"),
    ("detail-type in lower case", {"detail-type": "deploy requested"}, OK, "detail-type"),
    ("detail-type of another event", {"detail-type": "Rollout Status Changed"}, OK, "detail-type"),
    ("detail-type missing", {"detail-type": MISSING}, OK, "detail-type"),
    ("the monitor's own source", {"source": "cerebras.rollout-monitor"}, OK, "monitor's own"),
    ("no event id and a list", {"id": MISSING}, [1], "detail must be a JSON object"),
    ("empty detail", {}, {}, "endpoint_id"),
    ("endpoint_id missing", {}, detail(endpoint_id=MISSING), "endpoint_id"),
    ("model missing", {}, detail(model=MISSING), "model"),
    ("endpoint_id traversal", {}, detail(endpoint_id="../etc/passwd"), "path separator"),
    ("endpoint_id with a slash", {}, detail(endpoint_id="a/b"), "path separator"),
    ("endpoint_id with a newline", {}, detail(endpoint_id="a\nb"), "whitespace"),
    ("endpoint_id empty", {}, detail(endpoint_id=""), "empty"),
    ("endpoint_id of 300 characters", {}, detail(endpoint_id="e" * 300), "at most 128"),
    ("endpoint_id a number", {}, detail(endpoint_id=123), "endpoint_id"),
    ("endpoint_id null", {}, detail(endpoint_id=None), "endpoint_id"),
    ("endpoint_id a list", {}, detail(endpoint_id=["x"]), "endpoint_id"),
    ("endpoint_id with NUL", {}, detail(endpoint_id="a\x00b"), "control characters"),
    ("endpoint_id with a zero-width space", {}, detail(endpoint_id="a\u200bb"), "endpoint_id"),
    ("endpoint_id '..'", {}, detail(endpoint_id=".."), "endpoint_id"),
    ("model 'latest'", {}, detail(model="latest"), "expected orgs/"),
    ("version a superscript digit", {}, detail(model=model("²")), "invalid version"),
    ("version an Arabic-Indic digit", {}, detail(model=model("\u0661")), "invalid version"),
    ("version a decimal", {}, detail(model=model("1.5")), "invalid version"),
    ("version negative", {}, detail(model=model("-1")), "version"),
    ("version alias capitalised", {}, detail(model=model("Prod")), "invalid version"),
    ("org traversal", {}, detail(model=model("1", org="..")), "model"),
    ("org with a homoglyph hyphen", {}, detail(model=model("1", org="my\u2010org")), "org"),
    ("model with extra segments", {}, detail(model=model("1") + "/x/y"), "expected orgs/"),
    ("model with a trailing slash", {}, detail(model=model("1") + "/"), "expected orgs/"),
    ("model with spaces", {}, detail(model="orgs/my org/models/a/versions/1"), "org"),
    ("model a number", {}, detail(model=1), "model"),
    ("force 'yes'", {}, detail(force="yes"), "force"),
    ("force 1", {}, detail(force=1), "force"),
    ("force 'true'", {}, detail(force="true"), "force"),
    ("force null", {}, detail(force=None), "force"),
    ("requested_by of 10,000 characters", {}, detail(requested_by="r" * 10_000), "requested_by"),
    ("requested_by a number", {}, detail(requested_by=5), "requested_by"),
    ("reason of 2,000 characters", {}, detail(reason="x" * 2000), "reason"),
    ("reason an object", {}, detail(reason={"why": "x"}), "reason"),
    ("request_id with spaces and NUL", {}, detail(request_id="a b\x00", force="1"), "force"),
]


def envelope(changes: dict[str, Any], body: Any, index: int) -> dict[str, Any]:
    event = copy.deepcopy(sample_event("deploy-requested.json"))
    event["id"] = f"hostile-{index}"
    event["detail"] = body
    for name, value in changes.items():
        if value is MISSING:
            event.pop(name, None)
        else:
            event[name] = value
    return event


def test_there_are_at_least_forty_cases() -> None:
    assert len(CASES) >= 40
    assert len({case for case, *_ in CASES}) == len(CASES)


@pytest.mark.parametrize("chunk", range(2))
def test_hostile_requests_are_each_rejected_without_a_call(faulty: World, chunk: int) -> None:
    world = faulty
    runtime = world.runtimes["DeployFunction"]
    mine = [(i, c) for i, c in enumerate(CASES) if i % 2 == chunk]
    for index, (case, changes, body, _) in mine:
        result = runtime.invoke(envelope(changes, body, index))  # a crash fails the test here
        assert (result["outcome"], result["reason"]) == ("rejected", "invalid_request"), case
    assert len(world.simulator.requests) == 0  # no API call at all
    rejected = world.emitted("Deployment Rejected")
    assert len(rejected) == len(mine)
    by_case = dict(zip([c for _, (c, *_) in mine], rejected, strict=True))
    for _, (case, _, _, named) in mine:
        message = by_case[case]["detail"]["message"]
        assert named in message, (case, message)
        assert len(message) <= 1000
        assert all(ch.isprintable() for ch in message), case
    assert [i for i in world.table_items() if i["pk"].startswith("REQUEST#")] == []
