"""AWS list prices and the arithmetic from counted operations to a monthly bill.

List prices as of 2026-11, us-east-1, from each service's pricing page (the source beside each
constant); free tiers are NOT applied (SQS's first million requests, Lambda's monthly grant,
CloudWatch's ten free metrics...). ``benchmarks/cost.py`` counts; nothing here runs anything.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

PRICES_AS_OF = "2026-11"
REGION = "us-east-1"
HOURS_PER_MONTH = 730  # the month of AWS's pricing calculator

# https://aws.amazon.com/lambda/pricing/ (2026-11): arm64
LAMBDA_GB_SECOND = 0.0000133334
LAMBDA_REQUEST = 0.20 / 1e6
# https://aws.amazon.com/dynamodb/pricing/on-demand/ (2026-11)
DYNAMODB_WRITE_UNIT = 0.625 / 1e6
DYNAMODB_READ_UNIT = 0.125 / 1e6
DYNAMODB_STORAGE_GB_MONTH = 0.25
DYNAMODB_PITR_GB_MONTH = 0.20  # continuous backups: the template enables them
# https://aws.amazon.com/eventbridge/pricing/ (2026-11): custom events; scheduled ones are free
EVENTBRIDGE_EVENT = 1.00 / 1e6
# https://aws.amazon.com/sqs/pricing/ (2026-11): standard queue, per 64 KB request
SQS_REQUEST = 0.40 / 1e6
# https://aws.amazon.com/cloudwatch/pricing/ (2026-11)
CLOUDWATCH_METRIC_MONTH = 0.30  # billed pro rata for each hour a metric is published
CLOUDWATCH_LOGS_INGESTED_GB = 0.50  # EMF metrics are log lines: free to publish, not to ingest
CLOUDWATCH_LOGS_STORED_GB_MONTH = 0.03
CLOUDWATCH_ALARM_METRIC_MONTH = 0.10  # standard resolution, per metric an alarm evaluates
CLOUDWATCH_DASHBOARD_MONTH = 3.00
# https://aws.amazon.com/secrets-manager/pricing/ (2026-11)
SECRET_MONTH = 0.40
SECRET_API_CALL = 0.05 / 10_000
# https://aws.amazon.com/sns/pricing/ (2026-11)
SNS_PUBLISH = 0.50 / 1e6
SNS_EMAIL = 2.00 / 100_000
# https://aws.amazon.com/kms/pricing/ (2026-11): a customer managed key
KMS_KEY_MONTH = 1.00

# A Lambda SQS event source polls its queue all the time, with long polling (20 s waits), five
# pollers while traffic is low (docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html
# says five, and "as few as 2"): this charges five, each waiting 20 s per empty receive.
EVENT_SOURCE_POLLERS = 5
EVENT_SOURCE_WAIT_SECONDS = 20


@dataclass
class Usage:
    """What a month (or a run) used, in the units each service bills."""

    lambda_requests: float = 0.0
    lambda_gb_seconds: float = 0.0
    write_units: float = 0.0
    read_units: float = 0.0
    stored_gb: float = 0.0  # table and index, all month
    events: float = 0.0  # EventBridge custom events (PutEvents entries)
    sqs_requests: float = 0.0
    metric_hours: float = 0.0  # (custom metric, hour) pairs published
    logs_gb: float = 0.0
    secret_calls: float = 0.0
    sns_publishes: float = 0.0
    emails: float = 0.0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            **{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)}
        )

    def times(self, factor: float) -> Usage:
        return Usage(**{f.name: getattr(self, f.name) * factor for f in fields(self)})


def bill(usage: Usage) -> dict[str, float]:
    """The data path's monthly charges, line by line (US dollars)."""
    return {
        "Lambda requests": usage.lambda_requests * LAMBDA_REQUEST,
        "Lambda duration": usage.lambda_gb_seconds * LAMBDA_GB_SECOND,
        "DynamoDB writes": usage.write_units * DYNAMODB_WRITE_UNIT,
        "DynamoDB reads": usage.read_units * DYNAMODB_READ_UNIT,
        "DynamoDB storage+PITR": usage.stored_gb
        * (DYNAMODB_STORAGE_GB_MONTH + DYNAMODB_PITR_GB_MONTH),
        "EventBridge events": usage.events * EVENTBRIDGE_EVENT,
        "SQS requests": usage.sqs_requests * SQS_REQUEST,
        "CloudWatch metrics": usage.metric_hours / HOURS_PER_MONTH * CLOUDWATCH_METRIC_MONTH,
        # A month's logs, ingested, then stored for that month (no retention is set: they
        # stay, and each later month stores them again).
        "CloudWatch Logs": usage.logs_gb
        * (CLOUDWATCH_LOGS_INGESTED_GB + CLOUDWATCH_LOGS_STORED_GB_MONTH),
        "Secrets Manager calls": usage.secret_calls * SECRET_API_CALL,
        "SNS publish+email": usage.sns_publishes * SNS_PUBLISH + usage.emails * SNS_EMAIL,
    }


