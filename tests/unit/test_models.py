"""The published example payloads parse into the project's models unchanged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import BaseModel

from rollout_monitor.cerebras.models import (
    DeployModelRequest,
    DeployOperation,
    EndpointList,
    EndpointStatus,
    ModelVersionList,
    ModelVersionOperation,
)

EXAMPLES = Path(__file__).parent.parent / "data" / "cerebras"
MODEL_OF_EXAMPLE: dict[str, type[BaseModel]] = {
    "deploy-model-request.json": DeployModelRequest,
    "deploy-model-response.json": DeployOperation,
    "endpoint-status-response.json": EndpointStatus,
    "list-endpoints-response.json": EndpointList,
    "list-model-versions-response.json": ModelVersionList,
    "model-version-status-response.json": ModelVersionOperation,
}


def test_every_published_example_has_a_model() -> None:
    assert sorted(p.name for p in EXAMPLES.glob("*.json")) == sorted(MODEL_OF_EXAMPLE)


@pytest.mark.parametrize("name", sorted(MODEL_OF_EXAMPLE))
def test_example_round_trips_without_losing_a_field(name: str) -> None:
    original = json.loads((EXAMPLES / name).read_text())
    parsed = MODEL_OF_EXAMPLE[name].model_validate(original)
    assert parsed.model_dump(mode="json", exclude_unset=True) == original


def test_unknown_fields_are_kept_and_optional_metadata_read() -> None:
    payload = json.loads((EXAMPLES / "deploy-model-response.json").read_text())
    payload["response"] |= {
        "updated_replicas": 2,
        "total_replicas": 4,
        "error_message": "boom",
        "max_unavailable": 1,
        "requested_version": "orgs/my-org/models/llama-3.3-70b/versions/prod",
        "brand_new_field": {"nested": [1, 2]},
    }
    payload["surprise"] = True
    operation = DeployOperation.model_validate(payload)
    assert operation.response.updated_replicas == 2
    assert operation.response.total_replicas == 4
    assert operation.response.error_message == "boom"
    assert operation.response.requested_version.endswith("/prod")  # type: ignore[union-attr]
    assert operation.model_dump(mode="json", exclude_unset=True) == payload


def test_metadata_without_optional_fields_reads_them_as_none() -> None:
    payload = json.loads((EXAMPLES / "deploy-model-response.json").read_text())
    metadata = DeployOperation.model_validate(payload).response
    assert (metadata.updated_replicas, metadata.total_replicas, metadata.error_message) == (
        None,
        None,
        None,
    )
    assert metadata.status.value == "not_started"
