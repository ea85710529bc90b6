"""One poller cycle at fleet scale, against a naive poller and the floor, in one run.

What is measured is the project's own code: the poller, the DynamoDB and EventBridge
adapters and botocore's serialising and parsing. What is not is AWS itself: a botocore
``before-send`` hook answers every DynamoDB and EventBridge call after a fixed latency, as the
service would (the Query with the fleet's records, paginated at 1 MB; every write accepted).
moto is not used: it spends about 8 ms per returned item and copies the table on every
transaction, far more than the latency it would stand for. The responder's own CPU is measured
and printed, and left out of nothing: it is part of the figure, and small (each Query page is
encoded once, at load).

Cerebras reads are a fake reader that answers after a fixed latency (50 ms or 200 ms).

Rows, each the median of ``ROUNDS`` cycles:
- steady: every rollout read, nothing changed (no write, no event);
- all-change: every rollout changed status (a transaction, an event and an outbox clear each);
- naive: the same cycle one deployment at a time (its own status read, write, PutEvents of one
  entry and clear), as a poller written without batching or concurrency would;
- floor: the cycle's calls at the configured concurrency, each taking exactly its latency.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import statistics
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.awsrequest import AWSResponse

from rollout_monitor.bus import EventPublisher
from rollout_monitor.cerebras.models import DeployedModel, DeployOperation, EndpointStatus
from rollout_monitor.events import dump_pending, load_pending
from rollout_monitor.poller import CycleReport, Poller
from rollout_monitor.records import DeploymentRecord
from rollout_monitor.rules import Observation, StallPolicy, decide
from rollout_monitor.store import Tables
from rollout_monitor.wiring import _pooled, dynamodb_client

DYNAMODB_LATENCY = 0.010  # seconds per DynamoDB call (in-region, single-digit ms)
EVENTBRIDGE_LATENCY = 0.020  # seconds per PutEvents call
READ_CONCURRENCY = 10  # PollMaxConcurrency's default
AWS_CONCURRENCY = 16  # aws_max_concurrency's default
QUERY_PAGE_BYTES = 1024 * 1024  # DynamoDB: one Query page
ROUNDS = 3
NOW = 1_800_000_000.0


# -- AWS, answered after a fixed latency -------------------------------------------------------


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Any:
        yield self._body


@dataclass
class FakeAws:
    """Answers DynamoDB and EventBridge calls after their latency; counts them, and the CPU
    it spends answering (printed: it is part of the figures, and small)."""

    pages: dict[str, list[bytes]] = field(default_factory=dict)  # answers, by shard marker
    calls: Counter[str] = field(default_factory=Counter)
    cpu_seconds: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def load(self, items: list[dict[str, Any]]) -> None:
        """The InFlight index's items, paginated at 1 MB per shard as DynamoDB would, each
        page's answer encoded once here rather than on every Query."""
        by_shard: dict[str, list[list[dict[str, Any]]]] = {}
        for item in items:
            shard_pages = by_shard.setdefault(item["in_flight"]["S"], [[]])
            size = len(json.dumps(shard_pages[-1]))
            if size + len(json.dumps(item)) > QUERY_PAGE_BYTES:
                shard_pages.append([])
            shard_pages[-1].append(item)
        self.pages = {
            marker: [_page(shard_pages, n) for n in range(len(shard_pages))]
            for marker, shard_pages in by_shard.items()
        }

    def __call__(self, request: Any, **_: Any) -> AWSResponse:
        started = time.thread_time()
        target = request.headers["X-Amz-Target"].decode().split(".")[-1]
        latency = EVENTBRIDGE_LATENCY if target == "PutEvents" else DYNAMODB_LATENCY
        payload = b"{}"  # every write accepted
        if target == "Query":
            payload = self._query(json.loads(request.body))
        elif target == "PutEvents":
            entries = json.loads(request.body)["Entries"]
            payload = json.dumps(
                {"FailedEntryCount": 0, "Entries": [{"EventId": "e"} for _ in entries]}
            ).encode()
        with self._lock:
            self.calls[target] += 1
            self.cpu_seconds += time.thread_time() - started
        time.sleep(latency)
        return AWSResponse(request.url, 200, {}, _Raw(payload))

    def _query(self, body: dict[str, Any]) -> bytes:
        pages = self.pages.get(body["ExpressionAttributeValues"][":shard"]["S"], [b'{"Items": []}'])
        start = int(body.get("ExclusiveStartKey", {}).get("pk", {}).get("S", "PAGE#0")[5:])
        return pages[start]


