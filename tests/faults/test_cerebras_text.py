"""Whatever Cerebras sends, no record, event or alert outgrows its AWS limit, and a key it
echoes back never reaches a log, an event, an alert or the table."""

from __future__ import annotations

import json
import logging
import os
import re
import unicodedata
from collections.abc import Iterator
from typing import Any

import pytest

from rollout_monitor.cerebras.models import MAX_ERROR_MESSAGE, MAX_NAME, MAX_STATUS
from rollout_monitor.notifier import MAX_MESSAGE_BYTES, MAX_SUBJECT_LENGTH
from rollout_monitor.store.items import MAX_ITEM_BYTES
from rollout_monitor_local.simulator import DEFAULT_KEY
from rollout_monitor_local.topic import SentAlert
from tests.integration.conftest import World

MAX_EVENT_BYTES = 256 * 1024  # EventBridge: one entry


URL_SAFE = re.compile(r"https://[A-Za-z0-9._~:/?#\[\]@!$&'()*+,;=%-]+")


def assert_clean(alert: SentAlert) -> None:
    """Every byte a subscriber sees: one printable ASCII subject line under SNS's limit, no
    control character in attributes or JSON strings, the text's only one the newline, each
    link one URL-safe token, the whole within SNS's message limit."""
    assert len(alert.subject) <= MAX_SUBJECT_LENGTH
    assert all(0x20 <= ord(c) < 0x7F for c in alert.subject), repr(alert.subject)
    assert alert.published_bytes < MAX_MESSAGE_BYTES
    for name, value in alert.attributes.items():
        assert not any(_control(c) for c in value), (name, value)
    assert not any(_control(c) and c != "\n" for c in alert.text), alert.text
    for text in _strings(alert.document):
        assert not any(_control(c) and c != "\n" for c in text), text
    for link in alert.document["links"]:
        assert URL_SAFE.fullmatch(link), link
    console = alert.document["links"][-1]
    assert console.startswith("https://cloud.cerebras.ai/platform/"), console
    assert console.count("/") == 6, console  # .../platform/{org}/endpoints/{endpoint}


def _control(ch: str) -> bool:
    return unicodedata.category(ch)[0] == "C" or ch in "\u2028\u2029"


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def answering(world: World, **fields: Any) -> None:
    """The simulator's answers about rollouts on the default endpoint (deployModel's and
    status reads) carry ``fields``."""
    real = world.simulator.metadata

    def metadata(deployment: Any) -> dict[str, Any]:
        if deployment.endpoint_id != "my-org-llama-3.3-70b":
            return real(deployment)
        return real(deployment) | fields

    world.simulator.metadata = metadata  # type: ignore[method-assign]


def stall(world: World) -> None:
    """Poll, then poll again past every stall deadline."""
    world.clock.advance(40)
    world.poll()
    world.router.settle()
    world.clock.advance(3600)
    world.poll()
    world.router.settle()


@pytest.mark.parametrize(
    ("case", "fields", "kind"),
    [
        ("a 1 MB error message", {"error_message": "boom\n\x00" * 200_000}, "rollout_failed"),
        ("a 100 KB status", {"rollout_status": "X" * 100_000}, "rollout_stalled"),
        ("a 45 KB version id", {"version_id": "v" * 45_000}, "rollout_failed"),
    ],
)
def test_huge_cerebras_text_gives_one_alert_within_every_limit(
    world: World, case: str, fields: dict[str, Any], kind: str
) -> None:
    other = world.deploy("errors", endpoint_id="my-org-qwen-3-32b")
    answering(world, **({"rollout_status": "error"} | fields))
    deployment_id = world.deploy("stalls")
    stall(world)
    assert world.router.failures == [], case  # nothing reached a DLQ
    for item in world.table_items():
        assert len(json.dumps(item).encode()) < MAX_ITEM_BYTES, case
    for event in world.emitted():
        assert len(json.dumps(event).encode()) < MAX_EVENT_BYTES, case
    record = world.poller.store.deployments.get(deployment_id)
    assert len(record.error_message or "") <= MAX_ERROR_MESSAGE
    assert len(record.status) <= MAX_STATUS
    assert len(str(record.version_id)) <= MAX_NAME
    (alert,) = [a for a in world.alerts() if a.document["deployment_id"] == deployment_id]
    assert alert.document["kind"] == kind, case
    assert_clean(alert)
    # The rollout beside it, in the same cycles, was observed, recorded and alerted as usual.
    assert world.poller.store.deployments.get(other).status == "error"
    assert [a.document["kind"] for a in world.alerts() if a.document["deployment_id"] == other] == [
        "rollout_failed"
    ]


HOSTILE = "evil\r\nBcc: attacker@example.com\x00\x1b[31m\u2028/../x?y=1#z <b>\t"


