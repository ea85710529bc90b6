"""A fake PagerDuty Events API v2 on loopback (tests and the local stack).

It answers ``POST /v2/enqueue`` as PagerDuty documents it: 202 with ``status``, ``message``
and ``dedup_key`` for a well-formed event, 400 for one that is not; ``answers`` scripts the
next status codes (a 429, a 500) before it accepts again. It keeps every request it received
and the events it accepted, and the incidents they make: one per ``dedup_key``, open until a
``resolve``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

ACTIONS = ("trigger", "acknowledge", "resolve")
SEVERITIES = ("critical", "error", "warning", "info")


@dataclass
class FakePagerDuty:
    routing_key: str = "R0UT1NGKEY0123456789ABCDEFGHIJKL"
    answers: list[int] = field(default_factory=list)  # the next status codes, then 202
    received: list[dict[str, Any]] = field(default_factory=list)
    accepted: list[dict[str, Any]] = field(default_factory=list)
    open_incidents: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.app = Starlette(routes=[Route("/v2/enqueue", self._enqueue, methods=["POST"])])

    @property
    def url(self) -> str:
        return "/v2/enqueue"

    async def _enqueue(self, request: Request) -> JSONResponse:
        event = await request.json()
        self.received.append(event)
        if self.answers:
            status = self.answers.pop(0)
            return JSONResponse({"status": "unavailable", "message": "scripted"}, status)
        problem = _problem(event, self.routing_key)
        if problem:
            return JSONResponse({"status": "invalid event", "message": problem}, 400)
        self.accepted.append(event)
        key = event["dedup_key"]
        if event["event_action"] == "trigger":
            self.open_incidents.add(key)
        elif event["event_action"] == "resolve":
            self.open_incidents.discard(key)
        return JSONResponse(
            {"status": "success", "message": "Event processed", "dedup_key": key}, 202
        )


def _problem(event: Any, routing_key: str) -> str:
    """What PagerDuty would refuse in ``event``, or ""."""
    if not isinstance(event, dict):
        return "the event must be a JSON object"
    key = event.get("dedup_key")
    payload = event.get("payload")
    trigger = event.get("event_action") == "trigger"
    checks = [
        (event.get("routing_key") == routing_key, "invalid routing key"),
        (event.get("event_action") in ACTIONS, "event_action must be one of " + ", ".join(ACTIONS)),
        (isinstance(key, str) and 0 < len(key) <= 255, "dedup_key must be 1 to 255 characters"),
        (not trigger or isinstance(payload, dict), "payload is required for a trigger"),
    ]
    if trigger and isinstance(payload, dict):
        summary, severity = payload.get("summary"), payload.get("severity")
        checks += [
            (isinstance(payload.get("source"), str), "payload.source is required"),
            (isinstance(summary, str) and len(summary) <= 1024, "payload.summary: 1 to 1024"),
            (severity in SEVERITIES, "payload.severity must be one of " + ", ".join(SEVERITIES)),
        ]
    return next((problem for ok, problem in checks if not ok), "")