def _page(pages: list[list[dict[str, Any]]], n: int) -> bytes:
    answer: dict[str, Any] = {"Items": pages[n], "Count": len(pages[n])}
    if n + 1 < len(pages):
        answer["LastEvaluatedKey"] = {"pk": {"S": f"PAGE#{n + 1}"}, "sk": {"S": "META"}}
    return json.dumps(answer).encode()


def clients(aws: FakeAws) -> tuple[Any, Any]:
    dynamodb = dynamodb_client(AWS_CONCURRENCY)  # as the poller's clients are built
    events = boto3.client("events", config=_pooled(AWS_CONCURRENCY))
    for client in (dynamodb, events):
        client.meta.events.register_first("before-send", aws)
    return dynamodb, events


# -- Cerebras, answered after a fixed latency --------------------------------------------------


@dataclass
class FakeReader:
    latency: float
    statuses: dict[str, EndpointStatus]

    async def get_endpoint(self, endpoint_id: str) -> EndpointStatus:
        await asyncio.sleep(self.latency)
        return self.statuses[endpoint_id]

    async def get_deployment(self, endpoint_id: str, deployment_id: str) -> DeployOperation:
        raise NotImplementedError  # the endpoint route is the default


def fleet(endpoints: int, per_endpoint: int) -> list[DeploymentRecord]:
    return [
        DeploymentRecord(
            deployment_id=f"{e:04d}-{d:03d}-0000-4000-8000-000000000000",
            endpoint_id=f"bench-endpoint-{e}",
            org_name="my-org",
            model_arch_id="llama-3.3-70b",
            version_id=1,
            model="orgs/my-org/models/llama-3.3-70b/versions/1",
            request_id=f"request-{e}-{d}",
            requested_by="bench@example.com",
            submitted_at=NOW - 60,
            status="not_started",
            updated_replicas=0,
            total_replicas=4,
            last_observed_at=NOW - 10,
            last_progress_at=NOW - 60,
            listed=True,
        )
        for e in range(endpoints)
        for d in range(per_endpoint)
    ]


def answers(records: list[DeploymentRecord], status: str) -> dict[str, EndpointStatus]:
    by_endpoint: dict[str, list[DeployedModel]] = {}
    for record in records:
        by_endpoint.setdefault(record.endpoint_id, []).append(
            DeployedModel(
                id=record.deployment_id,
                model=record.model,
                created=int(record.submitted_at),
                state=status,
                updated_replicas=0,
                total_replicas=4,
            )
        )
    return {
        endpoint_id: EndpointStatus(
            name=endpoint_id,
            model_arch_id="llama-3.3-70b",
            deployed_models=models,
            managing_org_name="my-org",
            created=int(NOW - 86_400),
            updated=int(NOW),
        )
        for endpoint_id, models in by_endpoint.items()
    }


# -- the cycles ---------------------------------------------------------------------------------


@dataclass
class Setup:
    aws: FakeAws
    store: Tables
    publisher: EventPublisher
    records: list[DeploymentRecord]
    shards: int
    hint: dict[int, list[str]] = field(default_factory=dict)  # a warm container's memory

    @classmethod
    def of(cls, records: list[DeploymentRecord], shards: int = 1) -> Setup:
        aws = FakeAws()
        dynamodb, events = clients(aws)
        store = Tables.over(dynamodb, "bench", 86_400, shards)
        aws.load([store.deployments.item_of(r) for r in records])
        return cls(aws, store, EventPublisher("bench", events), records, shards)

    def poller(self, reader: FakeReader) -> Poller:
        return Poller(
            self.store.deployments,
            self.store.endpoints,
            reader,
            self.publisher,
            StallPolicy(),
            max_concurrency=READ_CONCURRENCY,
            aws_concurrency=AWS_CONCURRENCY,
            now=lambda: NOW,
            endpoints_hint=self.hint,
        )


def project_cycle(setup: Setup, reader: FakeReader) -> tuple[float, CycleReport, Counter[str]]:
    setup.aws.calls.clear()
    started = time.perf_counter()
    report = asyncio.run(setup.poller(reader).cycle())
    return time.perf_counter() - started, report, Counter(setup.aws.calls)


