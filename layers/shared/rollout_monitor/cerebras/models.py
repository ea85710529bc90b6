"""The Management API's shapes, as published (``shared/cerebras-api``).

Every model keeps unknown fields (``extra="allow"``) so a field the API adds is carried, not
rejected; fields the reference describes without publishing are optional. Every string the
monitor keeps or shows is cleaned (control characters removed) and bounded here, at the
boundary, so no record (DynamoDB's 400 KB item), event (256 KB) or alert (SNS's 256 KB) built
from it can exceed its limit.
"""

from __future__ import annotations

import json
import unicodedata
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict

from rollout_monitor.cerebras.status import ObservedStatus, normalise_status

MAX_ERROR_MESSAGE = 4000  # characters of a Cerebras error message kept (about 16 KB at most)
MAX_STATUS = 64  # a status Cerebras sends, kept verbatim up to this when unknown
MAX_NAME = 300  # ids, model names, aliases, org and architecture names
MAX_API_RESPONSE_BYTES = 16_384  # the raw answer kept on a record, as JSON


def clean_text(value: object, limit: int, *, multiline: bool = False) -> object:
    """Control characters removed (newlines too, unless ``multiline``), at most ``limit``."""
    if not isinstance(value, str):
        return value
    kept = "".join(
        ch if (ch == "\n" and multiline) or unicodedata.category(ch)[0] != "C" else " "
        for ch in value
    )
    if not multiline:
        kept = " ".join(kept.split())
    return kept if len(kept) <= limit else kept[: limit - 15] + "... (truncated)"


def _bounded_document(document: dict[str, Any]) -> dict[str, Any]:
    """Nested models' own extra fields dropped, for a truncated raw answer."""
    return {
        k: {kk: vv for kk, vv in v.items() if not isinstance(vv, dict | list)}
        if isinstance(v, dict)
        else v
        for k, v in document.items()
    }


def _bounded(limit: int, *, multiline: bool = False) -> BeforeValidator:
    return BeforeValidator(lambda value: clean_text(value, limit, multiline=multiline))


Name = Annotated[str, _bounded(MAX_NAME)]
Status = Annotated[str, _bounded(MAX_STATUS)]
ErrorMessage = Annotated[str, _bounded(MAX_ERROR_MESSAGE, multiline=True)]


class ApiModel(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    def to_json_dict(self) -> dict[str, Any]:
        """The payload as the API sent it (cleaned): unset optional fields stay absent."""
        return self.model_dump(mode="json", exclude_unset=True)

    def to_bounded_json_dict(self) -> dict[str, Any]:
        """The payload, unless it is over :data:`MAX_API_RESPONSE_BYTES` as JSON (an answer
        padded with unknown fields): then only what the monitor reads of it."""
        document = self.to_json_dict()
        if len(json.dumps(document)) <= MAX_API_RESPONSE_BYTES:
            return document
        known = self.model_dump(
            mode="json", exclude_unset=True, include=set(type(self).model_fields)
        )
        return {"truncated": True, "known_fields": _bounded_document(known)}


# --- deployModel -------------------------------------------------------------------------------


class DeployModelRequest(ApiModel):
    model: str


class DeploymentMetadata(ApiModel):
    deployment_id: Name
    endpoint_id: Name
    org_name: Name
    model_arch_id: Name
    version_id: int | Name
    created: int
    updated: int
    rollout_status: Status
    # Described by the reference, absent from its example: read when present, never required.
    requested_version: Name | None = None
    max_unavailable: int | None = None
    updated_replicas: int | None = None
    total_replicas: int | None = None
    error_message: ErrorMessage | None = None

    @property
    def status(self) -> ObservedStatus:
        return normalise_status(self.rollout_status)


class DeployOperation(ApiModel):
    """The operation ``deployModel`` returns; ``name`` is the deployment UUID."""

    name: Name
    done: bool
    response: DeploymentMetadata


# --- endpoints ---------------------------------------------------------------------------------


class DeployedModel(ApiModel):
    id: Name
    model: Name
    version_alias: Name | None = None
    created: int
    state: Status
    # Not published for this shape; read when a server sends them.
    updated_replicas: int | None = None
    total_replicas: int | None = None
    error_message: ErrorMessage | None = None

    @property
    def status(self) -> ObservedStatus:
        return normalise_status(self.state)


class EndpointStatus(ApiModel):
    name: Name
    model_arch_id: Name
    deployed_models: list[DeployedModel]
    managing_org_name: Name
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
