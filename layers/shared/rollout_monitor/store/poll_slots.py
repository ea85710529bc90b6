"""The poll chain's slots (``POLLER#<shard> / SLOT``): the last interval whose cycle was taken."""

from __future__ import annotations

from rollout_monitor.store.items import Table, key, number


class DynamoPollSlots:
    """The :class:`~rollout_monitor.ports.PollSlots` of a table: one item per shard."""

    def __init__(self, table: Table) -> None:
        self._table = table

    def claim(self, shard: int, slot: int) -> bool:
        """Take ``slot`` if no cycle of this shard took it or a later one (one write)."""
        return self._table.attempt(
            lambda: self._table.client.update_item(
                TableName=self._table.name,
                Key=key(f"POLLER#{shard}", "SLOT"),
                UpdateExpression="SET slot = :slot",
                ConditionExpression="attribute_not_exists(slot) OR slot < :slot",
                ExpressionAttributeValues={":slot": number(slot)},
            )
        )
