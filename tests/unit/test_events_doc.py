"""docs/events.md shows events the code really emits."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from rollout_monitor.events import (
    OUTBOUND_DETAILS,
    CerebrasReachable,
    CerebrasUnreachable,
    DeploymentDiscovered,
    DeploymentRejected,
    DeploymentSubmitted,
    ModelVersionSyncChanged,
    OutboundDetail,
    RolloutLost,
    RolloutStalled,
    RolloutStatusChanged,
)

DOC = (Path(__file__).resolve().parents[2] / "docs" / "events.md").read_text()
EXAMPLES = dict(re.findall(r"```json ([a-z-]+)\n(.*?)```", DOC, flags=re.DOTALL))


@pytest.mark.parametrize(
    ("name", "model"),
    [
        ("deployment-submitted", DeploymentSubmitted),
        ("deployment-discovered", DeploymentDiscovered),
        ("deployment-rejected", DeploymentRejected),
        ("rollout-status-changed", RolloutStatusChanged),
        ("rollout-stalled", RolloutStalled),
        ("rollout-lost", RolloutLost),
        ("cerebras-unreachable", CerebrasUnreachable),
        ("cerebras-reachable", CerebrasReachable),
        ("model-version-sync-changed", ModelVersionSyncChanged),
    ],
)
def test_documented_example_is_a_valid_event(name: str, model: type[OutboundDetail]) -> None:
    model.model_validate_json(EXAMPLES[name])
    assert set(json.loads(EXAMPLES[name])) == set(model.model_fields)  # every field shown
    assert f"## {model.detail_type.value}" in DOC


def test_every_outbound_event_is_documented() -> None:
    assert len(EXAMPLES) == len(OUTBOUND_DETAILS)
