"""How ``rollout-monitor`` shows a stack: plain columns for scripts and CI logs, a live board
on a terminal. What is shown comes from :mod:`.shapes`, as ``--json`` prints it."""

from __future__ import annotations

import time
from collections.abc import Sequence

from rich import box
from rich.table import Table
from rich.text import Text

from rollout_monitor.formatting import MAX_ERROR_MESSAGE, clean
from rollout_monitor_local.control.shapes import DeploymentHistory, Outcome, Rollout

NARROW = 100  # columns below which the board drops the deployment id
NARROWER = 70  # ... and the version
ID_CHARS = 12  # a deployment id's last characters (a UUID's random node): enough to tell apart


def clock(at: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(at))


def plain(text: str | None, default: str = "") -> str:
    """Text from the table (anyone's reason, Cerebras's error) as one line with no control
    characters: a terminal would obey an escape sequence in it."""
    return clean(text, MAX_ERROR_MESSAGE) or default


def span(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def replicas(rollout: Rollout) -> str:
    if rollout.total_replicas is None:
        return "-"
    return f"{rollout.updated_replicas or 0}/{rollout.total_replicas}"


def version(model: str | None) -> str:
    return "-" if model is None else model.rsplit("/", 1)[-1]


def rollout_rows(rollouts: Sequence[Rollout]) -> list[list[str]]:
    return [
        [
            r.endpoint_id,
            r.deployment_id[-ID_CHARS:],
            version(r.model),
            r.status,
            replicas(r),
            span(r.elapsed_seconds),
            "STALLED" if r.stalled else "",
        ]
        for r in rollouts
    ]


LEAST_WIDTHS = [12, 12, 7, len("not_started STALLED"), 8, 7]  # the board's columns, at least
ROLLOUT_COLUMNS = ["ENDPOINT", "DEPLOYMENT", "VERSION", "STATUS", "REPLICAS", "ELAPSED", ""]
OUTCOME_COLUMNS = ["ENDPOINT", "LAST OUTCOME", "VERSION", "DEPLOYMENT", "AT (UTC)"]


def outcome_rows(outcomes: Sequence[Outcome]) -> list[list[str]]:
    return [
        [
            o.endpoint_id,
            o.outcome,
            version(o.model),
            o.deployment_id[-ID_CHARS:],
            clock(o.observed_at),
        ]
        for o in outcomes
    ]


def columns(header: list[str], rows: list[list[str]]) -> list[str]:
    """Plain, aligned columns: one line per row, greppable."""
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows, strict=True)]
    return [
        "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in (header, *rows)
    ]


def board(rollouts: Sequence[Rollout], title: str, width: int) -> Table:
    """The live board: every rollout in flight; a narrow terminal loses the deployment column
    first, then the version, never the status."""
    keep = [True, width >= NARROW, width >= NARROWER, True, True, True]
    table = Table(title=title, box=box.SIMPLE_HEAD, expand=True, title_justify="left")
    for name, least, shown in zip(ROLLOUT_COLUMNS, LEAST_WIDTHS, keep, strict=False):
        if shown:
            table.add_column(name, no_wrap=True, overflow="ellipsis", min_width=least)
    for row, rollout in zip(rollout_rows(rollouts), rollouts, strict=True):
        status = f"{row[3]} STALLED" if rollout.stalled else row[3]
        cells = [c for c, shown in zip([*row[:3], status, *row[4:6]], keep, strict=True) if shown]
        # Text, not markup: a status Cerebras sends is kept verbatim, brackets and all.
        table.add_row(*map(Text, cells), style="bold red" if rollout.stalled else None)
    if not rollouts:
        table.add_row("nothing in flight")
    return table


def history_lines(deployments: Sequence[DeploymentHistory]) -> list[str]:
    lines: list[str] = []
    for item in deployments:
        r = item.rollout
        lines.append(
            f"{r.deployment_id}  {r.endpoint_id}  {r.model}  requested by "
            f"{plain(r.requested_by, 'unknown')} ({r.request_id}): "
            f"{plain(r.reason, 'no reason given')}"
        )
        for t in item.transitions:
            moved = f"{t.previous_status} -> {t.status}" if t.previous_status else t.status
            count = (
                ""
                if t.total_replicas is None
                else f"  {t.updated_replicas or 0}/{t.total_replicas}"
            )
            error = f"  {plain(t.error_message)}" if t.error_message else ""
            lines.append(f"  {clock(t.observed_at)}  #{t.sequence}  {moved}{count}{error}")
    return lines
