"""Deployment records and their history (``DEPLOYMENT#<id>``), and the submission transaction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rollout_monitor.records import DeploymentRecord, HistoryEntry, RequestState
from rollout_monitor.store.items import (
    IN_FLIGHT_INDEX,
    MAX_TRANSACTION_ITEMS,
    META,
    Guard,
    LostRace,
    StoreError,
    Table,
    deployment_key,
    endpoint_key,
    from_item,
    in_flight_marker,
    number,
    request_key,
    shard_of,
    text,
    to_item,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef


def _unchanged_since(record: DeploymentRecord) -> Guard:
    """The record is still at the status, sequence, stall episode and loss it was read at."""
    lost = (
        "attribute_not_exists(lost_reason)"
        if record.lost_reason is None
        else "attribute_exists(lost_reason)"
    )
    return Guard(
        f"#status = :status AND #seq = :seq AND stall_episode = :episode AND {lost}",
        {"#status": "status", "#seq": "sequence"},
        {
            ":status": text(record.status),
            ":seq": number(record.sequence),
            ":episode": number(record.stall_episode),
        },
    )


def _same_sequence(record: DeploymentRecord) -> Guard:
    return Guard("#seq = :seq", {"#seq": "sequence"}, {":seq": number(record.sequence)})


def record_item(table: Table, record: DeploymentRecord) -> dict[str, Any]:
    """A record as its item: on the InFlight index (by shard) while it is in flight, on the
    ByEndpoint index always, expiring once it has finished."""
    document = record.model_dump(mode="json")
    document |= {
        "pk": f"DEPLOYMENT#{record.deployment_id}",
        "sk": META,
        "endpoint_key": record.endpoint_id,
        "endpoint_at": record.submitted_at,
    }
    if record.in_flight:
        shard = shard_of(record.endpoint_id, table.shards)
        document["in_flight"] = in_flight_marker(shard)
    elif record.terminal_at is not None:
        document["expires_at"] = int(record.terminal_at + table.retention_seconds)
    return to_item(document)


def history_item(table: Table, entry: HistoryEntry, *, terminal: bool) -> dict[str, Any]:
    document = entry.model_dump(mode="json")
    document |= {
        "pk": f"DEPLOYMENT#{entry.deployment_id}",
        "sk": f"HISTORY#{entry.sequence:06d}",
    }
    if terminal:
        document["expires_at"] = int(entry.observed_at + table.retention_seconds)
    return to_item(document)


def observation_items(
    table: Table, before: DeploymentRecord, after: DeploymentRecord, entry: HistoryEntry
) -> list[TransactWriteItemTypeDef]:
    """A status change: the record, if it is still as read, and its new history entry."""
    guard = _unchanged_since(before)
    return [
        {
            "Put": {
                "TableName": table.name,
                "Item": record_item(table, after),
                "ConditionExpression": guard.expression,
                "ExpressionAttributeNames": guard.names,
                "ExpressionAttributeValues": guard.values,
            }
        },
        {
            "Put": {
                "TableName": table.name,
                "Item": history_item(table, entry, terminal=after.terminal),
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        },
    ]


class DynamoDeployments:
    """The :class:`~rollout_monitor.ports.Deployments` and ``Submissions`` of one table."""

    def __init__(self, table: Table) -> None:
        self._table = table

    def get(self, deployment_id: str) -> DeploymentRecord | None:
        item = self._table.get(deployment_key(deployment_id))
        return None if item is None else DeploymentRecord.model_validate(from_item(item))

    def history(self, deployment_id: str) -> list[HistoryEntry]:
        pages = self._table.client.get_paginator("query").paginate(
            TableName=self._table.name,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :history)",
            ExpressionAttributeValues={
                ":pk": text(f"DEPLOYMENT#{deployment_id}"),
                ":history": text("HISTORY#"),
            },
            ConsistentRead=True,
        )
        return [
            HistoryEntry.model_validate(from_item(item))
            for page in pages
            for item in page.get("Items", [])
        ]

    def in_flight(self, shard: int | None = None) -> list[DeploymentRecord]:
        """The deployments in flight in one shard (all shards if None): one query of the
        sparse index per shard (more pages if large)."""
        if shard is None:
            return [r for s in range(self._table.shards) for r in self.in_flight(s)]
        pages = self._table.client.get_paginator("query").paginate(
            TableName=self._table.name,
            IndexName=IN_FLIGHT_INDEX,
            KeyConditionExpression="in_flight = :shard",
            ExpressionAttributeValues={":shard": text(in_flight_marker(shard))},
        )
        return [
            DeploymentRecord.model_validate(from_item(item))
            for page in pages
            for item in page.get("Items", [])
        ]

    # -- items ----------------------------------------------------------------------------------

    def item_of(self, record: DeploymentRecord) -> dict[str, Any]:
        """The record as the table holds it (the benchmark loads its fake table with these)."""
        return record_item(self._table, record)

    # -- the submission, atomically -------------------------------------------------------------

    def record_submission(self, record: DeploymentRecord, lease_until: float) -> None:
        """Record the deployment, its first history entry, the request's result (its outbox
        holding the record's pending events, leased until ``lease_until``) and the endpoint's
        holder, in one transaction."""
        table = self._table.name
        finish_request: TransactWriteItemTypeDef = {
            "Update": {
                "TableName": table,
                "Key": request_key(record.request_id),
                "UpdateExpression": (
                    "SET #state = :submitted, deployment_id = :did, pending_events = :pending, "
                    "outbox_lease_until = :until"
                ),
                "ExpressionAttributeNames": {"#state": "state"},
                "ExpressionAttributeValues": {
                    ":submitted": text(RequestState.SUBMITTED.value),
                    ":did": text(record.deployment_id),
                    ":pending": {"L": [text(e) for e in record.pending_events]},
                    ":until": number(lease_until),
                },
            }
        }
        hold: TransactWriteItemTypeDef = (
            {
                "Update": {
                    "TableName": table,
                    "Key": endpoint_key(record.endpoint_id),
                    "UpdateExpression": "SET deployment_id = :did, request_id = :rid",
                    "ExpressionAttributeValues": {
                        ":did": text(record.deployment_id),
                        ":rid": text(record.request_id),
                    },
                }
            }
            if not record.terminal
            else {"Delete": {"TableName": table, "Key": endpoint_key(record.endpoint_id)}}
        )
        first = HistoryEntry.of(record, previous_status=None, observed_at=record.submitted_at)
        # The record's own outbox stays empty: the request's outbox announces the submission.
        stored = record.model_copy(update={"pending_events": [], "outbox_lease_until": 0.0})
        items: list[TransactWriteItemTypeDef] = [
            {
                "Put": {
                    "TableName": table,
                    "Item": record_item(self._table, stored),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
            {
                "Put": {
                    "TableName": table,
                    "Item": history_item(self._table, first, terminal=record.terminal),
                }
            },
            finish_request,
            hold,
        ]
        try:
            self._table.conditional(
                lambda: self._table.client.transact_write_items(TransactItems=items)
            )
        except LostRace as exc:
            raise StoreError(f"deployment {record.deployment_id} is already recorded") from exc

    def record_discovery(self, record: DeploymentRecord, hold_stale_before: float) -> bool:
        """An adopted rollout and its first history entry, unless the deployment is already
        recorded (ours, or adopted by an earlier discovery), or a deploy request holds its
        endpoint with nothing recorded yet (since ``hold_stale_before``): its deployModel may
        have made this very deployment, and the request's retry adopts it as its own. False
        then, nothing written."""
        first = HistoryEntry.of(record, previous_status=None, observed_at=record.submitted_at)
        items: list[TransactWriteItemTypeDef] = [
            {
                "ConditionCheck": {
                    "TableName": self._table.name,
                    "Key": endpoint_key(record.endpoint_id),
                    "ConditionExpression": (
                        "attribute_not_exists(pk) OR attribute_exists(deployment_id) "
                        "OR claimed_at < :stale"
                    ),
                    "ExpressionAttributeValues": {":stale": number(hold_stale_before)},
                }
            },
            {
                "Put": {
                    "TableName": self._table.name,
                    "Item": record_item(self._table, record),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
            {
                "Put": {
                    "TableName": self._table.name,
                    "Item": history_item(self._table, first, terminal=False),
                }
            },
        ]
        return self._table.attempt(
            lambda: self._table.client.transact_write_items(TransactItems=items)
        )

    # -- the poller's writes: each conditional on the state it read -----------------------------

    def save_observation(
        self, before: DeploymentRecord, after: DeploymentRecord, entry: HistoryEntry | None
    ) -> bool:
        """Write ``after`` (and its history entry) if the record is still as ``before`` was.

        False means another poller recorded this change first: nothing was written.
        """
        if entry is None:  # progress only: one item, a plain conditional write (1 WRU, not 2)
            guard = _unchanged_since(before)
            return self._table.attempt(
                lambda: self._table.client.put_item(
                    TableName=self._table.name,
                    Item=record_item(self._table, after),
                    ConditionExpression=guard.expression,
                    ExpressionAttributeNames=guard.names,
                    ExpressionAttributeValues=guard.values,
                )
            )
        items = observation_items(self._table, before, after, entry)
        return self._table.attempt(
            lambda: self._table.client.transact_write_items(TransactItems=items)
        )

    def save_observations(
        self, changes: Sequence[tuple[DeploymentRecord, DeploymentRecord, HistoryEntry]]
    ) -> bool:
        """Several records' status changes, each with its history entry, in one transaction
        (at most :data:`MAX_TRANSACTION_ITEMS` items). False if it was refused as a whole
        (one record lost its race): the caller then writes each on its own."""
        items = [item for change in changes for item in observation_items(self._table, *change)]
        if len(items) > MAX_TRANSACTION_ITEMS:
            raise ValueError(f"{len(items)} items: a transaction takes {MAX_TRANSACTION_ITEMS}")
        return self._table.attempt(
            lambda: self._table.client.transact_write_items(TransactItems=items)
        )

    def take_outbox(self, record: DeploymentRecord, now: float, lease_seconds: float) -> bool:
        """Take the right to publish a record's pending events whose writer's lease ran out."""
        return self._table.take_outbox(
            deployment_key(record.deployment_id),
            record.outbox_lease_until,
            now + lease_seconds,
            _same_sequence(record),
        )

    def clear_outbox(self, record: DeploymentRecord) -> None:
        """Forget the announced events; a finished deployment then leaves the InFlight index.

        A newer change carries these events too, and will announce them (same ids): losing
        the race here is fine.
        """
        self._table.clear_outbox(
            deployment_key(record.deployment_id),
            _unchanged_since(record),
            remove="in_flight" if record.terminal else "",
        )

    def clear_outboxes(self, records: Sequence[DeploymentRecord]) -> bool:
        """:meth:`clear_outbox` for several records in one transaction (at most
        :data:`MAX_TRANSACTION_ITEMS`); False if refused as a whole: clear each then."""
        items: list[TransactWriteItemTypeDef] = []
        for record in records:
            guard = _unchanged_since(record)
            remove = ", in_flight" if record.terminal else ""
            items.append(
                {
                    "Update": {
                        "TableName": self._table.name,
                        "Key": deployment_key(record.deployment_id),
                        "UpdateExpression": (
                            f"REMOVE pending_events{remove} SET outbox_lease_until = :zero"
                        ),
                        "ConditionExpression": guard.expression,
                        "ExpressionAttributeNames": guard.names,
                        "ExpressionAttributeValues": guard.values | {":zero": number(0)},
                    }
                }
            )
        return self._table.attempt(
            lambda: self._table.client.transact_write_items(TransactItems=items)
        )

    def release_outbox(self, record: DeploymentRecord) -> None:
        self._table.release_outbox(deployment_key(record.deployment_id), _same_sequence(record))
