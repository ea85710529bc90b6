"""Where the management key comes from."""

from __future__ import annotations

import json

import boto3
import pytest

from rollout_monitor.cerebras.credentials import (
    CerebrasSettings,
    MissingCredentialsError,
    key_source,
)


def test_no_key_configured_says_what_to_set(aws: None) -> None:
    with pytest.raises(MissingCredentialsError, match="CEREBRAS_API_KEY_SECRET_ARN"):
        key_source(CerebrasSettings())()


def test_a_local_key_from_the_environment(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CEREBRAS_API_KEY", "local-key")
    assert key_source(CerebrasSettings())().get_secret_value() == "local-key"


@pytest.mark.parametrize(
    ("stored", "expected"),
    [("bare-key\n", "bare-key"), (json.dumps({"api_key": "json-key"}), "json-key")],
)
def test_the_secret_holds_the_bare_key_or_json(
    aws: None, monkeypatch: pytest.MonkeyPatch, stored: str, expected: str
) -> None:
    arn = boto3.client("secretsmanager").create_secret(Name=f"k-{expected}", SecretString=stored)[
        "ARN"
    ]
    monkeypatch.setenv("CEREBRAS_API_KEY_SECRET_ARN", arn)
    monkeypatch.setenv("CEREBRAS_API_KEY", "ignored-when-a-secret-is-set")
    key = key_source(CerebrasSettings())()
    assert key.get_secret_value() == expected
    assert expected not in repr(key)
