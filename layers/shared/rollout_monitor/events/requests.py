"""The inbound events: ``Deploy Requested`` and ``Release Requested``, from CI/CD, the
operator CLI or a person."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from rollout_monitor.cerebras.names import VERSION_ALIAS, ModelVersionName, check_identifier
from rollout_monitor.events.base import Labels, Team

MAX_REQUEST_ID = 128
REQUEST_ID_PATTERN = r"^[A-Za-z0-9._:/@+=-]+$"
MAX_REQUESTED_BY = 256
MAX_REASON = 1024


RequestId = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_REQUEST_ID, pattern=REQUEST_ID_PATTERN)
]


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
    request_id: RequestId | None = None
    requested_by: Annotated[str, StringConstraints(max_length=MAX_REQUESTED_BY)] | None = None
    reason: Annotated[str, StringConstraints(max_length=MAX_REASON)] | None = None
    force: bool = False
    team: Team | None = None  # routes the deployment's events and alerts (detail.team)
    labels: Labels = {}  # free key=value routing (detail.labels)

    @property
    def version(self) -> ModelVersionName:
        return ModelVersionName.parse(self.model)


MAX_WEIGHT_URI = 1024
WEIGHT_URI_PATTERN = r"^s3://[a-z0-9][a-z0-9.-]{1,62}(/[^\s]*)?$"
MAX_ALIASES = 10


def _alias(value: str) -> str:
    if not VERSION_ALIAS.fullmatch(value):
        raise ValueError(f"{value!r} is not a version alias (pattern {VERSION_ALIAS.pattern})")
    return value


def _identifier(kind: str) -> AfterValidator:
    return AfterValidator(lambda value: check_identifier(kind, value))


class ReleaseRequested(BaseModel):
    """``detail`` of ``Release Requested``: upload a version, wait for its sync, deploy it."""

    model_config = DeployRequested.model_config

    org_name: Annotated[str, _identifier("org")]
    model_arch_id: Annotated[str, _identifier("model architecture")]
    weight_uri: Annotated[
        str, StringConstraints(max_length=MAX_WEIGHT_URI, pattern=WEIGHT_URI_PATTERN)
    ]
    version_aliases: Annotated[
        list[Annotated[str, AfterValidator(_alias)]], Field(max_length=MAX_ALIASES)
    ] = []
    endpoint_id: Annotated[str, AfterValidator(_endpoint_id)]
    request_id: RequestId | None = None
    requested_by: Annotated[str, StringConstraints(max_length=MAX_REQUESTED_BY)] | None = None
    reason: Annotated[str, StringConstraints(max_length=MAX_REASON)] | None = None
    force: bool = False
    team: Team | None = None
    labels: Labels = {}

    def content_key(self) -> str:
        """What the release asks for, as one string (the request claim's fingerprint)."""
        aliases = ",".join(sorted(self.version_aliases))
        return f"release:{self.org_name}/{self.model_arch_id}@{self.weight_uri}#{aliases}"
