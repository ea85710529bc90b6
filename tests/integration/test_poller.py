"""The poller, through the template's resources in moto and the simulator, on a moved clock."""

from __future__ import annotations

import asyncio
import logging
import math
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from rollout_monitor_local.pollqueue import sqs_event
from rollout_monitor_local.simulator import Fault, FaultKind, Scenario, Step
from tests.integration.conftest import World, sample_event

CHANGED = "Rollout Status Changed"
STALLED = "Rollout Stalled"


def changes(world: World) -> list[dict[str, Any]]:
    return [e["detail"] for e in world.emitted(CHANGED)]


def test_scripted_rollback_is_announced_transition_by_transition(world: World) -> None:
    deployment_id = world.deploy("rolls-back")
    for _ in range(4):
        world.clock.advance(20)
        world.poll()
    events = changes(world)
    assert [(e["previous_status"], e["rollout_status"]) for e in events] == [
        ("not_started", "in_progress"),
        ("in_progress", "rolling_back"),
        ("rolling_back", "rolled_back"),
    ]
    assert [e["sequence"] for e in events] == [1, 2, 3]
    assert [e["event_id"] for e in events] == [f"{deployment_id}:{n}" for n in (1, 2, 3)]
    assert [e["outcome"] for e in events] == [None, None, "failed"]
    assert [e["terminal"] for e in events] == [False, False, True]
    assert events[-1]["error_message"] == "latency SLO breached on new replicas"
    assert events[0]["seconds_since_submission"] == 20
    assert events[-1]["requested_by"] == "tests@example.com"

    store = world.poller.store.deployments
    record = store.get(deployment_id)
    assert (record.status, record.sequence, record.terminal) == ("rolled_back", 3, True)
    assert record.pending_events == []
    assert store.in_flight() == []  # left the index; its history stays
    history = store.history(deployment_id)
    assert [(h.sequence, h.previous_status, h.status) for h in history] == [
        (0, None, "not_started"),
        (1, "not_started", "in_progress"),
        (2, "in_progress", "rolling_back"),
        (3, "rolling_back", "rolled_back"),
    ]
    assert [h.observed_at for h in history[1:]] == [e["observed_at"] for e in events]


def test_success_with_replica_progress_and_a_freed_endpoint(world: World) -> None:
    deployment_id = world.deploy("succeeds")
    for _ in range(5):
        world.clock.advance(20)
        world.poll()
    events = changes(world)
    assert [(e["rollout_status"], e["outcome"]) for e in events] == [
        ("in_progress", None),
        ("done", "succeeded"),
    ]
    assert (events[-1]["updated_replicas"], events[-1]["total_replicas"]) == (4, 4)
    assert world.poller.store.deployments.get(deployment_id).updated_replicas == 4
    world.deploy("errors")  # the endpoint is free again: no force needed


