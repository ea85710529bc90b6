"""The whole monitor on one machine: moto in server mode, the simulator, the template's stack.

:class:`DevStack` starts both servers on free loopback ports, creates the stack from
``template.yaml`` (as the tests do), loads every function the way Lambda would, delivers the
bus's events through the template's rules (:class:`Router`), and runs the poller on its
schedule. With the simulator, everything runs on one virtual clock that only :meth:`step`
moves: a step delivers what waits, runs one poller cycle, then moves time to the next cycle.
The simulator's rollouts, the poller's interval and the stall deadlines therefore give the
same events whatever the machine's load; real time only paces the display. Against the real
API the clock is the system's. :func:`play` runs a story (``story.py``) and judges it.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rollout_monitor.store.items import shard_of
from rollout_monitor_local.clock import Clock, ManualClock, SystemClock
from rollout_monitor_local.motoserver import moto_server
from rollout_monitor_local.pollqueue import VirtualPollQueue
from rollout_monitor_local.simulator import DEFAULT_KEY, Simulator
from rollout_monitor_local.stack import DEFAULT_TEMPLATE, Stack, create_stack
from rollout_monitor_local.story import (
    EXTRA_ENDPOINTS,
    IN_FLIGHT,
    TERMINAL,
    Observed,
    Row,
    StoryItem,
    Verdict,
    judge,
)

SCHEDULED_EVENT = Path(__file__).resolve().parents[2] / "events" / "scheduled-poll.json"
ALERTS_QUEUE = "local-alert-subscriber"
REAL_TIME_TICK_SECONDS = 0.2  # how often a stack on the system clock looks for work


def _forget_parameter_clients() -> None:
    from aws_lambda_powertools.utilities.parameters.constants import (  # noqa: PLC0415
        DEFAULT_PROVIDERS,
    )

    DEFAULT_PROVIDERS.clear()  # the providers hold the boto3 clients and their caches


class DevStack:
    """The local stack. Use as a context manager; :meth:`step` moves it forward."""

    def __init__(
        self,
        *,
        speed: float = 0.0,
        poll_interval: float = 10.0,
        stall_after: float = 120.0,
        alert_statuses: str = "error,rolled_back",
        unreachable_after: float = 600.0,
        cerebras_url: str | None = None,
        api_key: str | None = None,
        template: Path = DEFAULT_TEMPLATE,
        log_file: Path | None = None,
    ) -> None:
        """``speed``: simulated seconds shown per real second (pacing only; 0: no pacing)."""
        self.speed = speed
        self.poll_interval = poll_interval
        self.stall_after = stall_after
        self.alert_statuses = alert_statuses
        self.unreachable_after = unreachable_after
        # rollouts started outside the monitor (the demo's "external") are adopted
        self.discovery_orgs = "" if cerebras_url else "my-org"
        self.schedule_enabled = True  # False: the poller's trigger stopped (nothing runs it)
        self.real_cerebras = cerebras_url is not None
        self.cerebras_url = cerebras_url
        self.api_key = api_key or DEFAULT_KEY
        self.template = template
        self.log_file = log_file
        self.virtual = not self.real_cerebras
        self.clock: Clock = ManualClock(float(int(time.time()))) if self.virtual else SystemClock()
        self.simulator: Simulator | None = None
        self.seen = Observed()
        self.steps = 0
        self._exit = ExitStack()
        self._next_poll = 0.0

    # -- life cycle ---------------------------------------------------------------------------

    def __enter__(self) -> DevStack:
        try:
            self._start()
        except BaseException:
            self._exit.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._exit.close()

    def _start(self) -> None:
        from rollout_monitor_local.router import Router  # noqa: PLC0415
        from rollout_monitor_local.runtime import FunctionRuntime  # noqa: PLC0415
        from rollout_monitor_local.server import serve  # noqa: PLC0415

        saved = dict(os.environ)

        def restore() -> None:
            os.environ.clear()
            os.environ.update(saved)

        self._exit.callback(restore)
        # Powertools keeps its Secrets Manager client and cache per process: this stack's moto
        # server must not outlive it there.
        _forget_parameter_clients()
        self._exit.callback(_forget_parameter_clients)
        os.environ.update(
            AWS_DEFAULT_REGION="us-east-1",
            AWS_ACCESS_KEY_ID="local",
            AWS_SECRET_ACCESS_KEY="local",
            POWERTOOLS_METRICS_DISABLED="true",
        )
        os.environ.pop("AWS_PROFILE", None)
        self.moto_url = self._exit.enter_context(moto_server())
        os.environ["AWS_ENDPOINT_URL"] = self.moto_url
        if self.real_cerebras:
            assert self.cerebras_url is not None
            base_url = self.cerebras_url
        else:
            self.simulator = Simulator(clock=self.clock, api_key=self.api_key)
            for endpoint_id, arch in EXTRA_ENDPOINTS.items():
                self.simulator.add_endpoint(endpoint_id, arch)
            base_url = self._exit.enter_context(serve(self.simulator.app))
        self.cerebras_base_url = base_url
        import boto3  # noqa: PLC0415

        secret = boto3.client("secretsmanager").create_secret(
            Name="rollout-monitor/cerebras-key", SecretString=self.api_key
        )
        self.stack: Stack = create_stack(
            self.template,
            parameters={
                "CerebrasApiKeySecretArn": secret["ARN"],
                "CerebrasApiBaseUrl": base_url,
                "StallAfterSeconds": str(int(self.stall_after)),
                "PollIntervalSeconds": str(int(self.poll_interval)),
                "AlertStatuses": self.alert_statuses,
                "UnreachableAfterSeconds": str(int(self.unreachable_after)),
                "DiscoveryOrgs": self.discovery_orgs,
            },
        )
        overrides = {
            "CEREBRAS_RETRY_DEADLINE_SECONDS": "3",
            "CEREBRAS_TIMEOUT_SECONDS": "2",
            "POWERTOOLS_METRICS_DISABLED": "true",
            "AWS_MAX_CONCURRENCY": "1",  # moto serves one call at a time safely
        }
        self.runtimes = {
            logical_id: FunctionRuntime(spec, overrides)
            for logical_id, spec in self.stack.functions.items()
        }
        self._route_logs()
        self._use_clock()
        self.router = Router(self.stack, self.runtimes)
        self._alerts_queue = self._subscribe_alerts()
        self._scheduled = json.loads(SCHEDULED_EVENT.read_text())

    def _use_clock(self) -> None:
        """Every function reads this stack's clock; a wait moves the virtual clock."""
        waits = self._virtual_sleep if self.virtual else time.sleep
        for name in ("DeployFunction", "AlertFunction"):
            service = self.runtimes[name].module.service()
            service.now = self.clock.now
            service.sleep = waits
        poller = self.runtimes["PollerFunction"].module.runtime()
        poller.now = self.clock.now
        # Each step runs the poller as its schedule would; the chain's delayed messages,
        # on this clock, only need to exist (moto's SQS would hide them for real seconds).
        queue = VirtualPollQueue(self.clock.now)
        poller.trigger = queue
        shards = poller.settings.poll_shards
        self.runtimes["DeployFunction"].module.service().poll_now = lambda endpoint_id: queue.start(
            shard_of(endpoint_id, shards), 0
        )

    def _virtual_sleep(self, seconds: float) -> None:
        assert isinstance(self.clock, ManualClock)
        self.clock.advance(seconds)

    def _route_logs(self) -> None:
        from rollout_monitor.observability import logger  # noqa: PLC0415

        handler = logger.registered_handler
        if self.log_file is None:
            level = handler.level
            handler.setLevel(logging.CRITICAL + 1)
            self._exit.callback(lambda: handler.setLevel(level))
            return
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        stream = self._exit.enter_context(self.log_file.open("a"))
        previous = handler.setStream(stream)  # type: ignore[attr-defined]
        self._exit.callback(lambda: handler.setStream(previous))  # type: ignore[attr-defined]

    def _subscribe_alerts(self) -> str:
        """An SQS subscriber on the alert topic: alerts are read as any subscriber gets them."""
        import boto3  # noqa: PLC0415

        sqs = boto3.client("sqs")
        url = sqs.create_queue(QueueName=ALERTS_QUEUE)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        boto3.client("sns").subscribe(
            TopicArn=self.stack.outputs["AlertTopicArn"], Protocol="sqs", Endpoint=arn
        )
        return url

    # -- driving ------------------------------------------------------------------------------

    @property
    def poller(self) -> Any:
        return self.runtimes["PollerFunction"].module.runtime()

    def request(self, detail: dict[str, Any], detail_type: str = "Deploy Requested") -> None:
        """Put a request (``Deploy Requested``, ``Release Requested``) on the stack's bus, as a
        user would."""
        import boto3  # noqa: PLC0415

        key = str(detail.get("request_id", f"request-{len(self.seen.rows)}"))
        version = detail.get("model") or "/".join(detail.get("version_aliases") or ["?"])
        self.seen.rows[key] = Row(
            key=key,
            label=key.removeprefix("demo-"),
            endpoint_id=str(detail.get("endpoint_id", "?")),
            version=str(version).rsplit("/", 1)[-1],
        )
        boto3.client("events").put_events(
            Entries=[
                {
                    "Source": "local.demo",
                    "DetailType": detail_type,
                    "Detail": json.dumps(detail),
                    "EventBusName": self.stack.outputs["EventBusName"],
                }
            ]
        )

    def start_from_console(self, item: StoryItem) -> None:
        """A rollout started outside the monitor, for discovery to adopt (the simulator's)."""
        if self.simulator is None or item.external is None:
            raise ValueError("a console rollout needs the simulator and a scenario")
        endpoint_id = item.detail["endpoint_id"]
        started = self.simulator.start_from_console(endpoint_id, item.external)
        key = item.detail["request_id"]
        self.seen.rows[key] = Row(
            key, key, endpoint_id, item.external, status="started", deployment_id=started.id
        )

    def step(self) -> list[str]:
        """Deliver what waits and run the poller when due; return what happened, as lines.

        On the virtual clock every step is one poller cycle, after which time moves to the
        next cycle; on the system clock the poller runs when its interval has passed.
        """
        lines: list[str] = []
        self.router.settle()
        if self.clock.now() >= self._next_poll:
            self._next_poll = self.clock.now() + self.poll_interval
            if self.schedule_enabled:
                lines += self._poll()
        for event in self.router.read_tap():
            self.seen.events.append(event)
            lines.append(self._apply_event(event))
        self._refresh_progress()
        for alert in self._read_alerts():
            self.seen.alerts.append(alert)
            lines.append(f"ALERT {alert['severity'].upper()}: {alert['subject']}")
        lines += [f"function failed: {f.rule}: {f.error}" for f in self.router.failures]
        self.router.failures.clear()
        self.steps += 1
        if isinstance(self.clock, ManualClock):
            self.clock.advance(max(0.0, self._next_poll - self.clock.now()))
        return lines

    def _poll(self) -> list[str]:
        failed = False
        try:
            self.runtimes["PollerFunction"].invoke(self._scheduled)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # Lambda: this run fails, the next scheduled one runs
            failed = True
            self.seen.poller_failures.append(f"{type(exc).__name__}: {exc}")
            return [f"poller run failed ({type(exc).__name__}: {exc}); the next run goes on"]
        finally:
            self._lambda_metrics("PollerFunction", failed)
            self.router.settle()
        return []

    def _lambda_metrics(self, logical_id: str, failed: bool) -> None:
        """What Lambda publishes of each invocation (AWS/Lambda), at this stack's time."""
        import boto3  # noqa: PLC0415

        at = datetime.fromtimestamp(self.clock.now(), UTC)
        dimensions = [{"Name": "FunctionName", "Value": self.stack.functions[logical_id].name}]
        boto3.client("cloudwatch").put_metric_data(
            Namespace="AWS/Lambda",
            MetricData=[
                {"MetricName": name, "Dimensions": dimensions, "Timestamp": at, "Value": value}
                for name, value in (("Invocations", 1.0), ("Errors", float(failed)))
            ],
        )

    def pause(self) -> None:
        """Wait in real time between steps: the display's pace on the virtual clock."""
        if not self.virtual:
            time.sleep(REAL_TIME_TICK_SECONDS)
        elif self.speed > 0:
            time.sleep(self.poll_interval / self.speed)

    def _refresh_progress(self) -> None:
        """Replica progress is recorded without an event: read it from the table."""
        store = self.poller.store.deployments
        for row in self.seen.rows.values():
            if row.deployment_id and row.status in IN_FLIGHT:
                record = store.get(row.deployment_id)
                if record is not None:
                    row.updated_replicas = record.updated_replicas
                    row.total_replicas = record.total_replicas

    def _apply_event(self, event: dict[str, Any]) -> str:
        detail = event["detail"]
        kind = event["detail-type"]
        row = self._row_for(detail)
        if row is None and kind in {"Deployment Submitted", "Deployment Rejected"}:
            key = str(detail.get("request_id"))  # sent from another shell
            row = self.seen.rows[key] = Row(
                key=key,
                label=key,
                endpoint_id=str(detail.get("endpoint_id")),
                version=str(detail.get("model")).rsplit("/", 1)[-1],
            )
        if row is not None:
            row.deployment_id = detail.get("deployment_id", row.deployment_id)
            if kind in {"Deployment Submitted", "Deployment Discovered"}:
                row.status = detail["rollout_status"]
                row.submitted_at = detail["submitted_at"]
                row.observed_at = detail["submitted_at"]
            elif kind == "Deployment Rejected":
                row.status = "rejected"
            elif kind == "Rollout Status Changed":
                row.status = detail["rollout_status"]
                row.updated_replicas = detail["updated_replicas"]
                row.total_replicas = detail["total_replicas"]
                row.observed_at = detail["observed_at"]
                row.stalled = False
            elif kind == "Rollout Stalled":
                row.stalled = True
        name = row.label if row else detail.get("deployment_id", "?")
        if kind == "Rollout Status Changed":
            previous = detail["previous_status"] or "submitted"
            return f"{name}: {previous} -> {detail['rollout_status']}"
        if kind == "Deployment Rejected":
            return f"{name}: rejected ({detail['reason']}): {detail['message'][:120]}"
        if kind == "Model Version Sync Changed":
            sync = f"{detail['previous_sync_status'] or 'uploaded'} -> {detail['sync_status']}"
            return f"{name}: version sync {sync} ({detail['outcome']})"
        if kind == "Rollout Stalled":
            seconds = detail["stalled_for_seconds"]
            return f"{name}: stalled {seconds:.0f}s in {detail['rollout_status']}"
        return f"{name}: {kind.lower()} ({detail.get('deployment_id', '')})"

    def _row_for(self, detail: dict[str, Any]) -> Row | None:
        request_id = detail.get("request_id")
        if request_id in self.seen.rows:
            return self.seen.rows[request_id]
        deployment_id = detail.get("deployment_id")
        if deployment_id is None:
            return None
        return next((r for r in self.seen.rows.values() if r.deployment_id == deployment_id), None)

    def _read_alerts(self) -> list[dict[str, Any]]:
        import boto3  # noqa: PLC0415

        sqs = boto3.client("sqs")
        alerts: list[dict[str, Any]] = []
        while True:
            messages = sqs.receive_message(
                QueueUrl=self._alerts_queue, MaxNumberOfMessages=10, WaitTimeSeconds=0
            ).get("Messages", [])
            if not messages:
                return alerts
            for message in messages:
                envelope = json.loads(message["Body"])
                alerts.append(json.loads(envelope["Message"]))
                sqs.delete_message(
                    QueueUrl=self._alerts_queue, ReceiptHandle=message["ReceiptHandle"]
                )

    def now(self) -> float:
        return self.clock.now()

    def elapsed(self, row: Row) -> float:
        if row.submitted_at is None:
            return 0.0
        end = row.observed_at if row.status in TERMINAL else None
        return (end or self.now()) - row.submitted_at


