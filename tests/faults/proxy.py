"""A proxy in front of the simulator that lets Cerebras act, then fails the answer.

What a flaky network or gateway does to a call that changes something: the deployment is
made, but the caller hears a 502/503/504, nothing in time, a connection reset after sending,
or a body it cannot read. Reads can also be failed (503) until :meth:`FaultProxy.heal`.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

Scope = dict[str, Any]


class After(StrEnum):
    """How the answer is lost after the simulator acted."""

    BAD_GATEWAY = "502"
    UNAVAILABLE = "503"
    GATEWAY_TIMEOUT = "504"
    HANG = "hang"  # no answer before the client's timeout
    RESET = "reset"  # the connection drops mid-answer
    MALFORMED = "malformed"  # 200 with a body that is not the operation


@dataclass
class FaultProxy:
    app: Any
    hang_seconds: float = 3.0
    planned: list[tuple[str, After]] = field(default_factory=list)
    fail_reads: bool = False
    fail_reads_after_fault: bool = False
    acted: int = 0  # requests the simulator served behind a failed answer

    def fail_after(self, path_contains: str, kind: After) -> None:
        """The next request whose path contains ``path_contains`` acts, then fails ``kind``."""
        self.planned.append((path_contains, kind))

    def heal(self) -> None:
        self.fail_reads = False

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        if self.fail_reads and scope["method"] == "GET":
            await _json(send, 503, {"detail": "service unavailable (proxy)"})
            return
        kind = self._take(path)
        if kind is None:
            await self.app(scope, receive, send)
            return
        await self.app(scope, receive, _discard)  # Cerebras acts; its answer is lost
        self.acted += 1
        self.fail_reads = self.fail_reads or self.fail_reads_after_fault
        await _lose_answer(kind, send, self.hang_seconds)

    def _take(self, path: str) -> After | None:
        for index, (needle, kind) in enumerate(self.planned):
            if needle in path:
                del self.planned[index]
                return kind
        return None


async def _discard(message: dict[str, Any]) -> None:
    return None


async def _lose_answer(kind: After, send: Any, hang_seconds: float) -> None:
    if kind in {After.BAD_GATEWAY, After.UNAVAILABLE, After.GATEWAY_TIMEOUT}:
        await _json(send, int(kind.value), {"detail": f"gateway error {kind.value} (proxy)"})
    elif kind == After.HANG:
        await asyncio.sleep(hang_seconds)
        await _json(send, 504, {"detail": "too late (proxy)"})
    elif kind == After.MALFORMED:
        await _raw(send, 200, b'{"name": "550e8400-trunc')
    else:  # RESET: headers promise a body that never comes; the connection is dropped
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"500")],
            }
        )
        await send({"type": "http.response.body", "body": b'{"name": "550e', "more_body": True})
        raise ConnectionResetError("proxy dropped the connection after sending part of it")


async def _json(send: Any, status: int, body: dict[str, Any]) -> None:
    await _raw(send, status, json.dumps(body).encode())


async def _raw(send: Any, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})
