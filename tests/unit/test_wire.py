"""The poller's DynamoDB client sends and reads what botocore itself would (store/wire.py)."""

from __future__ import annotations

import json
from typing import Any

import boto3
import jmespath
import pytest
from botocore.awsrequest import AWSResponse
from botocore.config import Config
from botocore.serialize import create_serializer

from rollout_monitor.store.wire import (
    ENCODED,
    TRANSACTION_TABLES,
    speak_wire_json,
    transaction_tables,
)
from rollout_monitor.wiring import dynamodb_client

ITEM = {
    "pk": {"S": "DEPLOYMENT#d-1"},
    "status": {"S": 'in_progress \u00e9\u2028"quoted"'},
    "updated_replicas": {"N": "3"},
    "listed": {"BOOL": True},
    "error": {"NULL": True},
    "pending_events": {"L": [{"M": {"id": {"S": "e-1"}, "at": {"N": "1.5"}}}]},
    "tags": {"SS": ["a", "b"]},
}
CALLS: dict[str, dict[str, Any]] = {
    "PutItem": {
        "TableName": "t",
        "Item": ITEM,
        "ConditionExpression": "#s = :s",
        "ExpressionAttributeNames": {"#s": "status"},
        "ExpressionAttributeValues": {":s": {"S": "not_started"}},
    },
    "UpdateItem": {
        "TableName": "t",
        "Key": {"pk": {"S": "DEPLOYMENT#d-1"}, "sk": {"S": "META"}},
        "UpdateExpression": "REMOVE pending_events SET outbox_lease_until = :zero",
        "ExpressionAttributeValues": {":zero": {"N": "0"}},
    },
    "TransactWriteItems": {
        "TransactItems": [
            {"Put": {"TableName": "t", "Item": ITEM}},
            {
                "Update": {
                    "TableName": "t",
                    "Key": {"pk": {"S": "x"}},
                    "UpdateExpression": "SET a = :a",
                    "ExpressionAttributeValues": {":a": {"N": "1"}},
                }
            },
            {"Delete": {"TableName": "t", "Key": {"pk": {"S": "y"}}}},
        ],
        "ClientRequestToken": "token-1",
    },
}


@pytest.fixture(autouse=True)
def _credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Requests are signed before the hook answers them; no AWS is reached."""
    for name, value in (("AWS_ACCESS_KEY_ID", "k"), ("AWS_SECRET_ACCESS_KEY", "s")):
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_PROFILE", raising=False)


def _client() -> Any:
    return boto3.client(
        "dynamodb", region_name="us-east-1", config=Config(parameter_validation=False)
    )


@pytest.mark.parametrize("operation", sorted(ENCODED))
def test_each_bulk_write_is_the_request_botocore_would_send(operation: str) -> None:
    client = speak_wire_json(_client())
    model = client.meta.service_model.operation_model(operation)
    ours = client._serializer.serialize_to_request(CALLS[operation], model)
    theirs = create_serializer("json", include_validation=False).serialize_to_request(
        CALLS[operation], model
    )
    assert json.loads(ours.pop("body")) == json.loads(theirs.pop("body"))
    assert ours == theirs  # headers, method, URL, query string


def test_a_binary_value_is_refused_rather_than_sent_wrong() -> None:
    client = speak_wire_json(_client())
    model = client.meta.service_model.operation_model("PutItem")
    with pytest.raises(TypeError):
        client._serializer.serialize_to_request(
            {"TableName": "t", "Item": {"pk": {"B": b"\x00"}}}, model
        )


def test_other_operations_go_through_botocore() -> None:
    client = speak_wire_json(_client())
    model = client.meta.service_model.operation_model("DescribeTable")
    ours = client._serializer.serialize_to_request({"TableName": "t"}, model)
    assert json.loads(ours["body"]) == {"TableName": "t"}


def _query(client: Any, body: dict[str, Any]) -> dict[str, Any]:
    """Answer one Query with ``body``, as DynamoDB would, and return what the client parsed."""

    class Raw:
        def stream(self, **_: Any) -> Any:
            yield json.dumps(body).encode()

    client.meta.events.register_first(
        "before-send.dynamodb.Query", lambda **_: AWSResponse("https://x", 200, {}, Raw())
    )
    answer = client.query(TableName="t", KeyConditionExpression="pk = :p")
    answer.pop("ResponseMetadata")
    return answer  # type: ignore[no-any-return]


ANSWERS = [
    {
        "Items": [ITEM, {"pk": {"S": "2"}}],
        "Count": 2,
        "ScannedCount": 2,
        "LastEvaluatedKey": {"pk": {"S": "2"}},
    },
    {"Items": [], "Count": 0, "ScannedCount": 0},
    {"Items": [{"pk": {"S": "b"}, "blob": {"B": "AAE="}}], "Count": 1, "ScannedCount": 1},
]


@pytest.mark.parametrize("body", ANSWERS, ids=["page", "empty", "binary"])
def test_a_query_answer_is_read_as_botocore_reads_it(body: dict[str, Any]) -> None:
    assert _query(speak_wire_json(_client()), body) == _query(_client(), body)


def test_the_poller_store_client_speaks_wire_json() -> None:
    client = dynamodb_client(4)
    assert type(client._serializer).__name__ == "_WireSerializer"
    assert _query(client, ANSWERS[0])["Items"][0] == ITEM


@pytest.mark.parametrize(
    "transaction",
    [
        CALLS["TransactWriteItems"],
        {"TransactItems": [{"ConditionCheck": {"TableName": "c", "Key": {}}}, {"Put": {}}]},
        {"TransactItems": []},
    ],
)
def test_a_transaction_s_tables_are_what_botocore_s_search_finds(
    transaction: dict[str, Any],
) -> None:
    assert transaction_tables(transaction) == jmespath.search(TRANSACTION_TABLES, transaction)


def test_the_endpoint_rules_get_the_transaction_s_tables_from_the_comprehension() -> None:
    client = speak_wire_json(_client())
    model = client.meta.service_model.operation_model("TransactWriteItems")
    resolve = client._ruleset_resolver._resolve_param_as_operation_context_param
    args = CALLS["TransactWriteItems"]
    assert resolve("ResourceArnList", model, args) == ["t", "t", "t"]
    botocore_path = model.operation_context_parameters["ResourceArnList"]["path"]
    assert botocore_path == TRANSACTION_TABLES  # else the comprehension is not installed
    query = client.meta.service_model.operation_model("BatchGetItem")
    assert resolve("ResourceArnList", query, {"RequestItems": {"a": {}}}) == ["a"]  # jmespath's
