"""The latency benchmark's arithmetic: percentiles, scripted changes and what announced them."""

from __future__ import annotations

import math

import pytest

from benchmarks.figures import (
    Announcement,
    ScriptedChange,
    detections,
    percentile,
    scripted_changes,
    started_before,
)


def test_percentile_is_the_nearest_rank() -> None:
    values = [float(n) for n in range(20, 0, -1)]  # unsorted on purpose
    assert percentile(values, 50) == 10.0
    assert percentile(values, 95) == 19.0
    assert percentile(values, 100) == 20.0
    assert percentile([7.5], 95) == 7.5
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)


def test_a_rollouts_changes_are_its_status_changes_not_its_replica_steps() -> None:
    steps = [(0, "not_started"), (20, "in_progress"), (40, "in_progress"), (60, "done")]
    changes = scripted_changes("d1", 1000.0, steps)
    assert [(c.status, c.at, c.lasts) for c in changes] == [
        ("in_progress", 1020.0, 40.0),
        ("done", 1060.0, math.inf),
    ]


def test_a_change_is_matched_to_the_first_announcement_of_its_status() -> None:
    changes = [
        ScriptedChange("d1", "in_progress", 20.0, 20.0),
        ScriptedChange("d1", "rolling_back", 40.0, 20.0),
        ScriptedChange("d1", "rolled_back", 60.0, math.inf),
    ]
    announced = [
        Announcement("d1", "rolled_back", published_at=71.0, observed_at=70.5),
        Announcement("d1", "in_progress", published_at=25.0, observed_at=24.0),
        Announcement("d1", "in_progress", published_at=35.0, observed_at=34.0),  # a duplicate
        Announcement("d2", "rolling_back", published_at=45.0, observed_at=44.0),  # another's
    ]
    found = detections(changes, announced)
    assert [d.announcement is not None for d in found] == [True, False, True]
    assert (found[0].observed_after, found[0].published_after) == (4.0, 5.0)
    assert found[2].observed_after == pytest.approx(10.5)


def test_the_cycle_that_read_a_change_is_the_last_one_started_before_its_read() -> None:
    starts = [10.0, 20.0, 30.0]
    assert started_before(starts, 25.5) == 20.0
    assert started_before(starts, 30.0) == 30.0
    assert started_before(starts, 9.0) is None
