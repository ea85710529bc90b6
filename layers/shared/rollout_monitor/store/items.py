"""What every table adapter shares: items and keys, and the one conditional-write helper.

DynamoDB's item limit is 400 KB (:data:`MAX_ITEM_BYTES`); the records written here are
bounded before they are stored (see the adapters' callers).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from rollout_monitor.ports import MAX_TRANSACTION_ITEMS

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

MAX_ITEM_BYTES = 400 * 1024  # DynamoDB: one item, attribute names included
__all__ = ["MAX_ITEM_BYTES", "MAX_TRANSACTION_ITEMS"]
IN_FLIGHT_INDEX = "InFlight"
# Deployments by endpoint, newest first (endpoint_key = the endpoint id, endpoint_at = when it
# was submitted), and every endpoint's last outcome (endpoint_key = ALL_OUTCOMES): what the
# operator's `rollout-monitor` reads without a scan.
BY_ENDPOINT_INDEX = "ByEndpoint"
ALL_OUTCOMES = "#outcomes"  # not an endpoint id: those never hold a '#'
MAX_SHARDS = 16  # the InFlight index's partitions, ACTIVE#0..ACTIVE#15 at most
META = "META"

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


class StoreError(Exception):
    """A write the store could not make."""


def to_item(document: dict[str, Any]) -> dict[str, Any]:
    """A JSON document (``model_dump(mode="json")``) as a DynamoDB item; None is left out."""
    return {k: _attribute(v) for k, v in document.items() if v is not None}


def from_item(item: dict[str, Any]) -> dict[str, Any]:
    """A DynamoDB item as plain JSON values (whole numbers as int)."""
    return {k: _plain(v) for k, v in item.items()}


# boto3's TypeSerializer and TypeDeserializer go through Decimal and a JSON round trip: a
# poller cycle at 1,000 deployments spent a fifth of its CPU there. These cover what the
# records hold (JSON values); anything else goes to boto3's.


def _attribute(value: Any) -> dict[str, Any]:
    convert = _TO_ATTRIBUTE.get(type(value))
    if convert is None:
        return dict(_serializer.serialize(value))
    return convert(value)


def _plain(attribute: dict[str, Any]) -> Any:
    ((kind, value),) = attribute.items()
    convert = _FROM_ATTRIBUTE.get(kind)
    if convert is None:
        return _deserializer.deserialize(attribute)  # type: ignore[arg-type]
    return convert(value)


def _float(value: float) -> dict[str, Any]:
    if not math.isfinite(value):
        raise TypeError(f"DynamoDB cannot store the number {value}")
    return {"N": repr(value)}


def _list(value: list[Any] | tuple[Any, ...]) -> dict[str, Any]:
    return {"L": [_attribute(v) for v in value]}


def _number(text: str) -> int | float:
    """A DynamoDB number, whole as int, else float: what Decimal says, without it (or an
    exception) for the shapes records hold, "12", "12.0" and "12.25" (a third of a Query's
    decoding went to a ValueError per float)."""
    whole = text[:-2] if text.endswith(".0") else text
    if (whole[1:] if whole.startswith("-") else whole).isdecimal():
        return int(whole)
    value = float(text)
    if not value.is_integer():
        return value  # not whole as a float, so not whole as a decimal: float(Decimal) is this
    number = Decimal(text)
    return int(number) if number == number.to_integral_value() else float(number)


_TO_ATTRIBUTE: dict[type, Callable[[Any], dict[str, Any]]] = {
    str: lambda v: {"S": v},
    bool: lambda v: {"BOOL": v},
    int: lambda v: {"N": str(v)},
    float: _float,
    type(None): lambda _: {"NULL": True},
    list: _list,
    tuple: _list,
    dict: lambda v: {"M": {str(k): _attribute(x) for k, x in v.items()}},
}
_FROM_ATTRIBUTE: dict[str, Callable[[Any], Any]] = {
    "S": lambda v: v,
    "BOOL": lambda v: v,
    "N": _number,
    "NULL": lambda _: None,
    "L": lambda v: [_plain(x) for x in v],
    "M": lambda v: {k: _plain(x) for k, x in v.items()},
    "SS": list,
    "NS": lambda v: [_number(x) for x in v],
}


def key(pk: str, sk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def deployment_key(deployment_id: str) -> dict[str, Any]:
    return key(f"DEPLOYMENT#{deployment_id}", META)


def request_key(request_id: str) -> dict[str, Any]:
    return key(f"REQUEST#{request_id}", "REQUEST")


def endpoint_key(endpoint_id: str) -> dict[str, Any]:
    return key(f"ENDPOINT#{endpoint_id}", "ACTIVE")


def outcome_key(endpoint_id: str) -> dict[str, Any]:
    return key(f"ENDPOINT#{endpoint_id}", "LAST_OUTCOME")


def alert_key(cause: str) -> dict[str, Any]:
    return key(f"ALERT#{cause}", "ALERT")


def shard_of(endpoint_id: str, shards: int) -> int:
    """The InFlight partition of an endpoint's rollouts: stable, so one read serves them all."""
    return zlib.crc32(endpoint_id.encode()) % shards


