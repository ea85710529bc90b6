"""Whether Cerebras answers the poller (``HEALTH#cerebras / REACHABILITY``): one item, written
only when an episode of failed reads starts, is announced or ends."""

from __future__ import annotations

from rollout_monitor.records import Reachability
from rollout_monitor.store.items import Guard, Table, from_item, key, number, to_item

REACHABILITY_KEY = key("HEALTH#cerebras", "REACHABILITY")


class DynamoReachability:
    """The :class:`~rollout_monitor.ports.ReachabilityStore` of a table."""

    def __init__(self, table: Table) -> None:
        self._table = table

    def get(self) -> Reachability:
        item = self._table.get(REACHABILITY_KEY)
        return Reachability() if item is None else Reachability.model_validate(from_item(item))

    def save(self, before: Reachability, after: Reachability) -> bool:
        """Store ``after`` if the item is still ``before``; False if another poller moved it."""
        item = to_item(after.model_dump(mode="json")) | REACHABILITY_KEY
        return self._table.attempt(
            lambda: self._table.client.put_item(
                TableName=self._table.name,
                Item=item,
                ConditionExpression="attribute_not_exists(pk) OR revision = :revision",
                ExpressionAttributeValues={":revision": number(before.revision)},
            )
        )

    def take_outbox(self, state: Reachability, now: float, lease_seconds: float) -> bool:
        return self._table.take_outbox(
            REACHABILITY_KEY, state.outbox_lease_until, now + lease_seconds, _as_read(state)
        )

    def clear_outbox(self, state: Reachability) -> bool:
        return self._table.clear_outbox(REACHABILITY_KEY, _as_read(state))


def _as_read(state: Reachability) -> Guard:
    return Guard("revision = :revision", {}, {":revision": number(state.revision)})
