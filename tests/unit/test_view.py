"""The live view fits the terminal: every row shown, status never cut, columns dropped in order."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

import pytest
from rich.console import Console

from rollout_monitor_local.story import Observed, Row, Verdict
from rollout_monitor_local.view import DROP_ORDER, LiveView, layout, summary

ROWS = [
    Row("demo-succeeds", "succeeds", "my-org-llama-3.3-70b", "succeeds", "done", 4, 4, 1, 80),
    Row("demo-errors", "errors", "my-org-qwen-3-32b", "errors", "error", 1, 4, 0, 40),
    Row(
        "demo-rolls-back",
        "rolls-back",
        "my-org-llama-3.3-70b-canary",
        "rolls-back",
        "rolled_back",
        0,
        4,
        0,
        60,
    ),
    Row(
        "demo-stalls",
        "stalls",
        "my-org-qwen-3-32b-canary",
        "stalls",
        "in_progress",
        1,
        4,
        0,
        150,
        stalled=True,
    ),
    Row("demo-invalid", "invalid", "../etc/passwd", "latest", "rejected"),
    Row(
        "from-another-shell-with-a-long-id",
        "from-another-shell-with-a-long-id",
        "my-org-llama-3.3-70b",
        "rolls-back",
        "rolling_back",
        2,
        4,
        0,
        30,
    ),
]
for index, row in enumerate(ROWS[:4] + ROWS[5:]):
    row.deployment_id = f"d-{index}"
ALERTS = [
    {"severity": "critical", "subject": "[CRITICAL] error: my-org-qwen-3-32b version 2"},
    {
        "severity": "critical",
        "subject": "[CRITICAL] rolled_back: my-org-llama-3.3-70b-canary version 3",
    },
    {
        "severity": "warning",
        "subject": "[WARNING] stalled 2m 00s in in_progress: my-org-qwen-3-32b-canary version 5",
    },
    {"severity": "warning", "subject": "[WARNING] deploy rejected (invalid_request): ../etc"},
]


@dataclass
class FakeStack:
    seen: Observed = field(default_factory=Observed)

    def elapsed(self, row: Row) -> float:
        return 84.0


def frame(width: int, height: int) -> list[str]:
    console = Console(width=width, height=height, record=True, file=io.StringIO())
    view = LiveView(console)
    stack = FakeStack()
    stack.seen.rows = {r.key: r for r in ROWS}
    stack.seen.alerts = list(ALERTS)
    view._notes = ["stack 'rollout-monitor' created from template.yaml in moto at http://..."]
    console.print(view.render(stack))  # type: ignore[arg-type]
    return console.export_text().splitlines()


@pytest.mark.parametrize(("width", "height"), [(80, 24), (120, 32)])
def test_every_row_and_status_fits_the_terminal(width: int, height: int) -> None:
    lines = frame(width, height)
    assert len(lines) <= height
    assert all(len(line) <= width for line in lines)
    text = "\n".join(lines)
    for row in ROWS:
        status = row.status + (" (stalled)" if row.stalled else "")
        (line,) = [line for line in lines if line.startswith("│ " + row.label[:8])]
        assert f"│ {status} " in line, text
        assert row.endpoint_id in line, text  # endpoints stay whole at 80 columns and more
    assert "[CRITICAL] error: my-org-qwen-3-32b version 2" in text


def test_at_80_columns_version_and_elapsed_go_first_and_endpoints_stay_whole() -> None:
    columns, bar = layout(80)
    assert columns == ["request", "endpoint", "status", "replicas"]
    assert bar == 4
    text = "\n".join(frame(80, 24))
    assert "elapsed" not in text
    assert "CRITICAL [CRITICAL] error: my-org-qwen-3-32b version 2" in text


def test_wide_terminals_show_every_column_and_the_long_bar() -> None:
    assert layout(120) == (["request", "endpoint", "version", "status", "replicas", "elapsed"], 12)


def test_columns_drop_in_the_stated_order() -> None:
    dropped = []
    for width in range(140, 40, -1):
        columns, _ = layout(width)
        for name in DROP_ORDER:
            if name not in columns and name not in dropped:
                dropped.append(name)
    assert tuple(dropped) == DROP_ORDER
    assert "status" in layout(40)[0]


def test_the_first_frame_needs_no_stack() -> None:
    console = Console(width=80, height=24, record=True, file=io.StringIO())
    view = LiveView(console)
    view._notes = ["starting the local stack ..."]
    console.print(view.render(None))
    assert "starting the local stack" in console.export_text()


def test_the_summary_counts_what_was_seen_even_without_a_story() -> None:
    verdict = Verdict(True, [], {"deployments": 3, "alerts": 3}, scripted=0, interrupted=True)
    lines = summary(verdict, 12.0)
    assert lines[:2] == ["Summary: 3 deployments, 3 alerts.", "Took 12.0s."]
    assert "Interrupted (Ctrl-C)." in lines
    assert not any("played as scripted" in line for line in lines)


def test_the_summary_says_how_many_scripted_requests_played() -> None:
    lines = summary(Verdict(True, [], {"deployments": 4}, scripted=5), 1.0)
    assert lines[-1].startswith("The story's 5 requests played as scripted")


def test_a_failed_story_lists_its_problems() -> None:
    lines: list[Any] = summary(Verdict(False, ["errors: expected error"], {}, scripted=1), 1.0)
    assert lines[2:] == ["UNEXPECTED:", "  - errors: expected error"]
