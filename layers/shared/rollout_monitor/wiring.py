"""Wiring: the only place that reads the environment and builds adapters.

Each function's handler calls one of these once per container (``functools.cache``); the
domain services receive their adapters and build nothing. Boto3 clients are created here,
lazily, so importing a handler needs neither AWS nor the network.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

import boto3
import httpx
from botocore.config import Config

from rollout_monitor.alerts import AlertService
from rollout_monitor.bus import EventPublisher
from rollout_monitor.cerebras.client import AsyncCerebrasClient
from rollout_monitor.cerebras.credentials import (
    CerebrasSettings,
    SecretsManagerKey,
    build_async_client,
    build_client,
)
from rollout_monitor.chain import PollChain
from rollout_monitor.channels import EmailFormat
from rollout_monitor.config import AlertSettings, DeploySettings, PollerSettings, StoreSettings
from rollout_monitor.deploy import DeployService
from rollout_monitor.discovery import Discovery, DiscoveryReport, DiscoveryScope
from rollout_monitor.messages import Links
from rollout_monitor.notifier import AlertTopic, ChatTopic
from rollout_monitor.pagerduty import PAGERDUTY_SECRET_FIELD, PagerDuty
from rollout_monitor.poller import CycleReport, Poller
from rollout_monitor.ports import Channel, PollTrigger, Publisher, StatusReader, SyncReader
from rollout_monitor.reachability import ReachabilityWatch
from rollout_monitor.reconcile import ReconcilePolicy
from rollout_monitor.release import ReleaseService
from rollout_monitor.rules import StallPolicy
from rollout_monitor.store import Tables
from rollout_monitor.store.items import shard_of
from rollout_monitor.store.wire import speak_wire_json
from rollout_monitor.trigger import SqsPollTrigger
from rollout_monitor.versions import SyncFollower, SyncReport, VersionGuard

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


DISCOVERY_SLOTS = -1  # the poll slots' item for discovery's runs (shards count from 0)


def _pooled(connections: int) -> Config:
    """A client whose connection pool serves that many concurrent calls. botocore's own
    check of each call's parameters is off: the service checks them anyway, and at a
    thousand writes a cycle the check costs more CPU than everything else (``make bench``)."""
    return Config(max_pool_connections=connections, parameter_validation=False)


def dynamodb_client(connections: int) -> DynamoDBClient:
    """The table's client: pooled, and encoding its bulk writes and reads as plain JSON."""
    return speak_wire_json(boto3.client("dynamodb", config=_pooled(connections)))


def tables(settings: StoreSettings, connections: int = 10) -> Tables:
    return Tables.over(
        dynamodb_client(connections),
        settings.table_name,
        settings.retention_seconds,
        settings.poll_shards,
    )


def publisher(settings: StoreSettings, connections: int = 10) -> EventPublisher:
    return EventPublisher(
        settings.event_bus_name, boto3.client("events", config=_pooled(connections))
    )


class _NoTrigger:
    """No poll queue configured: the schedule alone starts cycles."""

    def start(self, shard: int, delay_seconds: int) -> None:
        del shard, delay_seconds


def poll_trigger(settings: StoreSettings) -> PollTrigger:
    if not settings.poll_queue_url:
        return _NoTrigger()
    return SqsPollTrigger(settings.poll_queue_url, boto3.client("sqs"))


def deploy_service() -> DeployService:
    """The deploy function's service, wired to AWS and Cerebras as its environment says."""
    settings = DeploySettings()
    cerebras = CerebrasSettings()
    store = tables(settings)
    trigger = poll_trigger(settings)
    client = build_client(cerebras)
    events = publisher(settings)
    return DeployService(
        requests=store.requests,
        endpoints=store.endpoints,
        deployments=store.deployments,
        cerebras=client,
        publisher=events,
        lease_seconds=settings.request_lease_seconds,
        hold_stale_seconds=settings.hold_stale_seconds,
        reconcile=ReconcilePolicy(
            skew_seconds=settings.reconcile_skew_seconds,
            wait_seconds=settings.reconcile_wait_seconds,
            poll_seconds=settings.reconcile_poll_seconds,
            listing_delay_seconds=settings.reconcile_listing_delay_seconds,
            send_window_seconds=cerebras.retry_deadline_seconds,
        ),
        poll_now=lambda endpoint_id: trigger.start(shard_of(endpoint_id, settings.poll_shards), 0),
        version_guard=VersionGuard(
            client, store.waits, events, wait_seconds=settings.version_wait_minutes * 60
        ),
    )


def release_service(deploys: DeployService) -> ReleaseService:
    """The deploy function's releases and waits' ends, over its deploy service's parts."""
    guard = deploys.version_guard
    if guard is None:
        raise ValueError("releases need the deploy service's version guard")
    return ReleaseService(deploys, guard, guard.cerebras, deploys.requests, guard.waits)


def alert_service() -> AlertService:
    settings = AlertSettings()
    store = tables(settings)
    return AlertService(
        claims=store.alert_claims,
        reachability=store.reachability,
        outcomes=store.endpoints,
        deployments=store.deployments,
        channels=alert_channels(settings),
        alert_statuses=settings.statuses,
        links=Links(
            region=settings.aws_region,
            log_groups=tuple(
                g for g in (settings.poller_log_group, settings.deploy_log_group) if g
            ),
            console_endpoint_url=settings.console_endpoint_url,
        ),
    )


