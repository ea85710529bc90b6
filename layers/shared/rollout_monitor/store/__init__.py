"""DynamoDB adapters, one per record kind, over one table (see ``template.yaml``):

========================  ===============  ==============================================
pk                        sk               what
========================  ===============  ==============================================
``DEPLOYMENT#<id>``       ``META``         :class:`DeploymentRecord`; on the ``InFlight``
                                           index while ``in_flight`` (``ACTIVE#<shard>``)
                                           is set
``DEPLOYMENT#<id>``       ``HISTORY#<n>``  one item per status change, ``n`` = sequence
``REQUEST#<request_id>``  ``REQUEST``      a deploy request's claim, result and outbox
``ENDPOINT#<id>``         ``ACTIVE``       which request/deployment holds the endpoint
``ENDPOINT#<id>``         ``LAST_OUTCOME`` the endpoint's latest finished rollout
``ALERT#<cause>``         ``ALERT``        an alert's claim: sent once per cause
``POLLER#<shard>``        ``SLOT``         the last poll interval a cycle of the shard took
``HEALTH#cerebras``       ``REACHABILITY`` whether Cerebras answers: the failing episode
``WAIT#<request_id>``     ``WAIT``         a deploy waiting for its version's sync; on the
                                           ``InFlight`` index (``WAITING``) until it ends
========================  ===============  ==============================================

Each adapter implements a Protocol of :mod:`rollout_monitor.ports`; the domain sees only those.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from rollout_monitor.store.alert_claims import DynamoAlertClaims
from rollout_monitor.store.deployments import DynamoDeployments
from rollout_monitor.store.endpoints import DynamoEndpoints
from rollout_monitor.store.items import StoreError, Table, from_item, to_item
from rollout_monitor.store.poll_slots import DynamoPollSlots
from rollout_monitor.store.reachability import DynamoReachability
from rollout_monitor.store.requests import DynamoRequests
from rollout_monitor.store.waits import DynamoWaits

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

__all__ = ["StoreError", "Tables", "from_item", "to_item"]


@dataclass(frozen=True)
class Tables:
    """Every record kind's adapter, over one table."""

    deployments: DynamoDeployments
    requests: DynamoRequests
    endpoints: DynamoEndpoints
    alert_claims: DynamoAlertClaims
    poll_slots: DynamoPollSlots
    reachability: DynamoReachability
    waits: DynamoWaits

    @classmethod
    def over(
        cls, client: DynamoDBClient, name: str, retention_seconds: int, shards: int = 1
    ) -> Tables:
        table = Table(client, name, retention_seconds, shards)
        return cls(
            DynamoDeployments(table),
            DynamoRequests(table),
            DynamoEndpoints(table),
            DynamoAlertClaims(table),
            DynamoPollSlots(table),
            DynamoReachability(table),
            DynamoWaits(table),
        )
