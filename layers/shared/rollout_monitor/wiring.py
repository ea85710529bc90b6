"""Wiring: the only place that reads the environment and builds adapters.

Each function's handler calls one of these once per container (``functools.cache``); the
domain services receive their adapters and build nothing. Boto3 clients are created here,
lazily, so importing a handler needs neither AWS nor the network.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import boto3

from rollout_monitor.alerts import AlertService
from rollout_monitor.bus import EventPublisher
from rollout_monitor.cerebras.credentials import CerebrasSettings, build_async_client, build_client
from rollout_monitor.config import AlertSettings, DeploySettings, PollerSettings, StoreSettings
from rollout_monitor.deploy import DeployService
from rollout_monitor.messages import Links
from rollout_monitor.notifier import SnsNotifier
from rollout_monitor.poller import CycleReport, Poller
from rollout_monitor.ports import Publisher
from rollout_monitor.reconcile import ReconcilePolicy
from rollout_monitor.rules import StallPolicy
from rollout_monitor.store import Tables

FUNCTION_TIME_MARGIN_SECONDS = 15.0  # left for the last cycle's writes and the metrics flush


def tables(settings: StoreSettings) -> Tables:
    return Tables.over(boto3.client("dynamodb"), settings.table_name, settings.retention_seconds)


def publisher(settings: StoreSettings) -> EventPublisher:
    return EventPublisher(settings.event_bus_name, boto3.client("events"))


def deploy_service() -> DeployService:
    """The deploy function's service, wired to AWS and Cerebras as its environment says."""
    settings = DeploySettings()
    cerebras = CerebrasSettings()
    store = tables(settings)
    return DeployService(
        requests=store.requests,
        endpoints=store.endpoints,
        deployments=store.deployments,
        cerebras=build_client(cerebras),
        publisher=publisher(settings),
        lease_seconds=settings.request_lease_seconds,
        hold_stale_seconds=settings.hold_stale_seconds,
        reconcile=ReconcilePolicy(
            skew_seconds=settings.reconcile_skew_seconds,
            wait_seconds=settings.reconcile_wait_seconds,
            poll_seconds=settings.reconcile_poll_seconds,
            listing_delay_seconds=settings.reconcile_listing_delay_seconds,
            send_window_seconds=cerebras.retry_deadline_seconds,
        ),
    )


def alert_service() -> AlertService:
    settings = AlertSettings()
    store = tables(settings)
    return AlertService(
        claims=store.alert_claims,
        outcomes=store.endpoints,
        deployments=store.deployments,
        sender=SnsNotifier(settings.alert_topic_arn, boto3.client("sns")),
        alert_statuses=settings.statuses,
        links=Links(
            region=settings.aws_region,
            log_groups=tuple(
                g for g in (settings.poller_log_group, settings.deploy_log_group) if g
            ),
            console_endpoint_url=settings.console_endpoint_url,
        ),
    )


@dataclass
class PollerContainer:
    """What one warm poller container keeps (settings, tables, bus); each invocation gets a
    fresh :class:`Poller` over an async Cerebras client bound to that invocation's loop."""

    settings: PollerSettings
    cerebras: CerebrasSettings
    store: Tables
    publisher: Publisher
    now: Callable[[], float] = time.time
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep

    def budget(self, remaining_millis: int) -> float:
        """The polling budget: the configured one, within the function's time left."""
        available = remaining_millis / 1000 - FUNCTION_TIME_MARGIN_SECONDS
        return max(0.0, min(self.settings.poll_budget_seconds, available))

    async def poll(self, budget_seconds: float) -> list[CycleReport]:
        client = build_async_client(self.cerebras, self.settings.poll_max_concurrency)
        try:
            poller = Poller(
                deployments=self.store.deployments,
                endpoints=self.store.endpoints,
                reader=client,
                publisher=self.publisher,
                stall=StallPolicy(
                    self.settings.stall_after_seconds,
                    self.settings.stall_after_seconds_by_status,
                    lost_after_seconds=self.settings.lost_after_seconds,
                    max_age_seconds=self.settings.max_in_flight_seconds,
                ),
                per_deployment_route=self.cerebras.deployment_status_route is not None,
                max_concurrency=self.settings.poll_max_concurrency,
                now=self.now,
            )
            return await poller.run(budget_seconds, self.settings.poll_interval_seconds, self.sleep)
        finally:
            await client.aclose()


def poller_container() -> PollerContainer:
    settings = PollerSettings()
    return PollerContainer(
        settings=settings,
        cerebras=CerebrasSettings(),
        store=tables(settings),
        publisher=publisher(settings),
    )