def in_flight_marker(shard: int) -> str:
    return f"ACTIVE#{shard}"


def number(value: float) -> dict[str, str]:
    return {"N": str(value)}


def text(value: str) -> dict[str, str]:
    return {"S": value}


def _failed_condition(exc: ClientError) -> bool:
    code = exc.response.get("Error", {}).get("Code", "")
    return code in {"ConditionalCheckFailedException", "TransactionCanceledException"}


class LostRace(Exception):
    """A condition did not hold; ``item`` is what it was checked against, when returned."""

    def __init__(self, item: dict[str, Any] | None) -> None:
        super().__init__("condition failed")
        self.item = item


class Table:
    """One DynamoDB table, as every adapter of a record kind uses it."""

    def __init__(
        self, client: DynamoDBClient, name: str, retention_seconds: int, shards: int = 1
    ) -> None:
        if not 1 <= shards <= MAX_SHARDS:
            raise ValueError(f"shards must be between 1 and {MAX_SHARDS}, not {shards}")
        self.client = client
        self.name = name
        self.retention_seconds = retention_seconds
        self.shards = shards

    def conditional[T](self, write: Callable[[], T]) -> T:
        """Run a conditional write; a failed condition raises :class:`LostRace`, with the
        item it was checked against when DynamoDB returned it. Any other error propagates."""
        try:
            return write()
        except ClientError as exc:
            if not _failed_condition(exc):
                raise
            old = exc.response.get("Item")
            raise LostRace(old if isinstance(old, dict) else None) from exc

    def attempt(self, write: Callable[[], object]) -> bool:
        """A conditional write whose lost race is an answer, not an error: did it happen?"""
        try:
            self.conditional(write)
        except LostRace:
            return False
        return True

    def get(self, item_key: dict[str, Any]) -> dict[str, Any] | None:
        answer = self.client.get_item(TableName=self.name, Key=item_key, ConsistentRead=True)
        return answer.get("Item")

    # -- the outbox rule, for every record kind that announces (records.Outbox) ---------------

    def take_outbox(
        self, item_key: dict[str, Any], lease_was: float, lease_until: float, guard: Guard
    ) -> bool:
        """Take the right to publish pending events whose writer's lease lapsed."""
        names, values = guard.names, guard.values
        return self.attempt(
            lambda: self.client.update_item(
                TableName=self.name,
                Key=item_key,
                UpdateExpression="SET outbox_lease_until = :until",
                ConditionExpression=f"outbox_lease_until = :was AND {guard.expression}",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values
                | {":until": number(lease_until), ":was": number(lease_was)},
            )
        )

    def clear_outbox(self, item_key: dict[str, Any], guard: Guard, *, remove: str = "") -> bool:
        """Forget announced events (and ``remove`` attributes), if the item is still as read."""
        return self.attempt(
            lambda: self.client.update_item(
                TableName=self.name,
                Key=item_key,
                UpdateExpression=(
                    f"REMOVE pending_events{', ' + remove if remove else ''} "
                    "SET outbox_lease_until = :zero"
                ),
                ConditionExpression=guard.expression,
                ExpressionAttributeNames=guard.names,
                ExpressionAttributeValues=guard.values | {":zero": number(0)},
            )
        )

    def release_outbox(self, item_key: dict[str, Any], guard: Guard) -> bool:
        """Give the publish right up at once (PutEvents failed), so the next try may take it."""
        return self.attempt(
            lambda: self.client.update_item(
                TableName=self.name,
                Key=item_key,
                UpdateExpression="SET outbox_lease_until = :zero",
                ConditionExpression=guard.expression,
                ExpressionAttributeNames=guard.names,
                ExpressionAttributeValues=guard.values | {":zero": number(0)},
            )
        )


class Guard:
    """A condition that the item is still as it was read (for the outbox writes)."""

    def __init__(
        self, expression: str, names: dict[str, str], values: dict[str, dict[str, str]]
    ) -> None:
        self.expression = expression
        self.names = names
        self.values = values
