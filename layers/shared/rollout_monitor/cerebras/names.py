"""Identifiers the API puts in paths and bodies, checked before any request is made."""

from __future__ import annotations

import re
from dataclasses import dataclass

from rollout_monitor.cerebras.errors import InvalidIdentifierError

MAX_IDENTIFIER_LENGTH = 128
_IDENTIFIER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
VERSION_ALIAS = re.compile(r"^[a-z][a-zA-Z0-9-]{0,126}[a-z0-9]$")
VERSION_NUMBER = re.compile(r"^[0-9]{1,18}$")  # ASCII digits only: "²".isdigit() is True
_VERSION_NAME = re.compile(
    r"^orgs/(?P<org>[^/]+)/models/(?P<arch>[^/]+)/versions/(?P<version>[^/]+)$"
)


def check_identifier(kind: str, value: str) -> str:
    """Return ``value`` if it is safe as one path segment; otherwise say precisely why not."""
    if not value:
        raise InvalidIdentifierError(kind, value, "it is empty")
    if len(value) > MAX_IDENTIFIER_LENGTH:
        raise InvalidIdentifierError(
            kind, value, f"it is {len(value)} characters long (at most {MAX_IDENTIFIER_LENGTH})"
        )
    if any(ch.isspace() or not ch.isprintable() for ch in value):
        raise InvalidIdentifierError(kind, value, "it contains whitespace or control characters")
    if "/" in value or "\\" in value:
        raise InvalidIdentifierError(kind, value, "it contains a path separator")
    if ".." in value:
        raise InvalidIdentifierError(kind, value, "it contains '..'")
    if not _IDENTIFIER.fullmatch(value):
        raise InvalidIdentifierError(
            kind, value, "only letters, digits, '.', '_' and '-' are allowed, starting alphanumeric"
        )
    return value


def check_version_id(value: str) -> str:
    """A version is an integer or an alias matching the published alias pattern."""
    if VERSION_NUMBER.fullmatch(value) or VERSION_ALIAS.fullmatch(value):
        return value
    check_identifier("version", value)
    raise InvalidIdentifierError(
        "version", value, "it is neither an integer nor an alias matching " + VERSION_ALIAS.pattern
    )


@dataclass(frozen=True, slots=True)
class ModelVersionName:
    """``orgs/<org>/models/<arch>/versions/<id|alias>``, each part checked."""

    org_name: str
    model_arch_id: str
    version: str

    @classmethod
    def parse(cls, name: str) -> ModelVersionName:
        match = _VERSION_NAME.fullmatch(name)
        if match is None:
            raise InvalidIdentifierError(
                "model", name, "expected orgs/<org>/models/<arch>/versions/<id|alias>"
            )
        return cls(
            org_name=check_identifier("org", match["org"]),
            model_arch_id=check_identifier("model architecture", match["arch"]),
            version=check_version_id(match["version"]),
        )

    @property
    def version_alias(self) -> str | None:
        return None if self.version_number is not None else self.version

    @property
    def version_number(self) -> int | None:
        return int(self.version) if VERSION_NUMBER.fullmatch(self.version) else None

    def __str__(self) -> str:
        return f"orgs/{self.org_name}/models/{self.model_arch_id}/versions/{self.version}"
