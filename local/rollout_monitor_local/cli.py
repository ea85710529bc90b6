"""``rollout-monitor``: the monitor on one machine, without AWS (and without a Cerebras key).

rollout-monitor local                 the demo: five rollouts through the whole stack
rollout-monitor local --keep-running  then go on; send requests from another shell with
rollout-monitor request ...           a Deploy Requested event onto a running local stack
rollout-monitor simulator             the Cerebras simulator alone, on loopback
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

DEFAULT_LOG = Path(".local") / "rollout-monitor.log"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rollout-monitor", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    local = commands.add_parser("local", help="run the whole monitor on this machine")
    local.add_argument(
        "--scenario",
        action="append",
        choices=["success", "error", "rollback", "stall", "invalid", "none"],
        help="play only these stories (repeat the option); default all, 'none' for none",
    )
    local.add_argument("--speed", type=float, default=20.0, help="simulated seconds per second")
    local.add_argument("--stall-after", type=float, default=120.0, help="simulated seconds")
    local.add_argument("--poll-interval", type=float, default=10.0, help="simulated seconds")
    local.add_argument("--timeout", type=float, default=50.0, help="give up after (seconds)")
    local.add_argument("--keep-running", action="store_true", help="go on after the story")
    local.add_argument("--plain", action="store_true", help="plain lines, even on a terminal")
    local.add_argument("--log-file", type=Path, default=DEFAULT_LOG, help="functions' logs")
    real = local.add_argument_group(
        "real Cerebras", "deploy for real (AWS still local); the key is read from CEREBRAS_API_KEY"
    )
    real.add_argument("--cerebras-url", help="e.g. https://api.cerebras.ai")
    real.add_argument("--endpoint", help="the endpoint id to deploy to")
    real.add_argument("--model", help="orgs/<org>/models/<arch>/versions/<id|alias>")

    request = commands.add_parser("request", help="send Deploy Requested to a local stack")
    request.add_argument("--aws-endpoint-url", required=True, help="printed by `local`")
    request.add_argument("--bus", default="rollout-monitor-rollouts")
    request.add_argument("--endpoint", required=True)
    request.add_argument("--model", required=True)
    request.add_argument("--request-id")
    request.add_argument("--force", action="store_true")

    simulator = commands.add_parser("simulator", help="serve the Cerebras simulator on loopback")
    simulator.add_argument("--port", type=int, default=8787)

    args = parser.parse_args(argv)
    if args.command == "simulator":
        return _serve_simulator(args.port)
    if args.command == "request":
        return _request(args)
    if args.cerebras_url and not (args.endpoint and args.model):
        parser.error("--cerebras-url needs --endpoint and --model")
    return _local(args)


def _serve_simulator(port: int) -> int:
    import uvicorn  # noqa: PLC0415

    from rollout_monitor_local.simulator import DEFAULT_KEY, Simulator  # noqa: PLC0415

    print(f"Cerebras simulator on http://127.0.0.1:{port}  (key: {DEFAULT_KEY})", flush=True)
    uvicorn.run(Simulator().app, host="127.0.0.1", port=port, log_level="warning")
    return 0


def _request(args: argparse.Namespace) -> int:
    import boto3  # noqa: PLC0415

    detail = {"endpoint_id": args.endpoint, "model": args.model, "force": args.force}
    if args.request_id:
        detail["request_id"] = args.request_id
    events = boto3.client(
        "events",
        endpoint_url=args.aws_endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",  # moto's, not a secret
    )
    answer = events.put_events(
        Entries=[
            {
                "Source": "local.cli",
                "DetailType": "Deploy Requested",
                "Detail": json.dumps(detail),
                "EventBusName": args.bus,
            }
        ]
    )
    print(json.dumps(answer["Entries"]))
    return 1 if answer.get("FailedEntryCount") else 0


def _local(args: argparse.Namespace) -> int:
    from rollout_monitor_local.devstack import (  # noqa: PLC0415
        DEFAULT_STORY,
        DevStack,
        StoryItem,
        follow,
        play,
    )
    from rollout_monitor_local.view import LiveView, PlainView, View, summary  # noqa: PLC0415

    started = time.monotonic()
    if args.cerebras_url:
        story: tuple[StoryItem, ...] = (
            StoryItem(
                "real",
                {
                    "endpoint_id": args.endpoint,
                    "model": args.model,
                    "request_id": f"local-{int(time.time())}",
                    "requested_by": os.environ.get("USER", "local"),
                    "reason": "rollout-monitor local against the real API",
                },
                final_status="done",
            ),
        )
        speed = 1.0
        api_key = os.environ.get("CEREBRAS_API_KEY")
        if not api_key:
            print("set CEREBRAS_API_KEY to the management key", file=sys.stderr)
            return 2
    else:
        chosen = set(args.scenario or ["success", "error", "rollback", "stall", "invalid"])
        story = tuple(item for item in DEFAULT_STORY if item.label in chosen)
        speed = args.speed
        api_key = None
    plain = args.plain or not sys.stdout.isatty()
    view: View = PlainView() if plain else LiveView()
    stack = DevStack(
        speed=speed,
        poll_interval=args.poll_interval,
        stall_after=args.stall_after,
        cerebras_url=args.cerebras_url,
        api_key=api_key,
        log_file=args.log_file,
    )
    with stack, view:
        target = args.cerebras_url or f"the Cerebras simulator at {stack.cerebras_base_url}"
        view.say(
            f"stack '{stack.stack.name}' created from template.yaml in moto at {stack.moto_url}; "
            f"{target}; {speed:g}x time"
        )
        if args.cerebras_url:
            verdict = follow(
                stack, story[0], timeout=args.timeout, on_step=lambda ls: view.update(stack, ls)
            )
        else:
            verdict = play(
                stack, story, timeout=args.timeout, on_step=lambda lines: view.update(stack, lines)
            )
        if args.keep_running:
            view.say(
                "running; send requests from another shell: rollout-monitor request "
                f"--aws-endpoint-url {stack.moto_url} --endpoint my-org-llama-3.3-70b "
                "--model orgs/my-org/models/llama-3.3-70b/versions/succeeds --force  (Ctrl-C ends)"
            )
            try:
                while True:
                    view.update(stack, stack.step())
                    time.sleep(0.1)
            except KeyboardInterrupt:
                pass
    for line in summary(verdict, time.monotonic() - started):
        print(line)
    print(f"Function logs: {args.log_file}")
    return 0 if verdict.ok else 1


if __name__ == "__main__":
    sys.exit(main())
