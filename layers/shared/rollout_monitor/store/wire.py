"""DynamoDB's JSON on the wire, without botocore walking its shape model for every value.

The low-level client's attribute values (``{"S": ...}``, ``{"N": "..."}``, maps, lists,
booleans, nulls) are already DynamoDB's wire JSON: only binary values (base64 on the wire,
bytes in the client) differ, and the records hold none. botocore nevertheless visits every
value of a request and a response through the service model: at a thousand deployments a
cycle, that walk was a third of the poller's CPU (``make bench``). So, on the poller's client:

- the bulk writes (``TransactWriteItems``, ``PutItem``, ``UpdateItem``) are encoded with
  :func:`json.dumps`, botocore still building the request's headers and URL; a bytes value
  raises ``TypeError`` rather than being sent wrong;
- a ``Query`` answer's items are decoded with :func:`json.loads`, botocore parsing the rest
  (an answer holding a binary value, or an error, goes through botocore whole).

- a transaction's table names, which the endpoint rules read (``ResourceArnList``), are
  listed by a comprehension instead of botocore's jmespath expression over every item.

``tests/unit/test_wire.py`` checks each against botocore's own encoding, parsing and search.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from botocore.model import OperationModel
    from mypy_boto3_dynamodb import DynamoDBClient

ENCODED = frozenset({"TransactWriteItems", "PutItem", "UpdateItem"})
_BINARY = (b'"B":', b'"BS":')  # may match inside a string: then botocore parses, as before


class _WireSerializer:
    """botocore's JSON serializer, with the bulk writes' bodies encoded by ``json``."""

    def __init__(self, botocore_serializer: Any) -> None:
        self._botocore = botocore_serializer

    def serialize_to_request(
        self, parameters: dict[str, Any], operation_model: OperationModel
    ) -> dict[str, Any]:
        if operation_model.name not in ENCODED:
            return self._botocore.serialize_to_request(parameters, operation_model)  # type: ignore[no-any-return]
        request: dict[str, Any] = self._botocore.serialize_to_request({}, operation_model)
        request["body"] = json.dumps(parameters, separators=(",", ":")).encode()
        return request


def _items_by_json(
    response_dict: dict[str, Any], customized_response_dict: dict[str, Any], **_: Any
) -> None:
    """``before-parse`` of Query: hand botocore the answer without its items, decoded here."""
    body = response_dict.get("body")
    if response_dict.get("status_code") != 200 or not isinstance(body, bytes):
        return
    if any(marker in body for marker in _BINARY):
        return
    answer = json.loads(body)
    items = answer.pop("Items", None)
    if not isinstance(items, list):
        return
    customized_response_dict["Items"] = items
    response_dict["body"] = json.dumps(answer).encode()


# botocore's path for TransactWriteItems' ResourceArnList; another path is left to jmespath
TRANSACTION_TABLES = (
    "TransactItems[*].[ConditionCheck.TableName, Put.TableName, Delete.TableName, "
    "Update.TableName][]"
)
_TRANSACTION_KINDS = ("ConditionCheck", "Put", "Delete", "Update")


def transaction_tables(call_args: dict[str, Any]) -> list[str]:
    """What :data:`TRANSACTION_TABLES` finds: each item's table, in order (jmespath drops
    the kinds an item is not)."""
    return [
        action["TableName"]
        for item in call_args.get("TransactItems") or []
        for kind in _TRANSACTION_KINDS
        if (action := item.get(kind)) is not None and "TableName" in action
    ]


def _fast_context_parameters(client: DynamoDBClient) -> None:
    resolver = getattr(client, "_ruleset_resolver", None)
    botocore_resolve = getattr(resolver, "_resolve_param_as_operation_context_param", None)
    transaction = client.meta.service_model.operation_model("TransactWriteItems")
    parameters: dict[str, Any] = dict(transaction.operation_context_parameters or {})
    if botocore_resolve is None or parameters.get("ResourceArnList", {}).get("path") != (
        TRANSACTION_TABLES
    ):
        return  # another botocore: its own search stays

    def resolve(param_name: str, operation_model: OperationModel, call_args: Any) -> Any:
        if param_name == "ResourceArnList" and operation_model.name == "TransactWriteItems":
            return transaction_tables(call_args)
        return botocore_resolve(param_name, operation_model, call_args)

    resolver._resolve_param_as_operation_context_param = resolve  # type: ignore[union-attr]


def speak_wire_json(client: DynamoDBClient) -> DynamoDBClient:
    """Give ``client`` the encoding and decoding above (see the module's docstring)."""
    if client.meta.service_model.resolved_protocol != "json":
        return client  # a botocore that speaks another protocol to DynamoDB: leave it as is
    client._serializer = _WireSerializer(client._serializer)  # type: ignore[attr-defined]
    client.meta.events.register("before-parse.dynamodb.Query", _items_by_json)
    _fast_context_parameters(client)
    return client