@pytest.mark.parametrize(
    ("fields", "kind"),
    [
        ({"org_name": HOSTILE, "rollout_status": "error"}, "rollout_failed"),
        ({"org_name": "../../attacker.example/x?", "rollout_status": "error"}, "rollout_failed"),
        ({"version_id": HOSTILE, "rollout_status": "error"}, "rollout_failed"),
        ({"error_message": HOSTILE, "rollout_status": "error"}, "rollout_failed"),
        ({"rollout_status": HOSTILE}, "rollout_stalled"),
    ],
    ids=["org-name", "org-name-path", "version-id", "error-message", "status"],
)
def test_hostile_cerebras_text_leaves_every_alert_clean(
    world: World, fields: dict[str, Any], kind: str
) -> None:
    answering(world, **fields)
    deployment_id = world.deploy("stalls")
    stall(world)
    (alert,) = world.alerts()
    assert (alert.document["kind"], alert.document["deployment_id"]) == (kind, deployment_id)
    assert_clean(alert)


class Echoing:
    """The simulator's app; a call whose method is in :attr:`methods` answers ``status`` with a
    body that echoes the request's key, as a careless proxy or API gateway might."""

    def __init__(self, app: Any, status: int) -> None:
        self.app = app
        self.status = status
        self.methods: set[str] = set()
        self.echoed: list[str] = []  # "METHOD path" of each call answered with the key

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] not in self.methods:
            await self.app(scope, receive, send)
            return
        header = dict(scope["headers"]).get(b"authorization", b"").decode()
        self.echoed.append(f"{scope['method']} {scope['path']}")
        body: dict[str, Any] = {
            "detail": [{"loc": ["header"], "msg": f"rejected {header}", "type": "x"}]
        }
        if self.status != 422:
            body = {"detail": f"key {header.removeprefix('Bearer ')} refused ({header})"}
        await send(
            {
                "type": "http.response.start",
                "status": self.status,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": json.dumps(body).encode()})


class EveryLine(logging.Handler):
    """Every record any logger writes, as the function's JSON formatter would print it."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.levels: set[int] = set()

    def emit(self, record: logging.LogRecord) -> None:
        from rollout_monitor.observability import logger

        self.levels.add(record.levelno)
        self.lines.append(logger.registered_formatter.format(record))


@pytest.fixture
def every_line() -> Iterator[EveryLine]:
    """Attached to the root logger and to the package's own (which does not propagate)."""
    handler = EveryLine()
    loggers = [logging.getLogger(name) for name in ("", "rollout_monitor", "rollout-monitor")]
    levels = [each.level for each in loggers]
    for each in loggers:
        each.addHandler(handler)
    yield handler
    for each, level in zip(loggers, levels, strict=True):
        each.removeHandler(handler)
        each.setLevel(level)


@pytest.mark.parametrize("status", [401, 403, 422])
@pytest.mark.parametrize("level", ["DEBUG", "INFO", "WARNING", "ERROR"])  # the template's
def test_a_key_echoed_by_cerebras_is_nowhere(
    aws: None,
    simulator: Any,
    clock: Any,
    monkeypatch: pytest.MonkeyPatch,
    every_line: EveryLine,
    status: int,
    level: str,
) -> None:
    """Deploy, poll and alert at each log level while Cerebras echoes the key back."""
    from rollout_monitor_local.server import serve
    from tests.integration.conftest import make_world

    echo = Echoing(simulator.app, status)
    with serve(echo) as url:
        world = make_world(simulator, url, clock, monkeypatch, {"LogLevel": level})
        # The level the template hands the function, applied as Lambda applies it at start.
        configured = os.environ["POWERTOOLS_LOG_LEVEL"]
        assert configured == level
        for name in ("", "rollout_monitor", "rollout-monitor"):
            logging.getLogger(name).setLevel(configured)
        deployment_id = world.deploy("stalls")
        request = {"endpoint_id": "my-org-qwen-3-32b"}
        request["model"] = "orgs/my-org/models/qwen-3-32b/versions/1"
        echo.methods = {"GET"}  # the poller's status reads and the deploy's endpoint check
        world.clock.advance(40)
        world.poll()
        world.put(request)
        world.router.settle()
        echo.methods = {"POST"}  # deployModel itself
        world.put(request)
        world.router.settle()
        echo.methods = set()
        world.clock.advance(10)  # the next poll interval
        world.poll()  # in_progress
        world.clock.advance(3600)  # past its stall deadline: a stall alert, from the table
        world.poll()
        world.router.settle()

    calls = {call.split()[0] for call in echo.echoed}
    assert calls == {"GET", "POST"}, echo.echoed  # the poller's reads and deployModel, echoed
    rejections = [e["detail"] for e in world.emitted("Deployment Rejected")]
    assert [r["status_code"] for r in rejections] == [status, status]
    assert all("[redacted]" in json.dumps(r["cerebras_detail"]) for r in rejections)
    alerts = world.alerts()
    kinds = sorted(a.document["kind"] for a in alerts)
    assert kinds == ["deploy_rejected", "deploy_rejected", "rollout_stalled"]
    assert world.poller.store.deployments.get(deployment_id) is not None
    if level == "DEBUG":
        assert logging.DEBUG in every_line.levels  # the capture does see the chatty level
    everything = {
        "logs": "\n".join(every_line.lines),
        "events": json.dumps(world.emitted()),
        "alerts": json.dumps([[a.subject, a.text, a.document, a.attributes] for a in alerts]),
        "items": json.dumps(world.table_items()),
    }
    for where, text in everything.items():
        assert DEFAULT_KEY not in text, where
