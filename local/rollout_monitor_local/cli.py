"""``rollout-monitor``: developer commands that run on one machine, without AWS or a key."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rollout-monitor")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "local", help="play deploy requests through the template's stack in moto and the simulator"
    )
    serve = commands.add_parser("simulator", help="serve the Cerebras simulator on loopback")
    serve.add_argument("--port", type=int, default=8787)
    args = parser.parse_args(argv)
    if args.command == "simulator":
        return _serve_simulator(args.port)
    return _local()


def _serve_simulator(port: int) -> int:
    import uvicorn  # noqa: PLC0415

    from rollout_monitor_local.simulator import DEFAULT_KEY, Simulator  # noqa: PLC0415

    print(f"Cerebras simulator on http://127.0.0.1:{port}  (key: {DEFAULT_KEY})", flush=True)
    uvicorn.run(Simulator().app, host="127.0.0.1", port=port, log_level="warning")
    return 0


STORY: list[tuple[str, dict[str, object]]] = [
    ("succeeds", {"request_id": "demo-1", "reason": "promote nightly fine-tune"}),
    ("succeeds", {"request_id": "demo-1", "reason": "the same request, delivered again"}),
    ("errors", {"request_id": "demo-2", "reason": "a second rollout while one is in flight"}),
    ("errors", {"request_id": "demo-3", "force": True, "reason": "forced"}),
    ("succeeds", {"request_id": "demo-4", "endpoint_id": "../etc", "reason": "invalid"}),
]


def _local() -> int:
    """The deploy path on the local stack. (The poller, alerts and live view: issues 4-6.)"""
    os.environ.update(
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ACCESS_KEY_ID="local",
        AWS_SECRET_ACCESS_KEY="local",
        POWERTOOLS_METRICS_DISABLED="true",
    )
    import boto3  # noqa: PLC0415
    from moto import mock_aws  # noqa: PLC0415

    from rollout_monitor_local.router import Router  # noqa: PLC0415
    from rollout_monitor_local.runtime import FunctionRuntime  # noqa: PLC0415
    from rollout_monitor_local.server import serve  # noqa: PLC0415
    from rollout_monitor_local.simulator import DEFAULT_KEY, Simulator  # noqa: PLC0415
    from rollout_monitor_local.stack import create_stack  # noqa: PLC0415

    started = time.monotonic()
    simulator = Simulator()
    with mock_aws(), serve(simulator.app) as url:
        secret = boto3.client("secretsmanager").create_secret(
            Name="rollout-monitor/cerebras-key", SecretString=DEFAULT_KEY
        )
        stack = create_stack(
            parameters={"CerebrasApiKeySecretArn": secret["ARN"], "CerebrasApiBaseUrl": url}
        )
        print(f"stack {stack.name} from template.yaml; Cerebras simulator at {url}")
        runtimes = {k: FunctionRuntime(spec) for k, spec in stack.functions.items()}
        router = Router(stack, runtimes)
        events = boto3.client("events")
        for scenario, extra in STORY:
            detail: dict[str, object] = {
                "endpoint_id": "my-org-llama-3.3-70b",
                "model": f"orgs/my-org/models/llama-3.3-70b/versions/{scenario}",
                "requested_by": "demo@example.com",
            } | extra
            print(f"\n>> Deploy Requested {json.dumps(detail)}")
            events.put_events(
                Entries=[
                    {
                        "Source": "demo",
                        "DetailType": "Deploy Requested",
                        "Detail": json.dumps(detail),
                        "EventBusName": stack.outputs["EventBusName"],
                    }
                ]
            )
            router.deliver()
            for event in router.read_tap():
                body = event["detail"]
                summary = body.get("deployment_id") or f"{body['reason']}: {body['message']}"
                print(f"<< {event['detail-type']}: {summary}")
        calls = simulator.count("POST")
        print(
            f"\n{calls} deployModel call(s), {len(router.emitted)} event(s), "
            f"{len(router.dead_letters)} failure(s), {time.monotonic() - started:.1f}s"
        )
        expected = [
            "Deployment Submitted",
            "Deployment Rejected",
            "Deployment Submitted",
            "Deployment Rejected",
        ]
        ok = calls == 2 and [e["detail-type"] for e in router.emitted] == expected
        print("the story played as scripted" if ok else "UNEXPECTED: see above")
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