# -- Lambda duration ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CallTimes:
    """What a call is charged in billed duration (moto's and the simulator's own times are
    not representative of AWS and Cerebras)."""

    aws_ms: float = 10.0  # one DynamoDB, EventBridge, SQS, SNS or Secrets Manager call
    cerebras_ms: float = 50.0  # one Cerebras Management API call (configured, not measured)
    aws_concurrency: int = 16  # the poller's AWS calls at once (PollerSettings)
    read_concurrency: int = 10  # the poller's status reads at once (PollerSettings)


def billed_ms(milliseconds: float) -> int:
    """Lambda bills duration rounded up to the millisecond."""
    return max(1, math.ceil(milliseconds))


def sequential_ms(aws_calls: int, cerebras_calls: int, times: CallTimes) -> float:
    """An invocation that makes its calls one after the other."""
    return aws_calls * times.aws_ms + cerebras_calls * times.cerebras_ms


def concurrent_ms(
    serial_calls: int, fanned_out: Mapping[str, int], reads: int, times: CallTimes
) -> float:
    """A poller cycle: its serial calls one after the other; each fanned-out step (calls of
    one kind for many records at once) in waves of ``aws_concurrency``; status reads in waves
    of ``read_concurrency``."""
    waves = serial_calls + sum(math.ceil(n / times.aws_concurrency) for n in fanned_out.values())
    return waves * times.aws_ms + math.ceil(reads / times.read_concurrency) * times.cerebras_ms


def gb_seconds(milliseconds: int, memory_mb: int) -> float:
    return milliseconds / 1000 * memory_mb / 1024


def event_source_requests(hours: float, batches: int) -> float:
    """SQS requests of the poll queue's Lambda event source: its pollers' long polls all the
    time, plus a receive and a DeleteMessageBatch for each batch it delivers."""
    polls = EVENT_SOURCE_POLLERS * hours * 3600 / EVENT_SOURCE_WAIT_SECONDS
    return polls + 2 * batches


def metric_hours(published: Iterable[tuple[float, str]]) -> int:
    """Custom metrics are billed for each hour they are published in: the distinct
    (clock hour, metric name) pairs of ``(time, name)`` publications."""
    return len({(math.floor(at / 3600), name) for at, name in published})


# -- DynamoDB capacity units ---------------------------------------------------------------------


def write_units(item_bytes: int, *, transactional: bool = False) -> int:
    """An on-demand write: one unit per KB of the item (the larger of before and after),
    two in a transaction."""
    units = max(1, math.ceil(item_bytes / 1024))
    return 2 * units if transactional else units


def read_units(total_bytes: int, *, consistent: bool) -> float:
    """A GetItem or Query: one unit per 4 KB of what it read (at least one), half for an
    eventually consistent read (every read of a global secondary index)."""
    units = max(1, math.ceil(total_bytes / 4096))
    return units if consistent else units / 2


def item_bytes(item: Mapping[str, Any]) -> int:
    """An item's size as DynamoDB counts it (approximately, as its developer guide says):
    attribute names and values in UTF-8; a number one byte per two significant digits plus
    one; a list or map three bytes, and one per element, over its contents."""
    return sum(len(name.encode()) + value_bytes(value) for name, value in item.items())


def value_bytes(value: Mapping[str, Any]) -> int:
    ((kind, data),) = value.items()
    if kind == "L":
        return 3 + sum(1 + value_bytes(v) for v in data)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + value_bytes(v) for k, v in data.items())
    return _SCALAR_BYTES[kind](data)


_SCALAR_BYTES: dict[str, Callable[[Any], int]] = {
    "S": lambda data: len(str(data).encode()),
    "N": lambda data: number_bytes(str(data)),
    "B": len,
    "BOOL": lambda _: 1,
    "NULL": lambda _: 1,
    "SS": lambda data: sum(len(str(s).encode()) for s in data),
    "NS": lambda data: sum(number_bytes(str(n)) for n in data),
    "BS": lambda data: sum(len(b) for b in data),
}


def number_bytes(text: str) -> int:
    mantissa = re.split("[eE]", text.strip().lstrip("+-"))[0]
    digits = mantissa.replace(".", "").strip("0") or "0"
    return math.ceil(len(digits) / 2) + 1


# -- fixed prices, from the template -----------------------------------------------------------


@dataclass(frozen=True)
class FixedResources:
    alarms: int
    alarm_metrics: int
    dashboards: int
    kms_keys: int
    metrics_by_alarm: dict[str, int] = field(default_factory=dict)  # logical id: metrics


def fixed_resources(template: Mapping[str, Any]) -> FixedResources:
    """What the template creates that costs the same every month: alarms (billed per metric
    they evaluate: a metric-math alarm over three queues is three), dashboards, KMS keys."""
    resources = list(template.get("Resources", {}).values())
    alarms = {
        name: r
        for name, r in template.get("Resources", {}).items()
        if r.get("Type") == "AWS::CloudWatch::Alarm"
    }
    by_alarm = {
        name: max(
            1,
            sum(1 for q in alarm.get("Properties", {}).get("Metrics") or [] if "MetricStat" in q),
        )
        for name, alarm in alarms.items()
    }
    return FixedResources(
        alarms=len(alarms),
        alarm_metrics=sum(by_alarm.values()),
        metrics_by_alarm=by_alarm,
        dashboards=sum(1 for r in resources if r.get("Type") == "AWS::CloudWatch::Dashboard"),
        kms_keys=sum(1 for r in resources if r.get("Type") == "AWS::KMS::Key"),
    )
