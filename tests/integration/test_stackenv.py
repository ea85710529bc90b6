"""`rollout-monitor stack-env`: the deployed stack's outputs as exports, or one line and exit 4."""

from __future__ import annotations

import argparse
import subprocess

import pytest

from rollout_monitor_local import samconfig, stackenv
from rollout_monitor_local.stack import Stack


def stack_env(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="rollout-monitor")
    stackenv.register(parser.add_subparsers(dest="command", required=True))
    return stackenv.run(parser.parse_args(["stack-env", *argv]))


def test_prints_every_output_as_an_export(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    assert stack.name == samconfig.stack_name() == "rollout-monitor"
    assert stack_env() == 0  # the stack named in samconfig.toml, in the default region
    out, err = capsys.readouterr()
    assert err == ""
    lines = out.splitlines()
    assert f"export EVENT_BUS_NAME={stack.outputs['EventBusName']}" in lines
    assert f"export ALERT_TOPIC_ARN={stack.outputs['AlertTopicArn']}" in lines
    assert f"export TABLE_NAME={stack.outputs['TableName']}" in lines
    assert len(lines) == len(stack.outputs)
    assert stack.outputs["EventBusName"] == "rollout-monitor-rollouts"


def test_exports_evaluate_in_a_shell(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    assert stack_env("--stack", "rollout-monitor", "--region", "us-east-1") == 0
    script = capsys.readouterr().out + 'printf "%s\\n" "$EVENT_BUS_NAME" "$ALERT_TOPIC_ARN"'
    shown = subprocess.run(  # noqa: S603  (the script is our own output)
        ["/bin/sh", "-c", script], capture_output=True, text=True, check=True
    ).stdout
    assert shown.splitlines() == [stack.outputs["EventBusName"], stack.outputs["AlertTopicArn"]]


def test_variable_names_follow_the_output_keys() -> None:
    assert stackenv.variable("EventBusName") == "EVENT_BUS_NAME"
    assert stackenv.variable("UndeliveredEventsQueueUrl") == "UNDELIVERED_EVENTS_QUEUE_URL"


def test_a_wrong_stack_name_is_one_line_and_exit_4(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    assert stack_env("--stack", "no-such-stack") == 4
    out, err = capsys.readouterr()
    assert out == ""
    assert err == (
        "rollout-monitor stack-env: no stack 'no-such-stack' in us-east-1: pass --stack NAME "
        "(and --region), or deploy it with `make deploy`\n"
    )


def test_no_credentials_is_one_line_and_exit_4(
    no_aws_credentials: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert stack_env("--region", "us-east-1") == 4
    out, err = capsys.readouterr()
    assert out == ""
    assert err == (
        "rollout-monitor stack-env: no AWS credentials found: configure them with "
        "`aws configure` or AWS_PROFILE/AWS_ACCESS_KEY_ID\n"
    )


def test_an_unknown_profile_is_one_line_and_exit_4(
    no_aws_credentials: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert stack_env("--profile", "nobody") == 4
    _, err = capsys.readouterr()
    assert err == "rollout-monitor stack-env: The config profile (nobody) could not be found\n"
