"""What discovery reads and what it takes for a rollout in flight (discovery.py, pure)."""

from __future__ import annotations

import pytest

from rollout_monitor.cerebras.models import DeployedModel
from rollout_monitor.discovery import MAX_AGE_SECONDS, DiscoveryScope, _in_flight

NOW = 1_767_225_600.0


def test_include_and_exclude_patterns_decide_what_is_read() -> None:
    scope = DiscoveryScope.of("my-org, other", "my-org-*,other-*", "*-canary")
    assert scope.orgs == ("my-org", "other")
    assert scope.wants("my-org-llama")
    assert not scope.wants("my-org-llama-canary")
    assert not scope.wants("third-org-llama")
    assert DiscoveryScope.of("my-org", "", "").wants("anything")  # empty include: all


@pytest.mark.parametrize(
    ("state", "age", "adopted"),
    [
        ("in_progress", 60, True),
        ("not_started", 60, True),
        ("rolling_back", 60, True),
        ("complete", 60, False),  # the API's published value: done
        ("error", 60, False),
        ("Serving", 60, False),  # unknown: maybe a finished model's, never adopted
        ("in_progress", MAX_AGE_SECONDS + 1, False),  # older than any rollout
    ],
)
def test_only_a_known_recent_status_in_flight_is_adopted(
    state: str, age: float, adopted: bool
) -> None:
    model = DeployedModel(
        id="d-1", model="orgs/o/models/a/versions/1", created=int(NOW - age), state=state
    )
    assert _in_flight(model, NOW) is adopted
