"""`rollout-monitor watch`'s board: what a narrow terminal keeps, and a stall stands out."""

from __future__ import annotations

from rich.console import Console

from rollout_monitor_local.control import render
from rollout_monitor_local.control.shapes import Rollout

NOW = 1_800_000_000.0


def _rollout(endpoint: str, status: str, *, stalled: bool = False) -> Rollout:
    return Rollout(
        deployment_id=f"550e8400-e29b-41d4-a716-{endpoint[-1]:0>12}",
        endpoint_id=endpoint,
        model="orgs/my-org/models/llama-3.3-70b/versions/7",
        version_id=7,
        status=status,
        updated_replicas=1,
        total_replicas=4,
        stalled=stalled,
        submitted_at=NOW - 125,
        elapsed_seconds=125.0,
        ended_at=None,
        lost_reason=None,
        request_id="r",
        requested_by="ci",
        reason=None,
    )


def _screen(width: int) -> str:
    console = Console(width=width, record=True, color_system=None)
    rollouts = [
        _rollout("endpoint-a", "in_progress"),
        _rollout("endpoint-b", "not_started", stalled=True),
    ]
    console.print(render.board(rollouts, "rollouts in flight: 2", console.width))
    return console.export_text()


def test_a_wide_board_shows_every_column_and_the_stall() -> None:
    screen = _screen(120)
    for heading in ("ENDPOINT", "DEPLOYMENT", "VERSION", "STATUS", "REPLICAS", "ELAPSED"):
        assert heading in screen
    assert "not_started STALLED" in screen
    assert "2m05s" in screen
    assert "00000000000b" in screen  # the id's last characters tell rollouts apart


def test_a_narrow_board_drops_the_id_then_the_version_never_the_status() -> None:
    at_80, at_60 = _screen(80), _screen(60)
    assert "DEPLOYMENT" not in at_80
    assert "VERSION" in at_80
    assert "VERSION" not in at_60
    for screen in (at_80, at_60):
        assert "in_progress" in screen
        assert "STALLED" in screen
        assert max(len(line) for line in screen.splitlines()) <= 80


def test_a_status_in_brackets_is_shown_as_sent_not_read_as_markup() -> None:
    console = Console(width=120, record=True, color_system=None)
    rollouts = [_rollout("endpoint-a", "[/paused]"), _rollout("endpoint-b", "[red]resuming")]
    console.print(render.board(rollouts, "rollouts in flight: 2", console.width))
    screen = console.export_text()
    assert "[/paused]" in screen
    assert "[red]resuming" in screen
