"""Deploys waiting for their model version's sync (``WAIT#<request_id>``).

A wait is on the ``InFlight`` index under :data:`WAITING` until it is finished and its
last event announced; the poller's sync follower reads that one partition.
"""

from __future__ import annotations

from typing import Any

from rollout_monitor.records import RequestClaim, RequestState, VersionWait
from rollout_monitor.store.items import (
    Guard,
    LostRace,
    Table,
    from_item,
    key,
    number,
    request_key,
    text,
    to_item,
)

WAITING = "WAITING"  # the waits' partition of the InFlight index (never an ACTIVE#<shard>)


def wait_key(request_id: str) -> dict[str, Any]:
    return key(f"WAIT#{request_id}", "WAIT")


def _as_read(wait: VersionWait) -> Guard:
    return Guard(
        "#sequence = :sequence", {"#sequence": "sequence"}, {":sequence": number(wait.sequence)}
    )


def wait_item(table: Table, wait: VersionWait) -> dict[str, Any]:
    document = wait.model_dump(mode="json") | {"submitted_at": wait.started_at}
    if not wait.finished or wait.pending_events:
        document["in_flight"] = WAITING
    if wait.finished:
        document["expires_at"] = int(wait.observed_at + table.retention_seconds)
    return to_item(document) | wait_key(wait.request_id)


class DynamoWaits:
    """The :class:`~rollout_monitor.ports.VersionWaits` and ``SyncWaits`` of one table."""

    def __init__(self, table: Table) -> None:
        self._table = table

    def start(self, claim: RequestClaim, wait: VersionWait) -> bool:
        """Record the wait and set its request waiting, together; False if the request is no
        longer this delivery's (another took it over) or already waits."""
        return self._table.attempt(
            lambda: self._table.client.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self._table.name,
                            "Item": wait_item(self._table, wait),
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                    {
                        "Update": {
                            "TableName": self._table.name,
                            "Key": request_key(claim.request_id),
                            "UpdateExpression": "SET #state = :waiting",
                            "ConditionExpression": "#state = :in_progress AND claimed_at = :at",
                            "ExpressionAttributeNames": {"#state": "state"},
                            "ExpressionAttributeValues": {
                                ":waiting": text(RequestState.WAITING.value),
                                ":in_progress": text(RequestState.IN_PROGRESS.value),
                                ":at": number(claim.claimed_at),
                            },
                        }
                    },
                ]
            )
        )

    def get(self, request_id: str) -> VersionWait | None:
        item = self._table.get(wait_key(request_id))
        return None if item is None else VersionWait.model_validate(from_item(item))

    def waiting(self) -> list[VersionWait]:
        pages = self._table.client.get_paginator("query").paginate(
            TableName=self._table.name,
            IndexName="InFlight",
            KeyConditionExpression="in_flight = :waiting",
            ExpressionAttributeValues={":waiting": text(WAITING)},
        )
        return [
            VersionWait.model_validate(from_item(item))
            for page in pages
            for item in page.get("Items", [])
        ]

    def save(self, before: VersionWait, after: VersionWait) -> bool:
        """Write ``after`` (its events in its outbox) if the wait is still as read."""
        guard = _as_read(before)
        try:
            self._table.conditional(
                lambda: self._table.client.put_item(
                    TableName=self._table.name,
                    Item=wait_item(self._table, after),
                    ConditionExpression=guard.expression,
                    ExpressionAttributeNames=guard.names,
                    ExpressionAttributeValues=guard.values,
                )
            )
        except LostRace:
            return False
        return True

    def take_outbox(self, wait: VersionWait, now: float, lease_seconds: float) -> bool:
        return self._table.take_outbox(
            wait_key(wait.request_id), wait.outbox_lease_until, now + lease_seconds, _as_read(wait)
        )

    def clear_outbox(self, wait: VersionWait) -> None:
        """Forget the announced events; a finished wait then leaves the index and expires."""
        remove = "in_flight" if wait.finished else ""
        self._table.clear_outbox(wait_key(wait.request_id), _as_read(wait), remove=remove)

    def release_outbox(self, wait: VersionWait) -> None:
        self._table.release_outbox(wait_key(wait.request_id), _as_read(wait))