def fleet_cycle(setup: Setup, reader: FakeReader) -> float:
    """Every shard's cycle at once, each in its own thread and loop (its own invocation)."""
    reports: list[CycleReport] = []

    def one(shard: int) -> None:
        reports.append(asyncio.run(setup.poller(reader).cycle(shard)))

    threads = [threading.Thread(target=one, args=(s,)) for s in range(setup.shards)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    assert sum(r.in_flight for r in reports) == len(setup.records)
    return elapsed


def naive_cycle(setup: Setup, reader: FakeReader) -> float:
    """One deployment at a time: read it, write it, announce it, clear its outbox."""
    deployments = setup.store.deployments

    async def cycle() -> None:
        for record in deployments.in_flight(0):
            status = await reader.get_endpoint(record.endpoint_id)
            listed = status.find(record.deployment_id)
            assert listed is not None
            seen = Observation(listed.status, listed.updated_replicas, listed.total_replicas)
            decision = decide(record, seen, NOW, StallPolicy())
            if decision.record == record or decision.entry is None:
                continue
            after = decision.record.model_copy(
                update={"pending_events": [dump_pending(e) for e in decision.events]}
            )
            deployments.save_observation(record, after, decision.entry)
            for pending in after.pending_events:
                setup.publisher.publish([load_pending(pending)])
            deployments.clear_outbox(after)

    started = time.perf_counter()
    asyncio.run(cycle())
    return time.perf_counter() - started


def floor(calls: Counter[str], reads: int, read_latency: float) -> float:
    """The cycle's calls, phase by phase, at the configured concurrency and their latency."""
    writes = calls["PutItem"] + calls["TransactWriteItems"]
    return (
        calls["Query"] * DYNAMODB_LATENCY  # pages, one after another
        + math.ceil(reads / READ_CONCURRENCY) * read_latency
        + math.ceil(writes / AWS_CONCURRENCY) * DYNAMODB_LATENCY
        + math.ceil(calls["PutEvents"] / AWS_CONCURRENCY) * EVENTBRIDGE_LATENCY
        + math.ceil(calls["UpdateItem"] / AWS_CONCURRENCY) * DYNAMODB_LATENCY  # outbox clears
    )


def median[T](runs: list[tuple[float, T]]) -> tuple[float, T]:
    ordered = sorted(runs, key=lambda run: run[0])
    return ordered[len(ordered) // 2]


def main() -> int:
    os.environ.update(
        AWS_DEFAULT_REGION="us-east-1", AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench"
    )
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        os.environ.pop(name, None)
    print(
        f"poller cycle, {os.cpu_count()} cores; DynamoDB {DYNAMODB_LATENCY * 1000:.0f} ms and "
        f"PutEvents {EVENTBRIDGE_LATENCY * 1000:.0f} ms per call; {READ_CONCURRENCY} reads and "
        f"{AWS_CONCURRENCY} AWS calls at once; median of {ROUNDS}"
    )
    failures: list[str] = []
    records = fleet(100, 10)
    setup = Setup.of(records)
    header = f"{'fleet':>10} {'read':>6} {'cycle':>11} {'s':>7} {'floor s':>8} {'x floor':>8}"
    print(header + f" {'naive s':>8} {'x faster':>9}  calls")
    for read_latency in (0.05, 0.2):
        for kind, status in (("steady", "not_started"), ("all-change", "in_progress")):
            reader = FakeReader(read_latency, answers(records, status))
            seconds, (report, calls) = median(
                [(t, (r, c)) for t, r, c in (project_cycle(setup, reader) for _ in range(ROUNDS))]
            )
            bound = floor(calls, report.status_requests, read_latency)
            naive = naive_cycle(setup, reader) if read_latency == 0.05 else math.nan
            ratio = seconds / bound
            speedup = math.nan if math.isnan(naive) else naive / seconds
            print(
                f"{'1000/100':>10} {read_latency * 1000:>4.0f}ms {kind:>11} {seconds:>7.2f} "
                f"{bound:>8.2f} {ratio:>8.2f} {naive:>8.2f} {speedup:>9.1f}  {dict(calls)}"
            )
            limit = 1.2 if kind == "steady" else 1.3
            if ratio > limit:
                failures.append(f"{kind} at {read_latency * 1000:.0f} ms: {ratio:.2f}x floor")
            if kind == "all-change" and speedup < 20:  # NaN (not measured) compares False
                failures.append(f"all-change only {speedup:.1f}x faster than naive")
    print(f"responder CPU (fake AWS, part of the figures): {setup.aws.cpu_seconds:.2f} s in all")
    big = fleet(500, 10)
    interval = 10.0
    for shards in (1, 8):
        sharded = Setup.of(big, shards)
        reader = FakeReader(0.2, answers(big, "not_started"))
        seconds = statistics.median(fleet_cycle(sharded, reader) for _ in range(ROUNDS))
        verdict = "within" if seconds <= interval else "NOT within"
        print(
            f"5000/500, 200 ms, {shards} shard(s) fanned out: {seconds:.2f} s for the whole "
            f"fleet, {verdict} the {interval:.0f} s interval"
        )
        if shards > 1 and seconds > interval:
            failures.append(f"5000/500 with {shards} shards: {seconds:.2f} s")
    for failure in failures:
        print(f"MISSED: {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
