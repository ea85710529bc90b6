"""The store's item conversion: what boto3's TypeSerializer/TypeDeserializer would store and
read back, without their Decimal and JSON round trips."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from rollout_monitor.store.items import from_item, to_item

DOCUMENTS: list[dict[str, Any]] = [
    {"s": "text", "empty": "", "yes": True, "no": False, "gone": None},
    {"int": 7, "negative": -3, "big": 10**20, "whole_float": 1_800_000_000.0, "half": 0.5},
    {"tiny": 1e-7, "nested": {"list": [1, "a", None, {"x": [True]}], "empty": {}, "none": []}},
]


def _boto3_item(document: dict[str, Any]) -> dict[str, Any]:
    plain = json.loads(json.dumps(document), parse_float=Decimal)
    return {k: TypeSerializer().serialize(v) for k, v in plain.items() if v is not None}


def _numbers(item: dict[str, Any]) -> Any:
    """An item with every number as a Decimal: '1E-7' and '1e-07' are the same number."""
    deserializer = TypeDeserializer()
    return {k: deserializer.deserialize(v) for k, v in item.items()}


@pytest.mark.parametrize("document", DOCUMENTS)
def test_items_hold_what_boto3_would_store(document: dict[str, Any]) -> None:
    item = to_item(document)
    assert _numbers(item) == _numbers(_boto3_item(document))
    assert "gone" not in item  # None at the top is left out, as before


@pytest.mark.parametrize("document", DOCUMENTS)
def test_items_read_back_as_plain_json_whole_numbers_as_int(document: dict[str, Any]) -> None:
    back = from_item(to_item(document))
    assert back == {k: v for k, v in document.items() if v is not None}
    assert type(back.get("whole_float", 0)) is int  # as boto3's Decimal made it
    assert from_item(_boto3_item(document)) == back


def test_numbers_dynamodb_cannot_store_are_refused() -> None:
    for value in (float("nan"), float("inf")):
        with pytest.raises(TypeError, match="cannot store"):
            to_item({"n": value})


def test_other_types_go_to_boto3() -> None:
    assert to_item({"d": Decimal("1.25"), "b": b"\x00"}) == {
        "d": {"N": "1.25"},
        "b": {"B": b"\x00"},
    }
    assert from_item({"ss": {"SS": ["a", "b"]}, "ns": {"NS": ["1", "2.5"]}}) == {
        "ss": ["a", "b"],
        "ns": [1, 2.5],
    }


NUMBER_TEXTS = [
    "0", "7", "-3", "100000000000000000000", "1800000000.0", "-0.0", "0.0", "12.25",
    "-12.25", "0.5", "1E-7", "1e-07", "1764288000.123456", "1E+2", "9.99E+125", "1.50",
    "1.0000000000000000001", "-1799999940.0", "123.000", "0.1234567890123456789012345678901234567",
]  # fmt: skip


@pytest.mark.parametrize("text", NUMBER_TEXTS)
def test_numbers_read_as_decimal_reads_them_whole_as_int(text: str) -> None:
    number = Decimal(text)
    expected = int(number) if number == number.to_integral_value() else float(number)

    value = from_item({"n": {"N": text}})["n"]

    assert (value, type(value)) == (expected, type(expected))
