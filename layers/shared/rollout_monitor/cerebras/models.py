"""The Management API's shapes, as published (``shared/cerebras-api``).

Every model keeps unknown fields (``extra="allow"``) so a field the API adds is carried, not
rejected; fields the reference describes without publishing are optional.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from rollout_monitor.cerebras.status import ObservedStatus, normalise_status


class ApiModel(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    def to_json_dict(self) -> dict[str, Any]:
        """The payload as the API sent it: unset optional fields stay absent."""
        return self.model_dump(mode="json", exclude_unset=True)


# --- deployModel -------------------------------------------------------------------------------


class DeployModelRequest(ApiModel):
    model: str


class DeploymentMetadata(ApiModel):
    deployment_id: str
    endpoint_id: str
    org_name: str
    model_arch_id: str
    version_id: int | str
    created: int
    updated: int
    rollout_status: str
    # Described by the reference, absent from its example: read when present, never required.
    requested_version: str | None = None
    max_unavailable: int | None = None
    updated_replicas: int | None = None
    total_replicas: int | None = None
    error_message: str | None = None

    @property
    def status(self) -> ObservedStatus:
        return normalise_status(self.rollout_status)


class DeployOperation(ApiModel):
    """The operation ``deployModel`` returns; ``name`` is the deployment UUID."""

    name: str
    done: bool
    response: DeploymentMetadata


# --- endpoints ---------------------------------------------------------------------------------


class DeployedModel(ApiModel):
    id: str
    model: str
    version_alias: str | None = None
    created: int
    state: str
    # Not published for this shape; read when a server sends them.
    updated_replicas: int | None = None
    total_replicas: int | None = None
    error_message: str | None = None

    @property
    def status(self) -> ObservedStatus:
        return normalise_status(self.state)


class EndpointStatus(ApiModel):
    name: str
    model_arch_id: str
    deployed_models: list[DeployedModel]
    managing_org_name: str
    created: int
    updated: int

    def find(self, deployment_id: str) -> DeployedModel | None:
        return next((m for m in self.deployed_models if m.id == deployment_id), None)


class EndpointSummary(ApiModel):
    endpoint_id: str
    model_arch_id: str
    created: int
    updated: int
    org_name: str


class EndpointList(ApiModel):
    endpoints: list[EndpointSummary]


# --- model versions ----------------------------------------------------------------------------


class ModelVersion(ApiModel):
    customer_s3_uri: str
    version_aliases: list[str]
    sync_status: str
    system_fingerprint_suffix: str | None = None


class ModelVersionOperation(ApiModel):
    name: str
    done: bool
    response: ModelVersion


class ModelVersionList(ApiModel):
    model_versions: list[ModelVersionOperation]


class ModelArchitectures(ApiModel):
    model_architectures: list[str]


class UploadModel(ApiModel):
    weight_uri: str
    version_aliases: list[str] | None = None
    system_fingerprint_suffix: str | None = None


class UploadModelRequest(ApiModel):
    model_arch_id: str
    model: UploadModel


class UpdateAliasesRequest(ApiModel):
    version_aliases: list[str]


class UpdateAliasesResponse(ApiModel):
    name: str
    version_aliases: list[str]


class DeleteVersionResponse(ApiModel):
    """The schema says ``{message}``, the example ``{name, deleted}``: both are accepted."""

    message: str | None = None
    name: str | None = None
    deleted: bool | None = None


# --- errors ------------------------------------------------------------------------------------


class ValidationErrorItem(ApiModel):
    loc: list[str | int]
    msg: str
    type: str


class ValidationErrorBody(ApiModel):
    detail: list[ValidationErrorItem]
