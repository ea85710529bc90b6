"""Per-function settings, read once per container from the environment."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class StoreSettings(BaseSettings):
    model_config = SettingsConfigDict(frozen=True)

    table_name: str
    event_bus_name: str
    retention_days: int = Field(default=90, ge=1)

    @property
    def retention_seconds(self) -> int:
        return self.retention_days * 86_400


class DeploySettings(StoreSettings):
    request_lease_seconds: float = Field(default=60.0, gt=0)
