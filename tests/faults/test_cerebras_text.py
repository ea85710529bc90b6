"""Whatever Cerebras sends, no record, event or alert outgrows its AWS limit, and a key it
echoes back never reaches a log, an event, an alert or the table."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from rollout_monitor.notifier import MAX_MESSAGE_BYTES
from rollout_monitor.store.items import MAX_ITEM_BYTES
from rollout_monitor_local.simulator import DEFAULT_KEY, Scenario, Step
from tests.integration.conftest import World

MAX_EVENT_BYTES = 256 * 1024  # EventBridge: one entry


@pytest.mark.parametrize(
    ("field", "step"),
    [
        ("a 1 MB error message", Step(20, "error", 1, "boom\n\x00" * 200_000)),
        ("a 100 KB status", Step(20, "X" * 100_000, 1)),
    ],
)
def test_huge_cerebras_text_stays_within_every_limit(world: World, field: str, step: Step) -> None:
    deployment_id = world.deploy("stalls")
    other = world.deploy("errors", endpoint_id="my-org-qwen-3-32b")
    world.simulator.deployment(deployment_id).scenario = Scenario(
        "huge", (Step(0, "not_started", 0), step)
    )
    world.clock.advance(40)
    world.poll()
    world.router.settle()
    assert world.router.failures == [], field
    for item in world.table_items():
        assert len(json.dumps(item).encode()) < MAX_ITEM_BYTES, field
    for event in world.emitted():
        assert len(json.dumps(event["detail"]).encode()) < MAX_EVENT_BYTES, field
    record = world.poller.store.deployments.get(deployment_id)
    assert len(record.error_message or "") <= 4000
    assert len(record.status) <= 64
    assert world.poller.store.deployments.get(other).status == "error"  # unaffected


def test_a_huge_version_id_from_cerebras_is_bounded(world: World) -> None:
    """deployModel's answer names a 45 KB version id: recorded, announced and alerted bounded."""
    real = world.simulator.metadata

    def metadata(deployment: Any) -> dict[str, Any]:
        return real(deployment) | {"version_id": "v" * 45_000, "rollout_status": "error"}

    world.simulator.metadata = metadata  # type: ignore[method-assign]
    deployment_id = world.deploy("errors")
    world.router.settle()
    record = world.poller.store.deployments.get(deployment_id)
    assert len(str(record.version_id)) <= 300
    (alert,) = world.alerts()
    forms = json.dumps(
        {"default": alert.text} | dict.fromkeys(range(7), json.dumps(alert.document))
    )
    assert len(forms.encode()) < MAX_MESSAGE_BYTES
    assert len(alert.subject) < 100


def echoing(app: Any, status: int) -> Any:
    """The simulator's app, whose deployModel answers ``status`` echoing the request's key."""

    async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope["path"].endswith(":deployModel"):
            await app(scope, receive, send)
            return
        header = dict(scope["headers"]).get(b"authorization", b"").decode()
        body = {"detail": [{"loc": ["header"], "msg": f"rejected {header}", "type": "x"}]}
        if status != 422:
            body = {"detail": f"key {header.removeprefix('Bearer ')} refused ({header})"}
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": json.dumps(body).encode()})

    return wrapped


@pytest.mark.parametrize("status", [401, 403, 422])
@pytest.mark.parametrize("level", ["DEBUG", "INFO"])
def test_a_key_echoed_by_cerebras_is_nowhere(
    aws: None,
    simulator: Any,
    clock: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    status: int,
    level: str,
) -> None:
    from rollout_monitor_local.server import serve
    from tests.integration.conftest import make_world

    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", level)
    with serve(echoing(simulator.app, status)) as url:
        world = make_world(simulator, url, clock, monkeypatch)
        world.put(
            {
                "endpoint_id": "my-org-llama-3.3-70b",
                "model": "orgs/my-org/models/llama-3.3-70b/versions/1",
            }
        )
        world.router.settle()
        (rejected,) = world.emitted("Deployment Rejected")
        assert rejected["detail"]["status_code"] == status
        assert "[redacted]" in json.dumps(rejected["detail"]["cerebras_detail"])
        (alert,) = world.alerts()
        logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
        everything = [logged, json.dumps(world.emitted()), alert.text, json.dumps(alert.document)]
        everything.append(json.dumps(world.table_items()))
        for text in everything:
            assert DEFAULT_KEY not in text