def test_two_pollers_at_once_record_and_announce_each_transition_once(world: World) -> None:
    world.simulator.add_endpoint("my-org-third", "llama-3.3-70b")
    ids = [
        world.deploy("rolls-back"),
        world.deploy("succeeds", endpoint_id="my-org-qwen-3-32b"),
        world.deploy("errors", endpoint_id="my-org-third"),
    ]
    runtime = world.poller

    def poll() -> None:
        asyncio.run(runtime.cycle())

    for _ in range(5):
        world.clock.advance(20)
        world.simulator.inject(Fault(FaultKind.LATENCY, times=6, seconds=0.1))  # overlap reads
        threads = [threading.Thread(target=poll) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    announced = Counter(e["event_id"] for e in changes(world))
    assert set(announced.values()) == {1}
    expected = {f"{ids[0]}:{n}" for n in (1, 2, 3)} | {f"{ids[1]}:{n}" for n in (1, 2)}
    expected |= {f"{ids[2]}:{n}" for n in (1, 2)}
    assert set(announced) == expected
    for deployment_id in ids:
        history = world.poller.store.deployments.history(deployment_id)
        assert [h.sequence for h in history] == list(range(len(history)))


def test_crash_between_record_and_put_events_loses_nothing(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    deployment_id = world.deploy("errors")
    runtime = world.poller

    def crash(details: Any) -> None:
        raise SystemExit("process died after the record")

    monkeypatch.setattr(runtime.publisher, "publish", crash)
    world.clock.advance(20)
    with pytest.raises(SystemExit):
        world.poll()
    monkeypatch.undo()
    record = runtime.store.deployments.get(deployment_id)
    assert (record.status, len(record.pending_events)) == ("in_progress", 1)
    assert changes(world) == []
    world.poll()  # within the writer's lease: nobody else publishes yet
    assert changes(world) == []
    world.clock.advance(61)
    world.poll()  # the lease ran out: this run announces it (and sees the error)
    events = changes(world)
    assert [e["event_id"] for e in events] == [f"{deployment_id}:1", f"{deployment_id}:2"]
    world.clock.advance(100)
    world.poll()
    assert len(changes(world)) == 2  # nothing twice


def test_put_events_partial_failure_is_announced_next_cycle(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = world.deploy("errors")
    second = world.deploy("errors", endpoint_id="my-org-qwen-3-32b")
    client = world.poller.publisher._client
    real = client.put_events

    def refuse_first(**kwargs: Any) -> dict[str, Any]:
        entries = kwargs["Entries"]
        refused = [first in e["Detail"] for e in entries]
        accepted = [e for e, r in zip(entries, refused, strict=True) if not r]
        results = iter(real(Entries=accepted)["Entries"] if accepted else [])
        merged = [
            {"ErrorCode": "InternalFailure", "ErrorMessage": "injected"} if r else next(results)
            for r in refused
        ]
        return {"FailedEntryCount": sum(refused), "Entries": merged}

    monkeypatch.setattr(client, "put_events", refuse_first)
    world.clock.advance(20)
    world.poll()
    assert [e["deployment_id"] for e in changes(world)] == [second]
    monkeypatch.undo()
    world.clock.advance(10)  # the next interval
    world.poll()
    assert sorted(e["event_id"] for e in changes(world)) == sorted([f"{first}:1", f"{second}:1"])


def test_one_status_request_per_endpoint(world: World) -> None:
    endpoints = ["my-org-llama-3.3-70b", "my-org-qwen-3-32b"]
    for n in range(3):
        world.simulator.add_endpoint(f"my-org-extra-{n}", "llama-3.3-70b")
        endpoints.append(f"my-org-extra-{n}")
    for endpoint_id in endpoints:
        for _ in range(10):
            world.deploy("stalls", endpoint_id=endpoint_id, force=True)
    assert len(world.poller.store.deployments.in_flight()) == 50
    world.simulator.requests.clear()
    world.clock.advance(20)
    world.poll()
    assert world.simulator.count("GET") == 5
    assert world.simulator.count() == 5
    assert len(changes(world)) == 50  # every one moved to in_progress


@pytest.mark.parametrize("fault", [FaultKind.SERVER_ERROR, FaultKind.HANG])
def test_a_failing_endpoint_does_not_block_the_others(world: World, fault: FaultKind) -> None:
    world.deploy("errors")
    healthy = world.deploy("errors", endpoint_id="my-org-qwen-3-32b")
    world.simulator.inject(Fault(fault, times=100, seconds=30, path_contains="llama"))
    world.clock.advance(20)
    world.poll()
    assert [e["deployment_id"] for e in changes(world)] == [healthy]


def test_a_stall_is_announced_once_and_rearmed_by_progress(world: World) -> None:
    deployment_id = world.deploy("stalls")
    world.clock.advance(20)
    world.poll()  # in_progress, 1 replica
    world.clock.advance(1799)
    world.poll()
    assert world.emitted(STALLED) == []
    world.clock.advance(1)
    world.poll()
    world.clock.advance(600)
    world.poll()
    (stalled,) = [e["detail"] for e in world.emitted(STALLED)]
    assert stalled["event_id"] == f"{deployment_id}:stall:1"
    assert (stalled["rollout_status"], stalled["episode"]) == ("in_progress", 1)
    assert stalled["stalled_for_seconds"] == 1800
    assert stalled["listed_by_endpoint"] is True

    # Progress resumes (one more replica), then stops again: a second episode.
    deployment = world.simulator.deployment(deployment_id)
    elapsed = world.clock.now() - deployment.created
    deployment.scenario = Scenario(
        "resumes", (*deployment.scenario.steps, Step(elapsed + 5, "in_progress", 2))
    )
    world.clock.advance(10)
    world.poll()
    record = world.poller.store.deployments.get(deployment_id)
    assert (record.updated_replicas, record.stalled) == (2, False)
    world.clock.advance(1800)
    world.poll()
    episodes = [e["detail"]["episode"] for e in world.emitted(STALLED)]
    assert episodes == [1, 2]
    assert changes(world)[-1]["rollout_status"] == "in_progress"  # no status event for progress


def test_a_deployment_its_endpoint_never_lists_stalls(world: World) -> None:
    deployment_id = world.deploy("invisible")
    world.clock.advance(1800)
    world.poll()
    (stalled,) = [e["detail"] for e in world.emitted(STALLED)]
    assert stalled["deployment_id"] == deployment_id
    assert stalled["listed_by_endpoint"] is False
    assert stalled["rollout_status"] == "not_started"
    assert world.poller.store.deployments.get(deployment_id).listed is False
    assert len(world.poller.store.deployments.in_flight()) == 1  # never dropped


def test_an_idle_run_is_a_slot_claim_and_a_query_of_each_partition(world: World) -> None:
    calls: list[str] = []
    client = world.poller.store.deployments._table.client
    client.meta.events.register("before-call.dynamodb", lambda model, **_: calls.append(model.name))
    summary = world.poll()
    # the interval's slot, the rollouts in flight, and (the schedule's run) the version waits
    assert calls == ["UpdateItem", "Query", "Query"]
    assert world.queue.sent == 0  # nothing in flight: the chain ends here
    assert world.simulator.requests == type(world.simulator.requests)(maxlen=10_000)
    assert summary == {
        "cycles": 1,
        "in_flight": 0,
        "transitions": 0,
        "stalls": 0,
        "announced": 0,
        "discovered": 0,
        "versions_changed": 0,
    }


def test_unchanged_deployments_cost_no_write(world: World) -> None:
    world.deploy("stalls")
    world.clock.advance(20)
    world.poll()
    calls: list[str] = []
    world.poller.store.deployments._table.client.meta.events.register(
        "before-call.dynamodb", lambda model, **_: calls.append(model.name)
    )
    world.clock.advance(10)
    world.poll()
    assert calls == ["UpdateItem", "Query", "Query"]  # the slot, the index, the version waits


def test_an_unknown_status_is_kept_warned_once_and_counted(
    world: World, monitor_logs: pytest.LogCaptureFixture
) -> None:
    caplog = monitor_logs
    deployment_id = world.deploy("stalls")
    deployment = world.simulator.deployment(deployment_id)
    deployment.scenario = Scenario("draining", (Step(0, "Draining-Replicas", 0),))
    caplog.set_level(logging.WARNING)
    reports = [asyncio.run(world.poller.cycle()) for _ in range(2)]
    assert [r.unknown_statuses for r in reports] == [1, 0]
    warnings = [r for r in caplog.records if "unknown rollout status" in r.getMessage()]
    assert len(warnings) == 1
    record = world.poller.store.deployments.get(deployment_id)
    assert (record.status, record.status_known, record.terminal) == (
        "Draining-Replicas",
        False,
        False,
    )
    (event,) = changes(world)
    assert (event["rollout_status"], event["terminal"], event["outcome"]) == (
        "Draining-Replicas",
        False,
        None,
    )
    assert len(world.poller.store.deployments.in_flight()) == 1


def drive(world: World, seconds: float) -> Counter[int]:
    """Run the deployed trigger topology on the test's clock for ``seconds``: every poll
    queue message when due (each its own invocation) and the schedule every minute. Returns
    the cycles run per interval slot while anything was in flight."""
    interval = world.poller.settings.poll_interval_seconds
    until = world.clock.now() + seconds
    next_schedule = world.clock.now()
    cycles: Counter[int] = Counter()
    for _ in range(10_000):  # bounded: a chain that never waits fails the test, not CI
        if world.clock.now() >= until:
            break
        events = world.queue.receive()
        if world.clock.now() >= next_schedule:
            events.append(sample_event("scheduled-poll.json"))
            next_schedule += 60
        for event in events:
            result = world.runtimes["PollerFunction"].invoke(event)
            if result["cycles"] and result["in_flight"]:
                cycles[math.floor(world.clock.now() / interval)] += result["cycles"]
        world.router.settle()
        assert world.queue.waiting() <= 1  # one chain: never two next cycles queued
        due = min(t for t in (world.queue.next_due(), next_schedule) if t is not None)
        world.clock.advance(max(due - world.clock.now(), 0.0))
    return cycles


def test_starts_at_once_from_a_deploy_the_schedule_and_a_retry_make_one_chain(
    world: World,
) -> None:
    """A deploy's kick, the schedule and a redelivered message all start the chain in the
    same instant: one cycle per interval, each change announced within one interval, and the
    chain ends once nothing is in flight."""
    deployment_id = world.deploy("succeeds")
    assert world.queue.next_due() == world.clock.now()  # the deploy queued a start, due now
    world.queue.start(0, 0)  # the same start, delivered twice
    created = world.simulator.deployment(deployment_id).created
    interval = world.poller.settings.poll_interval_seconds
    cycles = drive(world, 200)
    assert world.clock.now() >= created + 200  # the drive ran its course
    assert set(cycles.values()) == {1}, cycles  # never two cycles in one interval
    first, last = min(cycles), max(cycles)
    assert first == math.floor(created / interval)  # the deploy's own interval, not a minute on
    assert sorted(cycles) == list(range(first, last + 1))  # and none skipped while in flight
    scripted = {"in_progress": 20, "done": 80}
    for event in changes(world):
        lag = event["observed_at"] - (created + scripted[event["rollout_status"]])
        assert 0 <= lag <= interval
    assert world.queue.waiting() == 0  # nothing in flight: the chain ended


def test_one_batch_of_two_shards_cycles_both_at_once_each_change_announced_once(
    world_with: Callable[[dict[str, str]], World],
) -> None:
    """An event of two shards' messages (the template's event source sends one, but a batch
    is a valid event): their cycles run at once, each on its own thread pool, sharing the
    invocation's connections; the one that ends first takes nothing from the other."""
    world = world_with({"PollShards": "2"})
    slow, quick = "my-org-llama-3.3-70b", "my-org-qwen-3-32b"  # shards 0 and 1
    ids = [world.deploy("succeeds", endpoint_id=e) for e in (slow, quick)]
    world.clock.advance(20)
    world.simulator.inject(Fault(FaultKind.LATENCY, times=2, path_contains=slow, seconds=0.3))
    built = _pollers_built(world)

    result = world.runtimes["PollerFunction"].invoke(_batch(0, 1))

    assert (result["cycles"], result["transitions"]) == (2, 2), result
    assert sorted((e["deployment_id"], e["rollout_status"]) for e in changes(world)) == sorted(
        (i, "in_progress") for i in ids
    )
    settings = world.poller.settings
    assert [(p.aws_concurrency, p.max_concurrency) for p in built] == [
        (settings.aws_max_concurrency // 2, settings.poll_max_concurrency // 2)
    ] * 2


def test_a_failed_shard_cycle_cuts_no_other_short_then_fails_the_run(
    world_with: Callable[[dict[str, str]], World], monkeypatch: pytest.MonkeyPatch
) -> None:
    world = world_with({"PollShards": "2"})
    deployment_id = world.deploy("succeeds", endpoint_id="my-org-llama-3.3-70b")  # shard 0
    world.clock.advance(20)
    deployments = world.poller.store.deployments
    query = deployments.in_flight

    def in_flight(shard: int | None = None) -> Any:
        if shard == 1:
            raise RuntimeError("shard 1's query failed")
        return query(shard)

    monkeypatch.setattr(deployments, "in_flight", in_flight)

    with pytest.raises(RuntimeError, match="shard 1's query failed"):
        world.runtimes["PollerFunction"].invoke(_batch(1, 0))

    assert [(e["deployment_id"], e["rollout_status"]) for e in changes(world)] == [
        (deployment_id, "in_progress")
    ]


def _batch(*shards: int) -> dict[str, Any]:
    return {"Records": [sqs_event(s, f"m-{s}")["Records"][0] for s in shards]}


def _pollers_built(world: World) -> list[Any]:
    """The Pollers the poller function builds from now on (a spy on its container)."""
    container = world.poller
    build = container._poller
    built: list[Any] = []

    def spy(*args: Any) -> Any:
        built.append(build(*args))
        return built[-1]

    container._poller = spy
    return built


def test_the_configured_per_deployment_route_is_used_instead(world: World) -> None:
    from rollout_monitor_local.simulator import DEPLOYMENT_ROUTE

    world.deploy("errors")
    world.deploy("errors", endpoint_id="my-org-qwen-3-32b")
    runtime = world.poller
    runtime.cerebras = runtime.cerebras.model_copy(
        update={"deployment_status_route": DEPLOYMENT_ROUTE}
    )
    world.simulator.requests.clear()
    world.clock.advance(40)
    world.poll()
    assert world.simulator.count("GET", "/deployments/") == 2
    assert world.simulator.count() == 2
    assert [e["rollout_status"] for e in changes(world)] == ["error", "error"]


def test_the_schedule_comes_from_the_template(world: World) -> None:
    (rule,) = [r for r in world.stack.rules.values() if r.schedule is not None]
    assert rule.schedule == "rate(1 minute)"
    assert rule.function_logical_id == "PollerFunction"


def test_metrics_are_emitted_as_emf(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    world.deploy("errors")
    world.deploy("errors", endpoint_id="my-org-qwen-3-32b")
    world.simulator.inject(Fault(FaultKind.SERVER_ERROR, times=100, path_contains="qwen"))
    environment = world.runtimes["PollerFunction"].environment
    monkeypatch.setitem(environment, "POWERTOOLS_METRICS_DISABLED", "false")
    capsys.readouterr()
    world.clock.advance(20)
    world.poll()
    (emf,) = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    names = {m["Name"] for m in emf["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert {
        "DeploymentsInFlight",
        "Transitions",
        "PollErrors.CerebrasServerError",
        "CycleDuration",
        "StatusReadLatency",
    } <= names
    assert (emf["DeploymentsInFlight"], emf["Transitions"]) == ([2.0], [1.0])
    assert emf["PollErrors.CerebrasServerError"] == [1.0]
    assert len(emf["StatusReadLatency"]) == 2
    assert "Stalls" not in names  # zero: not published, not billed


def test_an_idle_poller_publishes_no_metric(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    environment = world.runtimes["PollerFunction"].environment
    monkeypatch.setitem(environment, "POWERTOOLS_METRICS_DISABLED", "false")
    capsys.readouterr()
    assert world.poll()["cycles"] == 1
    assert '"_aws"' not in capsys.readouterr().out


def test_one_throttled_write_holds_back_no_other_record(world: World) -> None:
    """A write throttled past botocore's retries fails its record only, for this cycle."""
    from botocore.exceptions import ClientError

    world.simulator.add_endpoint("my-org-llama-3.3-70b-canary", "llama-3.3-70b")
    throttled = world.deploy("errors")
    others = [
        world.deploy("errors", endpoint_id="my-org-qwen-3-32b"),
        world.deploy("succeeds", endpoint_id="my-org-llama-3.3-70b-canary"),
    ]

    refused: list[str] = []

    def throttle(params: dict[str, Any], **_: Any) -> None:
        if throttled in str(params):
            refused.append(throttled)
            raise ClientError(
                {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow"}},
                "TransactWriteItems",
            )

    client = world.poller.store.deployments._table.client
    client.meta.events.register("before-parameter-build.dynamodb.TransactWriteItems", throttle)
    world.clock.advance(20)
    world.poll()
    announced = {e["deployment_id"] for e in changes(world)}
    assert refused  # the throttled record's write was really refused
    assert announced == set(others)  # every other record recorded and announced
    assert world.poller.store.deployments.get(throttled).status == "not_started"
    client.meta.events.unregister("before-parameter-build.dynamodb.TransactWriteItems", throttle)
    world.clock.advance(10)
    world.poll()  # the next cycle records it
    assert {e["deployment_id"] for e in changes(world)} == {throttled, *others}


LOST = "Rollout Lost"
LOST_AFTER = 900  # the template's default LostAfterSeconds


def lost_case(world: World, case: str) -> str:
    if case == "never listed":
        return world.deploy("invisible")
    deployment_id = world.deploy("stalls")
    world.clock.advance(20)
    world.poll()  # listed, in progress
    if case == "endpoint deleted (404)":
        del world.simulator.endpoints["my-org-llama-3.3-70b"]
    else:  # listed, then gone from the listing
        world.simulator.endpoints["my-org-llama-3.3-70b"].deployments.clear()
    return deployment_id


@pytest.mark.parametrize(
    ("case", "reason", "severity"),
    [
        ("endpoint deleted (404)", "endpoint_not_found", "critical"),
        ("never listed", "not_listed", "warning"),
        ("listed, then gone", "not_listed", "warning"),
    ],
)
def test_a_rollout_that_cannot_be_seen_ends_lost_once_and_frees_its_endpoint(
    world: World, case: str, reason: str, severity: str
) -> None:
    endpoint = world.simulator.endpoints["my-org-llama-3.3-70b"]
    deployment_id = lost_case(world, case)
    world.clock.advance(10)
    world.poll()  # first seen missing
    missing_since = world.clock.now()
    world.clock.advance(LOST_AFTER - 10)
    world.poll()
    assert world.emitted(LOST) == []  # not yet: within its deadline
    world.clock.advance(10)
    world.poll()
    world.clock.advance(10)
    world.poll()  # nothing more once lost
    world.router.settle()
    (lost,) = [e["detail"] for e in world.emitted(LOST)]
    assert (lost["event_id"], lost["reason"]) == (f"{deployment_id}:lost", reason)
    assert lost["unlisted_since"] == missing_since
    assert world.poller.store.deployments.in_flight() == []
    (alert,) = [a for a in world.alerts() if a.document["kind"] == "rollout_lost"]
    assert alert.attributes["severity"] == severity
    assert world.router.failures == []
    # The endpoint (created again, once deleted) takes the next request without force.
    endpoint.deployments.clear()
    world.simulator.endpoints["my-org-llama-3.3-70b"] = endpoint
    assert world.deploy("succeeds") != deployment_id


def test_a_loss_recorded_by_one_poller_is_not_undone_by_another(world: World) -> None:
    deployment_id = world.deploy("stalls")
    store = world.poller.store.deployments
    before = store.get(deployment_id)
    lost = before.model_copy(update={"lost_reason": "not_listed", "terminal_at": 1.0})
    assert store.save_observation(before, lost, None)
    still_listed = before.model_copy(update={"listed": True, "updated_replicas": 1})
    assert not store.save_observation(before, still_listed, None)  # read before the loss
    assert store.get(deployment_id).lost_reason == "not_listed"


def test_a_refused_group_write_falls_back_to_one_write_per_record(world: World) -> None:
    """Status changes of several records go in one transaction; if DynamoDB refuses it (a
    record lost its race, a throttle), each record is written alone and none is lost."""
    from botocore.exceptions import ClientError

    ids = [world.deploy("errors"), world.deploy("errors", endpoint_id="my-org-qwen-3-32b")]
    client = world.poller.store.deployments._table.client
    sizes: list[int] = []

    def refuse_groups(params: dict[str, Any], **_: Any) -> None:
        sizes.append(len(params["TransactItems"]))
        if len(params["TransactItems"]) > 2:  # more than one record's change
            raise ClientError(
                {"Error": {"Code": "TransactionCanceledException", "Message": "refused"}},
                "TransactWriteItems",
            )

    client.meta.events.register("before-parameter-build.dynamodb.TransactWriteItems", refuse_groups)
    world.clock.advance(20)
    world.poll()
    assert sizes[0] == 4  # both changes in one transaction first
    assert sorted(e["deployment_id"] for e in changes(world)) == sorted(ids)
    assert {world.poller.store.deployments.get(i).status for i in ids} == {"in_progress"}


def test_changes_are_written_while_slower_reads_still_wait(world: World) -> None:
    """A cycle writes each group of changes (here, of one) without waiting for the slowest
    read: here one endpoint's read answers only once the other's change is stored."""
    from rollout_monitor.cerebras.credentials import build_async_client
    from rollout_monitor.poller import Poller

    quick = world.deploy("errors")
    slow = world.deploy("errors", endpoint_id="my-org-qwen-3-32b")
    world.clock.advance(20)
    runtime = world.poller
    deployments = runtime.store.deployments
    stored: list[str] = []
    save = deployments.save_observation

    def save_and_tell(before: Any, after: Any, entry: Any) -> bool:
        saved: bool = save(before, after, entry)
        stored.append(after.deployment_id)
        return saved

    async def cycle() -> Any:
        loop = asyncio.get_running_loop()
        quick_stored = asyncio.Event()
        client = build_async_client(runtime.cerebras, 4)

        def tell(before: Any, after: Any, entry: Any) -> bool:
            saved = save_and_tell(before, after, entry)
            loop.call_soon_threadsafe(quick_stored.set)
            return saved

        class HoldingReader:
            async def get_endpoint(self, endpoint_id: str) -> Any:
                if endpoint_id == "my-org-qwen-3-32b":  # a failure here fails; it never hangs
                    await asyncio.wait_for(quick_stored.wait(), timeout=60)
                return await client.get_endpoint(endpoint_id)

        deployments.save_observation = tell
        try:
            poller = Poller(
                deployments,
                runtime.store.endpoints,
                HoldingReader(),
                runtime.publisher,
                now=world.clock.now,
                group_size=1,
            )
            return await poller.cycle()
        finally:
            del deployments.save_observation
            await client.aclose()

    report = asyncio.run(cycle())
    assert stored == [quick, slow]
    assert report.transitions == 2
    assert sorted(e["deployment_id"] for e in changes(world)) == sorted([quick, slow])
