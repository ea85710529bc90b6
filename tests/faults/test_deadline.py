"""The deploy client's total deadline holds, even against a server that trickles its answer."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import SecretStr

from rollout_monitor.cerebras.client import CerebrasClient, RetryPolicy
from rollout_monitor.cerebras.errors import CerebrasOutcomeUnknownError, CerebrasTimeoutError
from rollout_monitor_local.server import serve

DEADLINE = 2.5
MODEL = "orgs/my-org/models/llama-3.3-70b/versions/1"


async def trickle(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """200, then one byte every 50 ms for a minute: each read is quick, the whole is not."""
    if scope["type"] != "http":
        return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json"), (b"content-length", b"1200")],
        }
    )
    for _ in range(1200):
        await send({"type": "http.response.body", "body": b" ", "more_body": True})
        await asyncio.sleep(0.05)


@pytest.fixture
def client() -> Iterator[CerebrasClient]:
    with serve(trickle) as url:
        # httpx's own timeout (per read) is far longer than the call's deadline.
        yield CerebrasClient(
            SecretStr("k"),
            base_url=url,
            timeout=30,
            retry=RetryPolicy(max_attempts=5, initial_backoff=0.1, deadline=DEADLINE),
        )


def test_a_trickled_deploy_answer_is_cut_at_the_deadline(client: CerebrasClient) -> None:
    started = time.monotonic()
    with pytest.raises(CerebrasOutcomeUnknownError) as caught:
        client.deploy_model("my-org-llama-3.3-70b", MODEL)
    elapsed = time.monotonic() - started
    assert isinstance(caught.value.cause, CerebrasTimeoutError)
    assert DEADLINE <= elapsed <= DEADLINE * 1.1


def test_a_trickled_read_is_cut_at_the_deadline_retries_included(client: CerebrasClient) -> None:
    started = time.monotonic()
    with pytest.raises(CerebrasTimeoutError):
        client.get_endpoint("my-org-llama-3.3-70b")
    assert time.monotonic() - started <= DEADLINE * 1.1
