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

``tests/unit/test_wire.py`` checks both against botocore's own encoding and parsing.
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


def speak_wire_json(client: DynamoDBClient) -> DynamoDBClient:
    """Give ``client`` the encoding and decoding above (see the module's docstring)."""
    if client.meta.service_model.resolved_protocol != "json":
        return client  # a botocore that speaks another protocol to DynamoDB: leave it as is
    client._serializer = _WireSerializer(client._serializer)  # type: ignore[attr-defined]
    client.meta.events.register("before-parse.dynamodb.Query", _items_by_json)
    return client
