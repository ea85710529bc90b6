"""The simulator's model upload: versions sync by script, and an unsynced one fails to deploy."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from rollout_monitor_local.clock import ManualClock
from rollout_monitor_local.simulator import DEFAULT_KEY, PREFIX, SCENARIOS, Simulator

ARCH = "llama-3.3-70b"
UPLOAD = f"{PREFIX}/orgs/my-org/models:upload"
VERSIONS = f"{PREFIX}/orgs/my-org/models/{ARCH}/versions"


@pytest.fixture
async def http(simulator: Simulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=simulator.app),
        base_url="http://simulator",
        headers={"Authorization": f"Bearer {DEFAULT_KEY}"},
    ) as client:
        yield client


def upload_body(weight_uri: str = "s3://weights/v2", **model: Any) -> dict[str, Any]:
    return {"model_arch_id": ARCH, "model": {"weight_uri": weight_uri, **model}}


async def sync_status(http: httpx.AsyncClient, version: str) -> str:
    answer = await http.get(f"{VERSIONS}/{version}")
    assert answer.status_code == 200
    status: str = answer.json()["response"]["sync_status"]
    assert answer.json()["done"] == (status == "done")
    return status


async def test_an_upload_is_queued_as_the_next_version_then_syncs(
    http: httpx.AsyncClient, clock: ManualClock, simulator: Simulator
) -> None:
    answer = await http.post(UPLOAD, json=upload_body(version_aliases=["canary-v2"]))
    assert answer.status_code == 200
    new_id = len(SCENARIOS) + 1
    assert answer.json() == {
        "name": f"orgs/my-org/models/{ARCH}/versions/{new_id}",
        "done": False,
        "response": {
            "customer_s3_uri": "s3://weights/v2",
            "version_aliases": ["canary-v2"],
            "sync_status": "queued",
        },
    }
    assert simulator.count("POST", "models:upload") == 1
    seen = []
    for _ in range(4):
        seen.append(await sync_status(http, "canary-v2"))
        clock.advance(10)
    assert seen == ["queued", "in_progress", "in_progress", "done"]
    assert await sync_status(http, str(new_id)) == "done"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (upload_body(version_aliases=["sync-fails"]), "failed"),
        (upload_body("s3://weights/sync-stalls/v2"), "in_progress"),
    ],
)
async def test_an_upload_named_after_a_sync_scenario_plays_it(
    http: httpx.AsyncClient, clock: ManualClock, body: dict[str, Any], expected: str
) -> None:
    answer = await http.post(UPLOAD, json=body)
    version = answer.json()["name"].rsplit("/", 1)[-1]
    clock.advance(10_000)
    assert await sync_status(http, version) == expected


def test_the_helper_uploads_by_the_routes_rules(simulator: Simulator, clock: ManualClock) -> None:
    version = simulator.upload("my-org", "new-arch", "s3://w", ["first"], sync="sync-fails")
    assert version.version_id == 1
    assert simulator.version_status("my-org", "new-arch", 1) == "queued"
    clock.advance(20)
    assert simulator.version_status("my-org", "new-arch", 1) == "failed"
    with pytest.raises(ValueError, match="first"):
        simulator.upload("my-org", "new-arch", "s3://w2", ["first"])


@pytest.mark.parametrize(
    "content",
    [
        b"not json",
        b"[]",
        b'{"model_arch_id": 7, "model": {"weight_uri": "s3://w"}}',
        b'{"model_arch_id": "llama-3.3-70b", "model": {}}',
        b'{"model_arch_id": "llama-3.3-70b", "model": {"weight_uri": "s3://w", '
        b'"version_aliases": ["Bad Alias"]}}',
        b'{"model_arch_id": "llama-3.3-70b", "model": {"weight_uri": "s3://w", '
        b'"version_aliases": "one"}}',
    ],
)
async def test_a_bad_upload_body_is_unprocessable(
    http: httpx.AsyncClient, simulator: Simulator, content: bytes
) -> None:
    answer = await http.post(UPLOAD, content=content)
    assert answer.status_code == 422
    assert len(simulator.versions[("my-org", ARCH)]) == len(SCENARIOS)


async def test_an_upload_is_refused_a_taken_alias_another_org_and_no_key(
    http: httpx.AsyncClient,
) -> None:
    taken = await http.post(UPLOAD, json=upload_body(version_aliases=["succeeds"]))
    assert taken.status_code == 409
    other_org = await http.post(f"{PREFIX}/orgs/other-org/models:upload", json=upload_body())
    assert other_org.status_code == 403
    no_key = await http.post(UPLOAD, json=upload_body(), headers={"Authorization": ""})
    assert no_key.status_code == 401


async def test_deploying_an_unsynced_version_errors_at_once(
    http: httpx.AsyncClient, simulator: Simulator
) -> None:
    version = simulator.upload("my-org", ARCH, "s3://weights/v2", ["canary-v2"])
    model = f"orgs/my-org/models/{ARCH}/versions/{version.version_id}"
    answer = await http.post(f"{PREFIX}/endpoints/my-org-{ARCH}:deployModel", json={"model": model})
    assert answer.status_code == 200
    assert answer.json()["response"]["rollout_status"] == "error"
    deployment = answer.json()["name"]
    status = await http.get(f"{PREFIX}/endpoints/my-org-{ARCH}/deployments/{deployment}")
    assert status.json()["response"]["rollout_status"] == "error"


async def test_seeded_versions_are_synced(http: httpx.AsyncClient) -> None:
    listed = (await http.get(VERSIONS)).json()["model_versions"]
    assert len(listed) == len(SCENARIOS)
    assert all(v["done"] and v["response"]["sync_status"] == "done" for v in listed)
