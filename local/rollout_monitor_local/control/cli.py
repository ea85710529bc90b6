"""The operator's subcommands of ``rollout-monitor``: deploy, release, status, watch, history,
undo.

Each finds the stack by name (``--stack``) from its CloudFormation outputs, with the standard
AWS credential chain (``--region``, ``--profile``); ``--aws-endpoint-url`` points the same
code at the local stack's moto server.
"""

from __future__ import annotations

import argparse
import sys

from rollout_monitor_local import samconfig
from rollout_monitor_local.control import commands
from rollout_monitor_local.control.monitor import (
    EXIT_INTERRUPTED,
    EXIT_MONITOR,
    Monitor,
    MonitorError,
    Target,
)

COMMANDS = ("deploy", "release", "status", "watch", "history", "undo")
DEFAULT_TIMEOUT = 3600.0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the operator's subcommands to ``rollout-monitor``'s parser."""
    stack = argparse.ArgumentParser(add_help=False)
    where = stack.add_argument_group("the stack")
    where.add_argument(
        "--stack",
        help="the monitor stack's name (default: stack_name in samconfig.toml, "
        f"else {samconfig.DEFAULT_STACK_NAME})",
    )
    where.add_argument("--region", help="its region (default: the AWS chain's, e.g. AWS_REGION)")
    where.add_argument("--profile", help="the AWS profile to use (default: the AWS chain's)")
    where.add_argument(
        "--aws-endpoint-url",
        help="the local stack's moto URL (what `rollout-monitor local` printed); never for AWS",
    )
    where.add_argument(
        "--poll-seconds",
        type=float,
        default=2.0,
        help="seconds between two reads of the table while waiting (default 2)",
    )

    deploy = subparsers.add_parser(
        "deploy",
        parents=[stack],
        help="request a deploy; report Submitted or Rejected; --wait follows the rollout",
        description="Put Deploy Requested on the stack's bus and report what became of it. "
        "Exit codes: 0 done (or submitted, without --wait), 1 error, rolled_back, cancelled "
        "or lost, 2 rejected, 3 timeout, 4 the monitor unreachable or misconfigured, 130 "
        "interrupted (Ctrl-C).",
    )
    _request_options(deploy)
    deploy.add_argument("--endpoint", required=True, help="the endpoint id to deploy to")
    deploy.add_argument(
        "--model", required=True, help="orgs/<org>/models/<arch>/versions/<id|alias>"
    )
    deploy.add_argument(
        "--request-id", help="the idempotency key: the same one never deploys twice (default: new)"
    )
    deploy.add_argument("--reason", help="why, shown in history and alerts")
    deploy.add_argument(
        "--team", help="the owning team: on every event and alert, for filter policies and rules"
    )
    deploy.add_argument(
        "--label",
        action="append",
        default=[],
        type=_label,
        metavar="KEY=VALUE",
        help="a routing label (repeatable), e.g. --label env=prod",
    )

    release = subparsers.add_parser(
        "release",
        parents=[stack],
        help="upload a version, wait for its sync, deploy it; --wait follows it all",
        description="Put Release Requested on the stack's bus: the monitor uploads the weights "
        "once, waits for the version's sync, then deploys it to the endpoint. Without --wait, "
        "report the upload (or the rejection); with it, follow the sync and the rollout. Exit "
        "codes as deploy's; 2 also for a sync that failed or did not end in time "
        "(version_not_ready).",
    )
    _request_options(release)
    release.add_argument("--org", required=True, help="the Cerebras org")
    release.add_argument("--arch", required=True, help="the model architecture id")
    release.add_argument("--weights", required=True, help="the weights' URI, s3://bucket/path")
    release.add_argument(
        "--alias", action="append", default=[], help="an alias for the new version (repeatable)"
    )
    release.add_argument("--endpoint", required=True, help="the endpoint id to deploy to")
    release.add_argument(
        "--request-id", help="the idempotency key: the same one never uploads twice (default: new)"
    )
    release.add_argument("--reason", help="why, shown in history and alerts")
    release.add_argument("--team", help="the owning team (as deploy's)")
    release.add_argument(
        "--label", action="append", default=[], type=_label, metavar="KEY=VALUE", help="as deploy's"
    )

    status = subparsers.add_parser(
        "status", parents=[stack], help="rollouts in flight and each endpoint's last outcome"
    )
    status.add_argument("--endpoint", help="only this endpoint")
    status.add_argument("--json", action="store_true", help="JSON (docs/cli.md) instead of a table")

    subparsers.add_parser(
        "watch", parents=[stack], help="a live board of every rollout in flight, until Ctrl-C"
    )

    history = subparsers.add_parser(
        "history", parents=[stack], help="a deployment's or an endpoint's transitions, with times"
    )
    which = history.add_mutually_exclusive_group(required=True)
    which.add_argument("--deployment", help="one deployment's id")
    which.add_argument("--endpoint", help="an endpoint: its latest deployments, newest first")
    history.add_argument(
        "--limit",
        type=_positive,
        default=10,
        help="how many of the endpoint's deployments (default 10)",
    )
    history.add_argument("--json", action="store_true", help="JSON (docs/cli.md) instead of text")

    undo = subparsers.add_parser(
        "undo",
        parents=[stack],
        help="redeploy the endpoint's last version whose rollout ended done",
        description="Redeploy, through Deploy Requested, the version (by number, not by an "
        "alias that may have moved) of the endpoint's last rollout that ended done, another "
        "version than its latest deployment's. Exit codes as deploy's; 2 also when there is "
        "nothing to undo.",
    )
    undo.add_argument("--endpoint", required=True, help="the endpoint to roll back")
    _request_options(undo)


def _request_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--force", action="store_true", help="deploy even if a rollout holds the endpoint"
    )
    parser.add_argument(
        "--wait", action="store_true", help="follow the rollout to its end (exit code by outcome)"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        help=f"give up waiting after this many seconds, exit 3 (default {DEFAULT_TIMEOUT:.0f})",
    )


def _label(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE")
    return key, value


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not at least 1")
    return value


def run(args: argparse.Namespace) -> int:
    """Run one operator subcommand; any failure of the monitor is one line and exit 4."""
    target = Target(
        stack=args.stack or samconfig.stack_name(),
        region=args.region,
        profile=args.profile,
        endpoint_url=args.aws_endpoint_url,
    )
    try:
        session = commands.Session(Monitor.connect(target), poll_seconds=args.poll_seconds)
        return _dispatch(session, args)
    except MonitorError as exc:
        print(f"rollout-monitor {args.command}: {exc}", file=sys.stderr)
        return EXIT_MONITOR
    except KeyboardInterrupt:
        print(
            f"rollout-monitor {args.command}: interrupted; a requested rollout goes on "
            "(rollout-monitor status)",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED


def _dispatch(session: commands.Session, args: argparse.Namespace) -> int:
    match args.command:
        case "deploy":
            request = commands.Request(
                args.endpoint,
                args.model,
                args.request_id,
                args.reason,
                args.force,
                team=args.team,
                labels=dict(args.label),
            )
            return commands.deploy(session, request, wait=args.wait, timeout=args.timeout)
        case "release":
            release = commands.Release(
                args.org,
                args.arch,
                args.weights,
                args.endpoint,
                tuple(args.alias),
                args.request_id,
                args.reason,
                args.force,
                team=args.team,
                labels=dict(args.label),
            )
            return commands.release(session, release, wait=args.wait, timeout=args.timeout)
        case "status":
            return commands.status(session, args.endpoint, as_json=args.json)
        case "watch":
            return commands.watch(session, live=sys.stdout.isatty())
        case "history":
            return commands.history(
                session,
                deployment_id=args.deployment,
                endpoint_id=args.endpoint,
                limit=args.limit,
                as_json=args.json,
            )
        case "undo":
            return commands.undo(
                session, args.endpoint, force=args.force, wait=args.wait, timeout=args.timeout
            )
    raise AssertionError(args.command)
