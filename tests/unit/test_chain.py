"""The poll chain: whoever claims an interval's slot runs its cycle and queues the next."""

from __future__ import annotations

import asyncio

import boto3
import pytest

from rollout_monitor.chain import MAX_QUEUE_DELAY_SECONDS, PollChain
from rollout_monitor.poller import CycleReport
from rollout_monitor.trigger import SqsPollTrigger, shards_in
from rollout_monitor_local.clock import ManualClock
from rollout_monitor_local.pollqueue import VirtualPollQueue, sqs_event


class Slots:
    def __init__(self) -> None:
        self.last: dict[int, int] = {}

    def claim(self, shard: int, slot: int) -> bool:
        if self.last.get(shard, -1) >= slot:
            return False
        self.last[shard] = slot
        return True


def chain(clock: ManualClock) -> tuple[PollChain, VirtualPollQueue]:
    queue = VirtualPollQueue(clock.now)
    return PollChain(Slots(), queue, 10.0, clock.now), queue


def cycle_with(indexed: int, clock: ManualClock, seconds: float = 0.0) -> object:
    async def cycle(shard: int) -> CycleReport:
        clock.advance(seconds)
        return CycleReport(indexed=indexed, in_flight=indexed)

    return cycle


def test_the_next_cycle_is_queued_for_the_start_of_the_next_slot() -> None:
    clock = ManualClock(1_000_003.0)  # 3 s into a slot
    poll, queue = chain(clock)
    report = asyncio.run(poll.run(0, cycle_with(1, clock, seconds=1.5)))  # type: ignore[arg-type]
    assert report is not None
    # 4.5 s into the slot: 5.5 s to the next, rounded up (SQS delays are whole seconds), so
    # the start never arrives before its slot, which would find the old one taken.
    assert queue.next_due() == 1_000_010.5


def test_a_second_start_in_the_same_slot_runs_nothing_and_queues_nothing() -> None:
    clock = ManualClock(1_000_000.0)
    poll, queue = chain(clock)
    asyncio.run(poll.run(0, cycle_with(1, clock)))  # type: ignore[arg-type]
    again = asyncio.run(poll.run(0, cycle_with(1, clock)))  # type: ignore[arg-type]
    assert (again, queue.waiting()) == (None, 1)


def test_the_chain_ends_when_the_shard_is_empty() -> None:
    clock = ManualClock(1_000_000.0)
    poll, queue = chain(clock)
    asyncio.run(poll.run(0, cycle_with(0, clock)))  # type: ignore[arg-type]
    assert queue.waiting() == 0


def test_a_failed_cycle_still_queues_the_next() -> None:
    clock = ManualClock(1_000_000.0)
    poll, queue = chain(clock)

    async def failing(shard: int) -> CycleReport:
        raise RuntimeError("DynamoDB is down")

    with pytest.raises(RuntimeError):
        asyncio.run(poll.run(0, failing))
    assert queue.waiting() == 1


def test_a_cycle_longer_than_the_interval_starts_the_next_at_once() -> None:
    clock = ManualClock(1_000_000.0)
    poll, queue = chain(clock)
    asyncio.run(poll.run(0, cycle_with(1, clock, seconds=25)))  # type: ignore[arg-type]
    assert queue.next_due() == clock.now()


def test_the_queue_refuses_a_delay_sqs_would() -> None:
    queue = VirtualPollQueue(ManualClock().now)
    with pytest.raises(ValueError, match="DelaySeconds"):
        queue.start(0, MAX_QUEUE_DELAY_SECONDS + 1)


def test_the_sqs_trigger_sends_the_shard_with_its_delay(aws: None) -> None:
    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName="poll")["QueueUrl"]
    trigger = SqsPollTrigger(url, sqs)
    trigger.start(3, 0)
    trigger.start(4, 60)  # hidden for a minute
    (message,) = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert shards_in({"Records": [{"body": message["Body"]}]}) == [3]


def test_a_batch_names_each_shard_once_and_skips_what_is_not_ours() -> None:
    records = [*sqs_event(1)["Records"], *sqs_event(1)["Records"], *sqs_event(0)["Records"]]
    records += [{"body": "not json"}, {"body": '{"shard": true}'}, {"nobody": 1}]
    assert shards_in({"Records": records}) == [0, 1]
    assert shards_in({"source": "aws.events"}) is None  # the schedule
