"""Status strings from the API map onto the seven rollout statuses."""

from __future__ import annotations

import pytest

from rollout_monitor.cerebras.status import RolloutStatus, normalise_status

SEVEN = ["not_started", "in_progress", "rolling_back", "rolled_back", "done", "error", "cancelled"]


@pytest.mark.parametrize("raw", SEVEN)
def test_each_of_the_seven_statuses_maps_to_itself(raw: str) -> None:
    observed = normalise_status(raw)
    assert (observed.value, observed.known) == (raw, True)


@pytest.mark.parametrize("raw", ["IN_PROGRESS", "Rolled_Back", " done "])
def test_letter_case_and_padding_do_not_matter(raw: str) -> None:
    assert normalise_status(raw).value == raw.strip().lower()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("complete", "done"), ("Completed", "done"), ("SUCCEEDED", "done"), ("failed", "error")],
)
def test_synonyms(raw: str, expected: str) -> None:
    observed = normalise_status(raw)
    assert (observed.value, observed.known) == (expected, True)


def test_unknown_value_is_kept_verbatim_and_in_flight() -> None:
    observed = normalise_status("Draining-Replicas")
    assert observed.value == "Draining-Replicas"
    assert observed.known is False
    assert observed.terminal is False


def test_terminal_statuses() -> None:
    assert {s.value for s in RolloutStatus if s.terminal} == {
        "done",
        "rolled_back",
        "error",
        "cancelled",
    }
    assert [normalise_status(s).terminal for s in SEVEN] == [
        False,
        False,
        False,
        True,
        True,
        True,
        True,
    ]