def alert_channels(settings: AlertSettings) -> list[Channel]:
    """The alert topic, and the chat topic and PagerDuty when they are configured."""
    email = EmailFormat.of(settings.alert_subject_template, settings.alert_body_template)
    sns = boto3.client("sns")
    channels: list[Channel] = [AlertTopic(settings.alert_topic_arn, sns, email)]
    # the templates are the email's: chat and pager keep the default subject
    if settings.chatbot_topic_arn:
        channels.append(ChatTopic(settings.chatbot_topic_arn, sns, EmailFormat()))
    if settings.pagerduty_routing_key_secret_arn:
        key = SecretsManagerKey(
            settings.pagerduty_routing_key_secret_arn, 300, field=PAGERDUTY_SECRET_FIELD
        )
        channels.append(
            PagerDuty(key, httpx.Client(), EmailFormat(), settings.pagerduty_events_url)
        )
    return channels


@dataclass
class PollerContainer:
    """What one warm poller container keeps (settings, tables, bus, chain); each invocation
    gets fresh :class:`Poller` cycles over an async Cerebras client bound to its loop."""

    settings: PollerSettings
    cerebras: CerebrasSettings
    store: Tables
    publisher: Publisher
    trigger: PollTrigger
    now: Callable[[], float] = time.time
    # Which endpoints each shard's last cycle read: the next starts reading them at once.
    endpoints_hint: dict[int, list[str]] = field(default_factory=dict)

    @cached_property
    def reachability(self) -> ReachabilityWatch:
        return ReachabilityWatch(
            self.store.reachability,
            self.publisher,
            self.settings.unreachable_after_seconds,
            self.now,
        )

    @property
    def chain(self) -> PollChain:
        return PollChain(
            self.store.poll_slots, self.trigger, self.settings.poll_interval_seconds, self.now
        )

    def fan_out(self) -> None:
        """Start every shard's chain (the schedule, with more than one shard)."""
        for shard in range(self.settings.poll_shards):
            self.trigger.start(shard, 0)

    async def poll(self, shards: list[int]) -> list[CycleReport]:
        """This interval's cycle of each of ``shards``, concurrently; a shard whose slot
        another start already took is skipped."""
        wanted = [s for s in shards if 0 <= s < self.settings.poll_shards]
        async with self._reader() as reader:
            chain = self.chain
            # A Poller per shard (a cycle's thread pool and events are its own), sharing the
            # invocation's connections; a failed cycle cuts no other short, then fails the run.
            ran = await asyncio.gather(
                *(chain.run(s, self._poller(reader, len(wanted)).cycle) for s in wanted),
                return_exceptions=True,
            )
        failed = [r for r in ran if isinstance(r, BaseException)]
        if failed:
            raise failed[0]
        return [r for r in ran if isinstance(r, CycleReport)]

    async def discover(self) -> DiscoveryReport | None:
        """This discovery interval's run, unless discovery is off or another start already
        ran it (one slot per interval, as the poll chain's)."""
        scope = DiscoveryScope.of(
            self.settings.discovery_orgs,
            self.settings.discovery_include,
            self.settings.discovery_exclude,
        )
        interval = self.settings.discovery_minutes * 60
        # the slot's start in seconds, not its number: a changed interval still moves on
        started = math.floor(self.now() / interval) * interval
        if not scope.orgs or not self.store.poll_slots.claim(DISCOVERY_SLOTS, int(started)):
            return None
        async with self._reader() as client:
            return await Discovery(
                scope,
                client,
                self.store.deployments,
                self.store.endpoints,
                self.publisher,
                asyncio.to_thread,
                self.settings.poll_max_concurrency,
                self.now,
            ).discover()

    async def follow_versions(self) -> SyncReport:
        """Read each version a deploy waits for; record and announce each change once."""
        async with self._reader() as client:
            return await self._sync_follower(client).follow()

    def _sync_follower(self, reader: SyncReader) -> SyncFollower:
        return SyncFollower(self.store.waits, reader, self.publisher, self.now)

    async def cycle(self, shard: int = 0) -> CycleReport:
        """One cycle of ``shard`` outside the chain (as a late or overlapping one would run)."""
        async with self._reader() as reader:
            return await self._poller(reader).cycle(shard)

    @asynccontextmanager
    async def _reader(self) -> AsyncIterator[AsyncCerebrasClient]:
        """The invocation's Cerebras client, bound to its event loop, closed after."""
        client = build_async_client(self.cerebras, self.settings.poll_max_concurrency)
        try:
            yield client
        finally:
            await client.aclose()

    def _poller(self, reader: StatusReader, shards: int = 1) -> Poller:
        """A Poller over ``reader``; with ``shards`` cycles at once, each takes its share of
        the connections (the clients' pools are sized for one invocation, not per shard)."""
        return Poller(
            deployments=self.store.deployments,
            endpoints=self.store.endpoints,
            reader=reader,
            publisher=self.publisher,
            stall=StallPolicy(
                self.settings.stall_after_seconds,
                self.settings.stall_after_seconds_by_status,
                lost_after_seconds=self.settings.lost_after_seconds,
                max_age_seconds=self.settings.max_in_flight_seconds,
            ),
            per_deployment_route=self.cerebras.deployment_status_route is not None,
            max_concurrency=max(1, self.settings.poll_max_concurrency // shards),
            aws_concurrency=max(1, self.settings.aws_max_concurrency // shards),
            now=self.now,
            endpoints_hint=self.endpoints_hint,
        )


def poller_container() -> PollerContainer:
    settings = PollerSettings()
    connections = settings.aws_max_concurrency
    return PollerContainer(
        settings=settings,
        cerebras=CerebrasSettings(),
        store=tables(settings, connections),
        publisher=publisher(settings, connections),
        trigger=poll_trigger(settings),
    )
