"""The inbound event: ``Deploy Requested``, from CI/CD, the operator CLI or a person."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints

from rollout_monitor.cerebras.names import ModelVersionName, check_identifier
from rollout_monitor.events.base import Labels, Team

MAX_REQUEST_ID = 128
REQUEST_ID_PATTERN = r"^[A-Za-z0-9._:/@+=-]+$"
MAX_REQUESTED_BY = 256
MAX_REASON = 1024


def _endpoint_id(value: str) -> str:
    return check_identifier("endpoint_id", value)


def _model(value: str) -> str:
    return str(ModelVersionName.parse(value))


class DeployRequested(BaseModel):
    """``detail`` of ``Deploy Requested``. Unknown fields are ignored."""

    # Strict: "yes" or 1 is not a boolean, 2 is not a string; what is not exactly right is
    # rejected with its reason, never coerced into a deploy.
    model_config = ConfigDict(extra="ignore", frozen=True, str_strip_whitespace=True, strict=True)

    endpoint_id: Annotated[str, AfterValidator(_endpoint_id)]
    model: Annotated[str, AfterValidator(_model)]
    request_id: (
        Annotated[
            str,
            StringConstraints(min_length=1, max_length=MAX_REQUEST_ID, pattern=REQUEST_ID_PATTERN),
        ]
        | None
    ) = None
    requested_by: Annotated[str, StringConstraints(max_length=MAX_REQUESTED_BY)] | None = None
    reason: Annotated[str, StringConstraints(max_length=MAX_REASON)] | None = None
    force: bool = False
    team: Team | None = None  # routes the deployment's events and alerts (detail.team)
    labels: Labels = {}  # free key=value routing (detail.labels)

    @property
    def version(self) -> ModelVersionName:
        return ModelVersionName.parse(self.model)
