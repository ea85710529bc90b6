"""The latency benchmark's arithmetic: scripted changes, what announced them, percentiles."""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


def percentile(values: Sequence[float], pct: float) -> float:
    """The nearest-rank percentile: the smallest value with ``pct`` % of them at or below it."""
    if not values:
        raise ValueError("no values")
    if not 0 < pct <= 100:
        raise ValueError("pct must be in (0, 100]")
    ordered = sorted(values)
    return ordered[math.ceil(pct / 100 * len(ordered)) - 1]


@dataclass(frozen=True)
class ScriptedChange:
    """A rollout's status, as the simulator starts answering it at ``at`` (Unix seconds)."""

    deployment_id: str
    status: str
    at: float
    lasts: float  # seconds until the next change (inf for the last)


@dataclass(frozen=True)
class Announcement:
    """A ``Rollout Status Changed`` event, as PutEvents accepted it."""

    deployment_id: str
    status: str
    published_at: float
    observed_at: float  # the poller's clock once its cycle's status reads had returned


@dataclass(frozen=True)
class Detection:
    change: ScriptedChange
    announcement: Announcement | None

    @property
    def published_after(self) -> float:
        assert self.announcement is not None
        return self.announcement.published_at - self.change.at

    @property
    def observed_after(self) -> float:
        assert self.announcement is not None
        return self.announcement.observed_at - self.change.at


def scripted_changes(
    deployment_id: str, start: float, steps: Iterable[tuple[float, str]]
) -> list[ScriptedChange]:
    """The status changes of a rollout started at ``start`` whose steps are ``(at, status)``
    (seconds after ``start``); a step that keeps the status (replica progress) is none."""
    changes: list[tuple[float, str]] = []
    for at, status in steps:
        if not changes or status != changes[-1][1]:
            changes.append((start + at, status))
    ends = [at for at, _ in changes[2:]] + [math.inf]
    return [
        ScriptedChange(deployment_id, status, at, end - at)
        for (at, status), end in zip(changes[1:], ends, strict=True)
    ]


def detections(
    changes: Iterable[ScriptedChange], announcements: Iterable[Announcement]
) -> list[Detection]:
    """Each scripted change with the first announcement of its rollout's new status, if any
    (a status a rollout takes once; a phase the poller never saw is announced by none)."""
    first: dict[tuple[str, str], Announcement] = {}
    for announcement in sorted(announcements, key=lambda a: a.published_at):
        first.setdefault((announcement.deployment_id, announcement.status), announcement)
    return [Detection(c, first.get((c.deployment_id, c.status))) for c in changes]


def started_before(starts: Sequence[float], at: float) -> float | None:
    """The last of the sorted ``starts`` at or before ``at``."""
    index = bisect.bisect_right(starts, at)
    return starts[index - 1] if index else None
