"""Per-function settings, read once per container from the environment."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class StoreSettings(BaseSettings):
    # every number finite: a NaN deadline would be written into an event, then unreadable
    model_config = SettingsConfigDict(frozen=True, allow_inf_nan=False)

    table_name: str
    event_bus_name: str
    retention_days: int = Field(default=90, ge=1)
    poll_shards: int = Field(default=1, ge=1, le=16)  # store.items.MAX_SHARDS
    poll_queue_url: str = ""  # the poller's chain; empty: polled by the schedule alone

    @property
    def retention_seconds(self) -> int:
        return self.retention_days * 86_400


class DeploySettings(StoreSettings):
    request_lease_seconds: float = Field(default=60.0, gt=0)
    hold_stale_seconds: float = Field(default=900.0, gt=0)
    # After deployModel failed ambiguously (docs/decisions.md, "deployModel is never sent blind")
    reconcile_skew_seconds: float = Field(default=600.0, ge=0)
    reconcile_wait_seconds: float = Field(default=25.0, ge=0)
    reconcile_poll_seconds: float = Field(default=5.0, gt=0)
    reconcile_listing_delay_seconds: float = Field(default=60.0, ge=0)
    # How long a deploy (or a release) waits for its version's sync before version_not_ready
    version_wait_minutes: float = Field(default=30.0, gt=0)


class PollerSettings(StoreSettings):
    poll_interval_seconds: float = Field(default=10.0, gt=0)
    aws_max_concurrency: int = Field(default=16, ge=1, le=64)
    stall_after_seconds: float = Field(default=1800.0, gt=0)
    # JSON, e.g. {"not_started": 600, "rolling_back": 900}
    stall_after_seconds_by_status: dict[str, Annotated[float, Field(gt=0)]] = {}
    poll_max_concurrency: int = Field(default=10, ge=1, le=100)
    lost_after_seconds: float = Field(default=900.0, gt=0)  # unlisted (or 404) this long
    # every status read failing this long: Cerebras Unreachable
    unreachable_after_seconds: float = Field(default=600.0, gt=0)
    max_in_flight_seconds: float = Field(default=7 * 86_400.0, gt=0)
    # Discovery of rollouts started elsewhere (discovery.py): empty orgs turn it off
    discovery_orgs: str = ""  # comma-separated org names
    discovery_include: str = "*"  # comma-separated endpoint id patterns (fnmatch)
    discovery_exclude: str = ""
    discovery_minutes: float = Field(default=5.0, gt=0)


class AlertSettings(StoreSettings):
    alert_topic_arn: str
    alert_statuses: str = "error,rolled_back"
    aws_region: str = "us-east-1"
    poller_log_group: str = ""
    deploy_log_group: str = ""
    console_endpoint_url: str = (
        "https://cloud.cerebras.ai/platform/{org_name}/endpoints/{endpoint_id}"
    )
    # The email's subject and body (string.Template, channels.TEMPLATE_FIELDS); empty: default
    alert_subject_template: str = ""
    alert_body_template: str = ""
    chatbot_topic_arn: str = ""  # empty: no chat topic
    pagerduty_routing_key_secret_arn: str = ""  # empty: no pager
    pagerduty_events_url: str = "https://events.pagerduty.com/v2/enqueue"

    @property
    def statuses(self) -> frozenset[str]:
        return frozenset(s.strip() for s in self.alert_statuses.split(",") if s.strip())
