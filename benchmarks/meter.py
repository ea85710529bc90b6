"""What the functions do in a run, invocation by invocation: every AWS call (botocore hooks on
boto3's default session, so every client a function builds is seen) with the DynamoDB
capacity it consumed, every Cerebras request, every poll-queue message sent, the bytes the
functions log (JSON lines and EMF metric blobs) and the metrics they publish."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass, field
from typing import Any

import boto3

from benchmarks.prices import item_bytes, read_units, write_units
from rollout_monitor.poller import CycleReport
from rollout_monitor_local.clock import Clock
from rollout_monitor_local.pollqueue import VirtualPollQueue
from rollout_monitor_local.simulator import Simulator

SERIAL = "serial"  # a poller call made alone; any other step is fanned out over records
CLIENT = "client"  # calls made for the benchmark's user (its Deploy Requested events)


@dataclass
class Call:
    service: str
    operation: str
    step: str = SERIAL
    write_units: float = 0.0
    read_units: float = 0.0
    entries: int = 0  # PutEvents entries
    records: int = 0  # distinct deployments among them
    # What a record's plain PutItem (replica progress) would add as the old code's one-item
    # transaction: its units again.
    as_transaction: float = 0.0


@dataclass
class Invocation:
    function: str
    trigger: str  # schedule, queue, event, or the client
    at: float
    calls: list[Call] = field(default_factory=list)
    cerebras: int = 0
    log_bytes: int = 0
    metrics: set[str] = field(default_factory=set)
    result: Any = None
    reports: list[CycleReport] = field(default_factory=list)  # the old design's cycles
    cycle_starts: list[tuple[float, int]] = field(default_factory=list)  # (offset s, call index)


@dataclass
class _Item:
    size: int
    indexed: bool  # on the InFlight index (ProjectionType ALL: a write there is billed again)


class Meter:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.simulator: Simulator | None = None
        self.invocations: list[Invocation] = []
        self._current: list[Invocation] = []
        self._items: dict[tuple[str, str], _Item] = {}

    # -- invocations ------------------------------------------------------------------------------

    @contextmanager
    def invocation(self, function: str, trigger: str) -> Iterator[Invocation]:
        """Everything done until the block ends is this invocation's."""
        invocation = Invocation(function, trigger, self.clock.now())
        self.invocations.append(invocation)
        self._current.append(invocation)
        requests = self.simulator.requests if self.simulator else None
        if requests is not None:
            requests.clear()
        try:
            with redirect_stdout(_Lines(lambda line: self._stdout(invocation, line))):
                yield invocation
        finally:
            if requests is not None:
                invocation.cerebras += len(requests)
            self._current.pop()

    def around(self, function: str, event: dict[str, Any], invoke: Callable[[], Any]) -> Any:
        """``world.Runtime``'s hook: each invocation of a function, metered."""
        trigger = "queue" if "Records" in event else "event"
        if event.get("detail-type") == "Scheduled Event":
            trigger = "schedule"
        with self.invocation(function, trigger) as invocation:
            invocation.result = invoke()
        return invocation.result

    def log_stream(self) -> _Lines:
        """The functions' JSON logs: counted against the invocation that wrote them."""
        return _Lines(self._log)

    def _log(self, line: str) -> None:
        if self._current:
            self._current[-1].log_bytes += len(line.encode()) + 1

    def _stdout(self, invocation: Invocation, line: str) -> None:
        invocation.log_bytes += len(line.encode()) + 1  # EMF blobs are log lines too
        if '"_aws"' in line:
            blob = json.loads(line)
            for directive in blob["_aws"]["CloudWatchMetrics"]:
                invocation.metrics.update(m["Name"] for m in directive["Metrics"])

    def queue(self, queue: VirtualPollQueue) -> _CountedQueue:
        """The poll queue, each message sent counted as an SQS SendMessage of its sender."""
        return _CountedQueue(queue, self)

    def count(self, call: Call) -> None:
        if self._current:
            self._current[-1].calls.append(call)

    # -- AWS calls -------------------------------------------------------------------------

    def register(self) -> None:
        """Hook every client of boto3's default session built from now on."""
        assert boto3.DEFAULT_SESSION is not None
        events = boto3.DEFAULT_SESSION.events
        events.register("before-parameter-build", _remember_params)
        events.register("before-call", self._before_call)
        events.register("after-call", self._after_call)

    def _before_call(self, model: Any, context: dict[str, Any], event_name: str, **_: Any) -> None:
        if not self._current:
            return
        service, operation = event_name.split(".")[1], model.name
        params: dict[str, Any] = context.get("bench_params", {})
        call = Call(service, operation, step=_poller_step(service, operation, params))
        if service == "dynamodb":
            call.write_units = self._write_units(operation, params)
            if operation == "PutItem" and params["Item"]["pk"]["S"].startswith("DEPLOYMENT#"):
                call.as_transaction = write_units(item_bytes(params["Item"]))
        elif operation == "PutEvents":
            entries = params["Entries"]
            call.entries = len(entries)
            call.records = len({json.loads(e["Detail"]).get("deployment_id") for e in entries})
        context["bench_call"] = call
        self.count(call)

    def _after_call(self, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        call: Call | None = context.get("bench_call")
        if call is None or call.operation not in {"Query", "GetItem"}:
            return
        params = context.get("bench_params", {})
        items = parsed.get("Items") or ([parsed["Item"]] if "Item" in parsed else [])
        for item in items:
            if "pk" in item and "sk" in item:
                self._items[(item["pk"]["S"], item["sk"]["S"])] = _Item(
                    item_bytes(item), "in_flight" in item
                )
        consistent = bool(params.get("ConsistentRead")) and "IndexName" not in params
        call.read_units = read_units(sum(item_bytes(i) for i in items), consistent=consistent)

    # -- DynamoDB write units: the item's size (the larger of before and after), again on the
    # index for an item that is or was on it ------------------------------------------------------

    def _write_units(self, operation: str, params: dict[str, Any]) -> float:
        if operation == "PutItem":
            return self._put(params["Item"], transactional=False)
        if operation in {"UpdateItem", "DeleteItem"}:
            return self._change(operation, params, transactional=False)
        if operation == "TransactWriteItems":
            units = 0.0
            for entry in params["TransactItems"]:
                ((kind, action),) = entry.items()
                if kind == "Put":
                    units += self._put(action["Item"], transactional=True)
                else:
                    units += self._change(kind + "Item", action, transactional=True)
            return units
        return 0.0

    def _put(self, item: dict[str, Any], *, transactional: bool) -> float:
        item_key = (item["pk"]["S"], item["sk"]["S"])
        size = item_bytes(item)
        before = self._items.get(item_key)
        charged = max(size, before.size if before else 0)
        indexed = "in_flight" in item
        self._items[item_key] = _Item(size, indexed)
        units = write_units(charged, transactional=transactional)
        if indexed or (before and before.indexed):
            units += write_units(charged)
        return units

    def _change(self, operation: str, params: dict[str, Any], *, transactional: bool) -> float:
        """An update, delete or condition check: the stored item's size, as last seen."""
        item_key = (params["Key"]["pk"]["S"], params["Key"]["sk"]["S"])
        before = self._items.get(item_key)
        size = before.size if before else 0
        units = write_units(size, transactional=transactional)
        if before and before.indexed:
            units += write_units(size)
            if operation == "DeleteItem" or "in_flight" in params.get("UpdateExpression", ""):
                before.indexed = False  # off the index (REMOVE in_flight)
        return units


def _remember_params(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    context["bench_params"] = params


def _poller_step(service: str, operation: str, params: dict[str, Any]) -> str:
    """Which of the poller's steps a call belongs to: the slot claim, the index query and
    the next message are made alone; the rest are fanned out over records, step by step."""
    if service == "eventbridge":
        return "publish"
    if service != "dynamodb":
        return SERIAL
    if operation == "UpdateItem":
        if params["Key"]["sk"]["S"] == "SLOT":
            return SERIAL
        return (
            "take" if params.get("ConditionExpression", "").startswith("outbox_lease") else "clear"
        )
    if operation == "TransactWriteItems" and all(_clears(i) for i in params["TransactItems"]):
        return "clear"
    return _DYNAMODB_STEPS.get(operation, SERIAL)


_DYNAMODB_STEPS = {"PutItem": "write", "TransactWriteItems": "write", "DeleteItem": "free"}


def _clears(item: dict[str, Any]) -> bool:
    """A transaction's item that clears an announced record's outbox."""
    update = item.get("Update", {})
    return str(update.get("UpdateExpression", "")).startswith("REMOVE pending_events")


class _CountedQueue:
    """A :class:`~rollout_monitor.ports.PollTrigger`: the virtual queue, metered."""

    def __init__(self, queue: VirtualPollQueue, meter: Meter) -> None:
        self._queue = queue
        self._meter = meter

    def start(self, shard: int, delay_seconds: int) -> None:
        self._meter.count(Call("sqs", "SendMessage"))
        self._queue.start(shard, delay_seconds)


class _Lines(io.StringIO):
    """A text stream that hands each complete line to ``take`` and keeps nothing."""

    def __init__(self, take: Callable[[str], None]) -> None:
        super().__init__()
        self._take = take
        self._partial = ""

    def write(self, text: str) -> int:
        *lines, self._partial = (self._partial + text).split("\n")
        for line in lines:
            self._take(line)
        return len(text)
