"""Settings refuse what would break the functions later: numbers that are not finite and
positive deadlines (a NaN stall deadline was written into an event no cycle could read back)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from rollout_monitor.config import PollerSettings


@pytest.fixture(autouse=True)
def stack(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TABLE_NAME", "t")
    monkeypatch.setenv("EVENT_BUS_NAME", "b")


@pytest.mark.parametrize(
    ("name", "value", "field"),
    [
        ("STALL_AFTER_SECONDS_BY_STATUS", '{"in_progress": NaN}', "stall_after_seconds_by_status"),
        ("STALL_AFTER_SECONDS_BY_STATUS", '{"in_progress": -Infinity}', "in_progress"),
        ("STALL_AFTER_SECONDS_BY_STATUS", '{"not_started": 0}', "not_started"),
        ("STALL_AFTER_SECONDS", "inf", "stall_after_seconds"),
        ("LOST_AFTER_SECONDS", "nan", "lost_after_seconds"),
    ],
)
def test_a_deadline_that_is_not_a_finite_positive_number_is_refused_by_name(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, field: str
) -> None:
    monkeypatch.setenv(name, value)

    with pytest.raises(ValidationError, match=field):
        PollerSettings()


def test_finite_positive_deadlines_are_read() -> None:
    settings = PollerSettings(stall_after_seconds_by_status={"not_started": 600.5})

    assert (settings.stall_after_seconds_by_status, settings.stall_after_seconds) == (
        {"not_started": 600.5},
        1800.0,
    )
