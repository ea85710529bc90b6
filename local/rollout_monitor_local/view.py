"""What `rollout-monitor local` shows: a live table on a terminal, plain lines elsewhere."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol, TextIO

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from rollout_monitor_local.story import Row, Verdict

if TYPE_CHECKING:  # the stack's heavy imports wait until the first frame is shown
    from rollout_monitor_local.devstack import DevStack

STATUS_STYLE = {
    "done": "bold green",
    "error": "bold red",
    "rolled_back": "bold red",
    "rolling_back": "yellow",
    "cancelled": "magenta",
    "rejected": "red",
    "in_progress": "cyan",
    "not_started": "dim",
}
SEVERITY_STYLE = {"critical": "bold red", "warning": "yellow", "info": "green"}


def progress_bar(updated: int | None, total: int | None, width: int = 12) -> str:
    if not total:
        return "." * width
    filled = round(width * min(max(updated or 0, 0), total) / total)
    return "#" * filled + "." * (width - filled) + f" {updated or 0}/{total}"


def _elapsed(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s"


class View(Protocol):
    def __enter__(self) -> View: ...
    def __exit__(self, *exc: object) -> None: ...
    def update(self, stack: DevStack, lines: Sequence[str]) -> None: ...
    def say(self, text: str) -> None: ...


class PlainView:
    """One line per thing that happened, for logs, CI and pipes."""

    def __init__(self, out: TextIO | None = None) -> None:
        self._out = out or sys.stdout
        self._started = time.monotonic()

    def __enter__(self) -> PlainView:
        return self

    def __exit__(self, *exc: object) -> None:
        self._out.flush()

    def update(self, stack: DevStack, lines: Sequence[str]) -> None:
        for line in lines:
            self.say(line)

    def say(self, text: str) -> None:
        print(f"[{time.monotonic() - self._started:6.1f}s] {text}", file=self._out, flush=True)


COLUMNS = ("request", "endpoint", "version", "status", "replicas", "elapsed")
# Natural widths; `endpoint` takes what is left. When the terminal is narrow, the replica bar
# shrinks first, then columns are dropped in DROP_ORDER; status is never cut or dropped.
WIDTHS = {"request": 10, "endpoint": 27, "version": 12, "status": 21, "elapsed": 7}
BAR_WIDE, BAR_NARROW = 12, 4
DROP_ORDER = ("version", "elapsed", "replicas")
NOTES_SHOWN = 2


def layout(width: int) -> tuple[list[str], int]:
    """The columns that fit ``width`` characters, and the replica bar's width."""
    columns = list(COLUMNS)
    bar = BAR_WIDE

    def needed() -> int:
        widths = WIDTHS | {"replicas": bar + 5}
        return sum(widths[c] for c in columns) + 3 * len(columns) + 1

    if needed() > width:
        bar = BAR_NARROW
    for column in DROP_ORDER:
        if needed() <= width:
            break
        columns.remove(column)
    return columns, bar


class LiveView:
    """A table of deployments, redrawn in place, with the alerts below it; fits the terminal."""

    def __init__(self, console: Console | None = None) -> None:
        self._console = console or Console()
        self._live = Live(
            console=self._console,
            refresh_per_second=8,
            transient=False,
            vertical_overflow="crop",
        )
        self._notes: list[str] = []
        self._stack: DevStack | None = None

    def __enter__(self) -> LiveView:
        self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._live.__exit__(None, None, None)

    def say(self, text: str) -> None:
        self._notes.append(text)
        self._live.update(self.render(self._stack), refresh=True)  # shown at once

    def update(self, stack: DevStack, lines: Sequence[str]) -> None:
        self._stack = stack
        self._live.update(self.render(stack), refresh=True)

    def render(self, stack: DevStack | None) -> Any:
        width, height = self._console.size
        notes = [
            Text(n, style="dim", no_wrap=True, overflow="ellipsis")
            for n in self._notes[-NOTES_SHOWN:]
        ]
        if stack is None:
            return Group(Text("Cerebras rollouts (local stack)", style="bold"), *notes)
        table = self._table(stack, width)
        room = height - (len(stack.seen.rows) + 5) - 1 - len(notes) - 1
        alerts = [
            Text.assemble(
                (alert["severity"].upper().ljust(8), SEVERITY_STYLE.get(alert["severity"], "")),
                " ",
                alert["subject"],
                no_wrap=True,
                overflow="ellipsis",
            )
            for alert in stack.seen.alerts[-max(1, min(8, room)) :]
        ]
        heading = Text(
            f"Alerts ({len(stack.seen.alerts)}), read back from the SNS topic", style="bold"
        )
        shown = alerts or [Text("none yet", style="dim")]
        return Group(table, heading, *shown, *notes)

    def _table(self, stack: DevStack, width: int) -> Table:
        columns, bar = layout(width)
        table = Table(title="Cerebras rollouts (local stack)", title_justify="left", width=width)
        for column in columns:
            fixed = None if column == "endpoint" else WIDTHS.get(column, bar + 5)
            table.add_column(
                column,
                no_wrap=True,
                overflow="ellipsis",
                width=fixed,
                min_width=fixed,
            )
        for row in stack.seen.rows.values():
            cells = self._cells(stack, row, bar)
            table.add_row(*(cells[c] for c in columns))
        return table

    @staticmethod
    def _cells(stack: DevStack, row: Row, bar: int) -> dict[str, Text | str]:
        status = row.status + (" (stalled)" if row.stalled else "")
        style = "bold yellow" if row.stalled else STATUS_STYLE.get(row.status, "")
        replicas = (
            progress_bar(row.updated_replicas, row.total_replicas, bar) if row.deployment_id else ""
        )
        return {
            "request": row.label,
            "endpoint": row.endpoint_id,
            "version": row.version,
            "status": Text(status, style=style),
            "replicas": replicas,
            "elapsed": _elapsed(stack.elapsed(row)) if row.submitted_at else "",
        }


def summary(verdict: Verdict, seconds: float) -> list[str]:
    """What the run did, counted from everything it saw (requests from other shells too)."""
    counts = ", ".join(f"{n} {name}" for name, n in verdict.counts.items())
    lines = [f"Summary: {counts}.", f"Took {seconds:.1f}s."]
    if verdict.interrupted:
        lines.append("Interrupted (Ctrl-C).")
    if verdict.scripted == 0:
        if not verdict.ok:
            lines.append("UNEXPECTED:")
            lines += [f"  - {p}" for p in verdict.problems]
        return lines
    if verdict.ok:
        lines.append(
            f"The story's {verdict.scripted} requests played as scripted: every event and "
            "alert exactly once."
        )
    else:
        lines.append("UNEXPECTED:")
        lines += [f"  - {p}" for p in verdict.problems]
    return lines