def play(
    stack: DevStack,
    story: tuple[StoryItem, ...],
    *,
    timeout: float,
    on_step: Callable[[list[str]], None] = lambda lines: None,
    settle_cycles: int = 3,
) -> Verdict:
    """Send the story's requests, step until it is judged complete or ``timeout`` simulated
    seconds have passed; once complete, a few more cycles, so a duplicate would still show."""
    for item in story:
        if item.external is not None:
            stack.start_from_console(item)
        else:
            stack.request(item.detail, item.detail_type)
    deadline = stack.now() + timeout
    complete_for = 0
    while stack.now() < deadline and complete_for <= settle_cycles:
        on_step(stack.step())
        complete_for = complete_for + 1 if judge(story, stack.seen).ok else 0
        stack.pause()
    return judge(story, stack.seen)


def follow(
    stack: DevStack,
    item: StoryItem,
    *,
    timeout: float,
    on_step: Callable[[list[str]], None] = lambda lines: None,
) -> Verdict:
    """One real deployment, followed until it ends: a success only if it ends ``done``."""
    stack.request(item.detail)
    row = stack.seen.rows[item.detail["request_id"]]
    deadline = stack.now() + timeout
    while stack.now() < deadline:
        on_step(stack.step())
        if row.status in TERMINAL | {"rejected"}:
            break
        stack.pause()
    counts = judge((), stack.seen).counts
    problems = [] if row.status == "done" else [f"the rollout ended {row.status}"]
    return Verdict(not problems, problems, counts, scripted=1)
