"""Deliver the bus's events to the functions the way the template's rules say.

moto matches each rule's pattern but cannot invoke Lambda, so every rule of the template
gets an SQS queue in place of its Lambda target; :meth:`Router.deliver` drains those queues and
invokes the rule's function in-process with the envelope exactly as EventBridge delivered it.
A tap rule on the monitor's own source lets tests read back every event the monitor emitted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import boto3

from rollout_monitor.events import SOURCE
from rollout_monitor_local.runtime import FunctionRuntime
from rollout_monitor_local.stack import Stack

TAP_RULE = "rollout-monitor-local-tap"
MOTO_ACCOUNT = "123456789012"


@dataclass
class Failure:
    rule: str
    event: dict[str, Any]
    error: BaseException


@dataclass
class Router:
    stack: Stack
    runtimes: dict[str, FunctionRuntime]
    max_attempts: int = 3  # the first try and Lambda's two async retries
    failures: list[Failure] = field(default_factory=list)
    dead_letters: list[Failure] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._sqs = boto3.client("sqs")
        self._events = boto3.client("events")
        bus = self.stack.outputs["EventBusName"]
        self._queues: dict[str, str] = {}
        for rule in self.stack.rules.values():
            if rule.pattern is None or rule.function_logical_id not in self.runtimes:
                continue
            self._queues[rule.logical_id] = self._attach_queue(rule.name, bus, rule.logical_id)
        self._events.put_rule(
            Name=TAP_RULE, EventBusName=bus, EventPattern=json.dumps({"source": [SOURCE]})
        )
        self._tap = self._attach_queue(TAP_RULE, bus, "tap")
        self.emitted: list[dict[str, Any]] = []

    def _attach_queue(self, rule_name: str, bus: str, label: str) -> str:
        url = self._sqs.create_queue(QueueName=f"local-{label}"[:80])["QueueUrl"]
        arn = self._sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        # moto cannot deliver to Lambda: the queue takes the function's place as the target.
        existing = self._events.list_targets_by_rule(Rule=rule_name, EventBusName=bus)["Targets"]
        if existing:
            self._events.remove_targets(
                Rule=rule_name, EventBusName=bus, Ids=[t["Id"] for t in existing]
            )
        self._events.put_targets(
            Rule=rule_name, EventBusName=bus, Targets=[{"Id": "local-queue", "Arn": arn}]
        )
        return url

    def deliver(self) -> int:
        """Invoke each rule's function for every event waiting for it; return how many."""
        delivered = 0
        for logical_id, url in self._queues.items():
            rule = self.stack.rules[logical_id]
            assert rule.function_logical_id is not None
            runtime = self.runtimes[rule.function_logical_id]
            for event in self._drain(url):
                delivered += 1
                self._invoke(logical_id, runtime, event)
        return delivered

    def take_waiting(self, rule_logical_id: str) -> list[dict[str, Any]]:
        """Remove and return what waits for a rule's function, without invoking it."""
        return self._drain(self._queues[rule_logical_id])

    def settle(self, rounds: int = 10) -> int:
        """Deliver until nothing is waiting: events emitted by one function reach the next."""
        total = 0
        for _ in range(rounds):
            delivered = self.deliver()
            total += delivered
            if delivered == 0:
                break
        return total

    def _invoke(self, rule: str, runtime: FunctionRuntime, event: dict[str, Any]) -> None:
        for attempt in range(1, self.max_attempts + 1):
            try:
                runtime.invoke(event)
            except Exception as exc:
                self.failures.append(Failure(rule, event, exc))
                if attempt == self.max_attempts:
                    self.dead_letters.append(Failure(rule, event, exc))
                continue
            return

    def read_tap(self) -> list[dict[str, Any]]:
        """Events the monitor emitted since the last read (also kept in :attr:`emitted`)."""
        fresh = list(self._drain(self._tap))
        self.emitted.extend(fresh)
        return fresh

    def _drain(self, url: str) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        while True:
            messages = self._sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0
            ).get("Messages", [])
            if not messages:
                return events
            for message in messages:
                event = json.loads(message["Body"])
                event.setdefault("account", MOTO_ACCOUNT)  # AWS always sends it; moto omits it
                events.append(event)
                self._sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
