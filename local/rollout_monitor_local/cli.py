"""``rollout-monitor``: operate a monitor stack, or run the whole monitor on one machine.

rollout-monitor deploy --endpoint E --model M [--wait]   request a deploy, follow it (exit code)
rollout-monitor status | watch | history | undo          what is in flight, what happened, undo
rollout-monitor local                 the demo: five rollouts through the whole stack
rollout-monitor local --keep-running  then go on; the commands above reach it with
                                      --aws-endpoint-url <the moto URL it prints>
rollout-monitor simulator             the Cerebras simulator alone, on loopback
rollout-monitor stack-env             a deployed stack's outputs, as shell exports
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rollout_monitor_local import stackenv
from rollout_monitor_local.control import cli as control
from rollout_monitor_local.story import DEFAULT_SCENARIOS, STORIES

if TYPE_CHECKING:
    from rollout_monitor_local.devstack import DevStack
    from rollout_monitor_local.story import Verdict
    from rollout_monitor_local.view import View

RUNS_DIR = Path(".local") / "runs"
EXIT_MISCONFIGURED = stackenv.EXIT_AWS  # the monitor unreachable or misconfigured


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "stack-env":
        return stackenv.run(args)
    if args.command == "simulator":
        return _serve_simulator(args.port)
    if args.command in control.COMMANDS:
        return control.run(args)
    if args.cerebras_url and not (args.endpoint and args.model):
        parser.error("--cerebras-url needs --endpoint and --model")
    return _local(args)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rollout-monitor",
        description="Operate a Cerebras rollout monitor stack (deploy and wait, status, watch, "
        "history, undo), or run the whole monitor on this machine.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    local = commands.add_parser("local", help="run the whole monitor on this machine")
    local.add_argument(
        "--scenario",
        action="append",
        choices=[*STORIES, "none"],
        help="play only these simulator scenarios (repeat the option); default: "
        f"{', '.join(DEFAULT_SCENARIOS)}; 'none' for an empty stack",
    )
    local.add_argument(
        "--speed",
        type=float,
        default=20.0,
        help="simulated seconds shown per real second; it only paces the display, the "
        "events are the same at any speed (0: as fast as the machine goes; default 20)",
    )
    local.add_argument(
        "--stall-after",
        type=float,
        default=120.0,
        help="simulated seconds without progress before a rollout is reported stalled",
    )
    local.add_argument(
        "--poll-interval", type=float, default=10.0, help="simulated seconds between poller cycles"
    )
    local.add_argument(
        "--timeout",
        type=float,
        default=900.0,
        help="give up after this many simulated seconds (real seconds with --cerebras-url)",
    )
    local.add_argument(
        "--keep-running",
        action="store_true",
        help="after the story, keep the stack running for requests from another shell",
    )
    local.add_argument(
        "--plain", action="store_true", help="plain lines, even on a terminal (default off a tty)"
    )
    local.add_argument(
        "--log-file",
        type=Path,
        help=f"where the functions' logs go (default: a new file under {RUNS_DIR}/ per run)",
    )
    real = local.add_argument_group(
        "real Cerebras", "deploy for real (AWS still local); the key is read from CEREBRAS_API_KEY"
    )
    real.add_argument(
        "--cerebras-url", help="the Management API's base URL, e.g. https://api.cerebras.ai"
    )
    real.add_argument("--endpoint", help="the endpoint id to deploy to")
    real.add_argument("--model", help="orgs/<org>/models/<arch>/versions/<id|alias>")

    simulator = commands.add_parser("simulator", help="serve the Cerebras simulator on loopback")
    simulator.add_argument("--port", type=int, default=8787, help="the loopback port to serve on")
    control.register(commands)
    stackenv.register(commands)
    return parser


def _serve_simulator(port: int) -> int:
    import uvicorn  # noqa: PLC0415

    from rollout_monitor_local.simulator import DEFAULT_KEY, Simulator  # noqa: PLC0415

    print(f"Cerebras simulator on http://127.0.0.1:{port}  (key: {DEFAULT_KEY})", flush=True)
    uvicorn.run(Simulator().app, host="127.0.0.1", port=port, log_level="warning")
    return 0


def _run_log() -> Path:
    return RUNS_DIR / f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}" / "functions.log"


def _local(args: argparse.Namespace) -> int:
    from rollout_monitor_local.story import StoryItem, judge  # noqa: PLC0415
    from rollout_monitor_local.view import LiveView, PlainView, summary  # noqa: PLC0415

    started = time.monotonic()
    log_file = args.log_file or _run_log()
    api_key = None
    if args.cerebras_url:
        api_key = os.environ.get("CEREBRAS_API_KEY")
        if not api_key:
            print("rollout-monitor: set CEREBRAS_API_KEY to the management key", file=sys.stderr)
            return 2
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
    else:
        chosen = args.scenario or list(DEFAULT_SCENARIOS)
        story = tuple(item for name, item in STORIES.items() if name in chosen)
    plain = args.plain or not sys.stdout.isatty()
    view: View = PlainView() if plain else LiveView()
    view.__enter__()  # the first frame, before the stack's heavy imports
    view.say("starting the local stack: moto server, Cerebras simulator, template.yaml ...")
    from rollout_monitor_local.devstack import DevStack, follow, play  # noqa: PLC0415

    stack = DevStack(
        speed=args.speed if not args.cerebras_url else 1.0,
        poll_interval=args.poll_interval,
        stall_after=args.stall_after,
        cerebras_url=args.cerebras_url,
        api_key=api_key,
        log_file=log_file,
    )
    verdict: Verdict | None = None
    with view:
        try:
            with stack:
                target = args.cerebras_url or f"the Cerebras simulator at {stack.cerebras_base_url}"
                clock = "real time" if args.cerebras_url else "a virtual clock"
                view.say(
                    f"stack '{stack.stack.name}' created from template.yaml in moto at "
                    f"{stack.moto_url}; {target}; {clock}"
                )
                view.update(stack, [])

                def on_step(lines: list[str]) -> None:
                    view.update(stack, lines)

                if args.cerebras_url:
                    verdict = follow(stack, story[0], timeout=args.timeout, on_step=on_step)
                else:
                    verdict = play(stack, story, timeout=args.timeout, on_step=on_step)
                if args.keep_running:
                    _keep_running(stack, view)
                    verdict = judge(story, stack.seen)  # everything seen, the story included
        except KeyboardInterrupt:
            verdict = judge(story, stack.seen)
            verdict.interrupted = True
    assert verdict is not None
    for line in summary(verdict, time.monotonic() - started):
        print(line)
    print(f"Function logs: {log_file}")
    if verdict.interrupted and not args.keep_running:
        return 130
    return 0 if verdict.ok else 1


def _keep_running(stack: DevStack, view: View) -> None:
    if stack.virtual and stack.speed <= 0:
        stack.speed = 20.0  # a running stack follows real time, sped up
    view.say(
        "running; from another shell (with AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local "
        f"AWS_REGION=us-east-1): rollout-monitor deploy --aws-endpoint-url {stack.moto_url} "
        "--endpoint my-org-llama-3.3-70b --model orgs/my-org/models/llama-3.3-70b/versions/"
        "succeeds --force --wait; or status, watch, history  (Ctrl-C ends)"
    )
    try:
        while True:
            view.update(stack, stack.step())
            stack.pause()
    except KeyboardInterrupt:
        return


if __name__ == "__main__":
    sys.exit(main())
