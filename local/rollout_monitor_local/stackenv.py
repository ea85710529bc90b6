"""``rollout-monitor stack-env``: the deployed stack's outputs, as shell exports.

    eval "$(.venv/bin/rollout-monitor stack-env)"
    echo "$EVENT_BUS_NAME" "$ALERT_TOPIC_ARN"

Each CloudFormation output becomes one variable (``EventBusName`` -> ``EVENT_BUS_NAME``), so
no command has to know the stack's or the bus's name. The stack is the one `make deploy`
deployed: ``stack_name`` in ``samconfig.toml``, unless ``--stack`` says otherwise.
"""

from __future__ import annotations

import argparse
import re
import shlex
import sys
import tomllib
from dataclasses import dataclass
from typing import Any

from rollout_monitor_local import samconfig

EXIT_AWS = 4  # no credentials, no such stack, AWS unreachable


class StackEnvError(Exception):
    """What went wrong, in one line."""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``stack-env`` to the ``rollout-monitor`` command's subparsers."""
    parser = subparsers.add_parser(
        "stack-env",
        help="print the deployed stack's outputs as shell exports",
        description="Print `export NAME=value` for each output of the deployed stack; use as "
        'eval "$(rollout-monitor stack-env)". Exits 4 when the stack cannot be read.',
    )
    parser.add_argument(
        "--stack",
        help="the stack's name (default: stack_name in samconfig.toml, "
        f"else {samconfig.DEFAULT_STACK_NAME})",
    )
    parser.add_argument(
        "--region",
        help="the stack's region (default: AWS_DEFAULT_REGION or the profile's, else the region "
        "saved in samconfig.toml)",
    )
    parser.add_argument(
        "--profile",
        help="the AWS CLI profile to use (default: AWS_PROFILE, else the default chain)",
    )


def run(args: argparse.Namespace) -> int:
    try:
        stack = args.stack or samconfig.stack_name()
        outputs = stack_outputs(stack, region=args.region, profile=args.profile)
    except StackEnvError as exc:
        print(f"rollout-monitor stack-env: {exc}", file=sys.stderr)
        return EXIT_AWS
    except tomllib.TOMLDecodeError as exc:
        print(f"rollout-monitor stack-env: samconfig.toml: {exc}", file=sys.stderr)
        return EXIT_AWS
    for key, value in sorted(outputs.items()):
        print(f"export {variable(key)}={shlex.quote(value)}")
    return 0


def variable(output_key: str) -> str:
    """``AlertTopicArn`` -> ``ALERT_TOPIC_ARN``."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", output_key).upper()


def stack_outputs(stack: str, *, region: str | None, profile: str | None) -> dict[str, str]:
    """The stack's outputs by key; :class:`StackEnvError` with one line if they cannot be read."""
    return Found.describe(stack, region=region, profile=profile).outputs


@dataclass(frozen=True)
class Found:
    """A stack as CloudFormation describes it, and the session that found it."""

    session: Any  # boto3.Session
    region: str | None
    outputs: dict[str, str]
    parameters: dict[str, str]

    @classmethod
    def describe(
        cls,
        stack: str,
        *,
        region: str | None,
        profile: str | None,
        endpoint_url: str | None = None,
    ) -> Found:
        """The stack by name; :class:`StackEnvError` with one line if it cannot be read."""
        session, region, description = _describe(stack, region, profile, endpoint_url)
        outputs = {o["OutputKey"]: o["OutputValue"] for o in description.get("Outputs", [])}
        if not outputs:
            raise StackEnvError(f"stack {stack!r} has no outputs ({description['StackStatus']})")
        parameters = {
            p["ParameterKey"]: p.get("ParameterValue", "")
            for p in description.get("Parameters", [])
        }
        return cls(session, region, outputs, parameters)


def _describe(
    stack: str, region: str | None, profile: str | None, endpoint_url: str | None
) -> tuple[Any, str | None, dict[str, Any]]:
    import boto3  # noqa: PLC0415  (not imported by the CLI's other commands)
    from botocore.exceptions import (  # noqa: PLC0415
        BotoCoreError,
        ClientError,
        NoCredentialsError,
        NoRegionError,
    )

    try:
        session = boto3.Session(profile_name=profile, region_name=region)
        region = session.region_name or samconfig.setting("region")
        cloudformation = session.client(
            "cloudformation", region_name=region, endpoint_url=endpoint_url
        )
        (description,) = cloudformation.describe_stacks(StackName=stack)["Stacks"]
    except NoCredentialsError as exc:
        raise StackEnvError(
            "no AWS credentials found: configure them with `aws configure` or "
            "AWS_PROFILE/AWS_ACCESS_KEY_ID"
        ) from exc
    except NoRegionError as exc:
        raise StackEnvError("no AWS region: pass --region or set AWS_DEFAULT_REGION") from exc
    except ClientError as exc:
        error = exc.response.get("Error", {})
        if "does not exist" in error.get("Message", ""):
            raise StackEnvError(
                f"no stack {stack!r} in {region}: pass --stack NAME (and --region), "
                "or deploy it with `make deploy`"
            ) from exc
        raise StackEnvError(f"{error.get('Code')}: {error.get('Message')}") from exc
    except BotoCoreError as exc:  # a missing profile, no network, a broken config
        raise StackEnvError(str(exc)) from exc
    return session, region, dict(description)
