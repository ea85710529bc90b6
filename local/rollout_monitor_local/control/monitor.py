"""A monitor stack as its operator sees it: found by name from its outputs, read without a
scan, asked to deploy through the same ``Deploy Requested`` event as CI/CD.

The same code serves a deployed stack (the standard AWS credential chain, ``--region``,
``--profile``) and the local stack (``--aws-endpoint-url``). Every AWS failure becomes a
:class:`MonitorError` of one line: the command then exits :data:`EXIT_MONITOR`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from rollout_monitor.events import DetailType
from rollout_monitor.records import DeploymentRecord, HistoryEntry, LastOutcome, RequestClaim
from rollout_monitor.store import Tables
from rollout_monitor_local.stackenv import Found, StackEnvError

EXIT_DONE = 0
EXIT_FAILED = 1  # error, rolled_back, cancelled, lost
EXIT_REJECTED = 2
EXIT_TIMEOUT = 3
EXIT_MONITOR = 4  # the monitor unreachable or misconfigured
EXIT_INTERRUPTED = 130  # Ctrl-C: 128 + SIGINT, as a shell reports a command it interrupted
CLI_SOURCE = "rollout-monitor.cli"  # the bus refuses the monitor's own source from anyone else


class MonitorError(Exception):
    """The monitor cannot be reached or used, in one line."""


@dataclass(frozen=True)
class Target:
    """Where the stack is: its name, and how to reach its account."""

    stack: str
    region: str | None = None
    profile: str | None = None
    endpoint_url: str | None = None  # the local stack's moto server only


@dataclass
class Monitor:
    """The stack's table (through the store's own adapters) and bus."""

    store: Tables
    events: Any  # EventBridgeClient
    bus_name: str

    @classmethod
    def connect(cls, target: Target) -> Monitor:
        try:
            found = Found.describe(
                target.stack,
                region=target.region,
                profile=target.profile,
                endpoint_url=target.endpoint_url,
            )
        except StackEnvError as exc:
            raise MonitorError(str(exc)) from exc
        missing = {"TableName", "EventBusName"} - set(found.outputs)
        if missing:
            raise MonitorError(
                f"stack {target.stack!r} is not a rollout monitor: no output {sorted(missing)}"
            )

        def client(service: str) -> Any:
            return found.session.client(
                service, region_name=found.region, endpoint_url=target.endpoint_url
            )

        shards = int(found.parameters.get("PollShards") or 1)
        store = Tables.over(client("dynamodb"), found.outputs["TableName"], 0, shards)
        return cls(store, client("events"), found.outputs["EventBusName"])

    # -- reads: each a GetItem or a Query, never a scan ---------------------------------------

    def request(self, request_id: str) -> RequestClaim | None:
        return _aws(self.store.requests.get, request_id)

    def deployment(self, deployment_id: str) -> DeploymentRecord | None:
        return _aws(self.store.deployments.get, deployment_id)

    def history(self, deployment_id: str) -> list[HistoryEntry]:
        return _aws(self.store.deployments.history, deployment_id)

    def in_flight(self) -> list[DeploymentRecord]:
        return [r for r in _aws(self.store.deployments.in_flight) if not r.terminal]

    def by_endpoint(self, endpoint_id: str, limit: int) -> list[DeploymentRecord]:
        """The endpoint's latest ``limit`` deployments, newest first."""
        ids = _aws(self.store.endpoints.deployments, endpoint_id, limit)
        return [record for i in ids if (record := self.deployment(i)) is not None]

    def last_outcomes(self) -> dict[str, LastOutcome]:
        return _aws(self.store.endpoints.last_outcomes)

    # -- the one write: a deploy request on the bus --------------------------------------------

    def request_deploy(
        self, detail: dict[str, Any], detail_type: DetailType = DetailType.DEPLOY_REQUESTED
    ) -> None:
        """Put a request (``Deploy Requested`` or ``Release Requested``) on the bus."""
        answer = _aws(
            self.events.put_events,
            Entries=[
                {
                    "Source": CLI_SOURCE,
                    "DetailType": detail_type.value,
                    "Detail": json.dumps(detail),
                    "EventBusName": self.bus_name,
                }
            ],
        )
        if answer.get("FailedEntryCount"):
            (entry,) = answer["Entries"]
            raise MonitorError(
                f"the bus {self.bus_name} refused the request: {entry.get('ErrorCode')} "
                f"{entry.get('ErrorMessage', '')}".strip()
            )


def _aws[T](call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """One AWS call; its failure as a :class:`MonitorError` of one line."""
    try:
        return call(*args, **kwargs)
    except NoCredentialsError as exc:
        raise MonitorError(
            "no AWS credentials found: configure them with `aws configure` or "
            "AWS_PROFILE/AWS_ACCESS_KEY_ID"
        ) from exc
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise MonitorError(f"{error.get('Code')}: {error.get('Message')}") from exc
    except BotoCoreError as exc:
        raise MonitorError(str(exc)) from exc
