"""What `rollout-monitor local` shows: a live table on a terminal, plain lines elsewhere."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import Any, Protocol, TextIO

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from rollout_monitor_local.devstack import DevStack, Row, Verdict

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


class LiveView:
    """A table of deployments, redrawn in place, with the alerts below it."""

    def __init__(self, console: Console | None = None) -> None:
        self._console = console or Console()
        self._live = Live(console=self._console, refresh_per_second=8, transient=False)
        self._notes: list[str] = []

    def __enter__(self) -> LiveView:
        self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._live.__exit__(None, None, None)

    def say(self, text: str) -> None:
        self._notes.append(text)

    def update(self, stack: DevStack, lines: Sequence[str]) -> None:
        self._live.update(self._render(stack), refresh=True)

    def _render(self, stack: DevStack) -> Any:
        table = Table(title="Cerebras rollouts (local stack)", expand=True, title_justify="left")
        for column in ("request", "endpoint", "version", "status", "replicas", "elapsed"):
            table.add_column(column, no_wrap=True)
        for row in stack.seen.rows.values():
            table.add_row(*self._cells(stack, row))
        alerts = Table.grid(padding=(0, 1))
        alerts.add_column(no_wrap=True)
        alerts.add_column()
        for alert in stack.seen.alerts[-8:]:
            severity = alert["severity"]
            alerts.add_row(
                Text(severity.upper(), style=SEVERITY_STYLE.get(severity, "")), alert["subject"]
            )
        heading = Text(
            f"Alerts ({len(stack.seen.alerts)}), read back from the SNS topic", style="bold"
        )
        notes = [Text(n, style="dim") for n in self._notes[-4:]]
        return Group(
            table, heading, alerts if stack.seen.alerts else Text("none yet", style="dim"), *notes
        )

    @staticmethod
    def _cells(stack: DevStack, row: Row) -> list[Text | str]:
        status = row.status + (" (stalled)" if row.stalled else "")
        style = "bold yellow" if row.stalled else STATUS_STYLE.get(row.status, "")
        replicas = (
            progress_bar(row.updated_replicas, row.total_replicas) if row.deployment_id else ""
        )
        return [
            row.label,
            row.endpoint_id[:40],
            row.version[:20],
            Text(status, style=style),
            replicas,
            _elapsed(stack.elapsed(row)) if row.submitted_at else "",
        ]


def summary(verdict: Verdict, seconds: float) -> list[str]:
    counts = ", ".join(f"{n} {name}" for name, n in verdict.counts.items())
    lines = [f"Summary: {counts}, in {seconds:.1f}s."]
    if verdict.ok:
        lines.append("The story played as scripted: every event and alert exactly once.")
    else:
        lines.append("UNEXPECTED:")
        lines += [f"  - {p}" for p in verdict.problems]
    return lines
