"""Status strings from the API map onto the seven rollout statuses."""

from __future__ import annotations

import pytest

from rollout_monitor.cerebras.status import RolloutStatus, normalise_status
from rollout_monitor.records import DeploymentRecord

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


@pytest.mark.parametrize("raw", [*SEVEN, "Draining-Replicas", "done-ish"])
def test_a_record_is_terminal_exactly_when_its_observed_status_is(raw: str) -> None:
    observed = normalise_status(raw)
    record = DeploymentRecord(
        deployment_id="d-1",
        endpoint_id="e-1",
        org_name="o",
        model_arch_id="a",
        version_id=1,
        model="orgs/o/models/a/versions/1",
        request_id="r-1",
        submitted_at=0,
        last_progress_at=0,
        status=observed.value,
        status_known=observed.known,
    )

    assert (record.terminal, record.in_flight) == (observed.terminal, not observed.terminal)
