"""``make cost``'s arithmetic and its sheet: counted invocations to billed durations, to a
month's usage, to dollars (``benchmarks/prices.py``), printed beside the old design's."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from benchmarks.meter import CLIENT, SERIAL, Invocation
from benchmarks.prices import (
    CLOUDWATCH_ALARM_METRIC_MONTH,
    CLOUDWATCH_DASHBOARD_MONTH,
    EVENT_SOURCE_POLLERS,
    EVENT_SOURCE_WAIT_SECONDS,
    HOURS_PER_MONTH,
    KMS_KEY_MONTH,
    PRICES_AS_OF,
    REGION,
    SECRET_MONTH,
    CallTimes,
    FixedResources,
    Usage,
    bill,
    billed_ms,
    concurrent_ms,
    event_source_requests,
    gb_seconds,
    metric_hours,
    sequential_ms,
)
from benchmarks.world import POLLER

TIMES = CallTimes()
IDLE_MONTH_TARGET = 0.50
BUSY_MINUTE_TARGET_SECONDS = 5.0
SCENARIOS = ("idle", "burst", "stall")


@dataclass
class Phase:
    invocations: list[Invocation]
    start: float
    seconds: float
    stored_bytes: int  # table and index at the end


def charged_ms(invocation: Invocation, design: str) -> int:
    """An invocation's billed duration, from its counted calls (``prices.CallTimes``)."""
    calls = invocation.calls
    if invocation.function != POLLER:
        return billed_ms(sequential_ms(len(calls), invocation.cerebras, TIMES))
    if design == "old":  # billed from its start to the end of its last cycle
        offset, first = invocation.cycle_starts[-1]
        last = calls[first:]
        made = sum(max(c.records, 1) if c.operation == "PutEvents" else 1 for c in last)
        reads = invocation.reports[-1].status_requests
        return billed_ms(offset * 1000 + concurrent_ms(made, {}, reads, TIMES))
    serial = sum(1 for c in calls if c.step == SERIAL)
    fanned = Counter(c.step for c in calls if c.step != SERIAL)
    return billed_ms(concurrent_ms(serial, fanned, invocation.cerebras, TIMES))


def usage(phase: Phase, design: str, memory_mb: int) -> Usage:
    """What a phase used (storage apart)."""
    functions = [i for i in phase.invocations if i.function != CLIENT]
    calls = [(i, c) for i in phase.invocations for c in i.calls]
    batches = sum(1 for i in functions if i.trigger == "queue")
    secret_windows = {
        (i.function, math.floor((i.at - phase.start) / 300)) for i in functions if i.cerebras
    }
    units = sum(c.write_units + (c.as_transaction if design == "old" else 0) for _, c in calls)
    sqs = sum(1 for _, c in calls if c.operation == "SendMessage")
    publishes = sum(1 for _, c in calls if c.operation == "Publish")
    return Usage(
        lambda_requests=len(functions),
        lambda_gb_seconds=sum(gb_seconds(charged_ms(i, design), memory_mb) for i in functions),
        write_units=units,
        read_units=sum(c.read_units for _, c in calls),
        events=sum(c.entries for _, c in calls),
        sqs_requests=sqs
        + (event_source_requests(phase.seconds / 3600, batches) if design == "new" else 0),
        metric_hours=metric_hours((i.at - phase.start, m) for i in functions for m in i.metrics),
        logs_gb=sum(i.log_bytes for i in functions) / 1024**3,
        # One warm container per function; the key is cached 300 s (CerebrasSettings).
        secret_calls=len(secret_windows),
        sns_publishes=publishes,
        emails=publishes,  # one email subscription (AlertEmail)
    )


def months(phases: dict[str, Phase], design: str, memory_mb: int) -> dict[str, Usage]:
    def stored(phase: Phase) -> Usage:
        return Usage(stored_gb=phase.stored_bytes / 1024**3)

    def hours(phase: Phase) -> float:
        return phase.seconds / 3600

    idle = usage(phases["idle"], design, memory_mb)
    burst, stall = phases["burst"], phases["stall"]
    steady = usage(phases["steady"], design, memory_mb).times(1 / hours(phases["steady"]))
    return {
        "idle": idle.times(HOURS_PER_MONTH / hours(phases["idle"])) + stored(phases["idle"]),
        "burst": usage(burst, design, memory_mb)
        + idle.times(HOURS_PER_MONTH - hours(burst))
        + stored(burst),
        "stall": usage(stall, design, memory_mb)
        + steady.times(HOURS_PER_MONTH - hours(stall))
        + stored(phases["steady"]),
    }


def busy_minutes(
    phase: Phase,
    design: str,
    rollouts: int,
    charge: Callable[[Invocation, str], int] | None = None,
) -> list[float]:
    """Billed poller seconds of each minute in which every cycle had all the rollouts in
    flight."""
    minutes: dict[int, list[Invocation]] = defaultdict(list)
    for invocation in phase.invocations:
        if invocation.function == POLLER:
            minutes[math.floor((invocation.at - phase.start) / 60)].append(invocation)
    busy = []
    for minute in sorted(minutes):
        seen = [n for i in minutes[minute] for n in _in_flight(i, design)]
        if seen and all(n == rollouts for n in seen):
            busy.append(sum((charge or charged_ms)(i, design) for i in minutes[minute]) / 1000)
    return busy


def _in_flight(invocation: Invocation, design: str) -> list[int]:
    if design == "old":
        return [r.in_flight for r in invocation.reports]
    result = invocation.result
    return [result["in_flight"]] if result and result.get("cycles") else []


def sequential_charged_ms(invocation: Invocation, design: str) -> int:
    """As :func:`charged_ms` for a poller invocation, but every AWS call one after the other."""
    del design
    reads = math.ceil(invocation.cerebras / TIMES.read_concurrency)
    return billed_ms(sequential_ms(len(invocation.calls), reads, TIMES))


# -- the sheet ----------------------------------------------------------------------------------

COLUMNS = [(scenario, design) for scenario in SCENARIOS for design in ("new", "old")]
HEADINGS = {"idle": "idle month", "burst": "100 x 15 min", "stall": "1 stalled, month"}


def print_sheet(months: Mapping[str, Mapping[str, Usage]]) -> float:
    """The data path's dollars a month, line by line; returns the new design's idle month."""
    bills = {(s, d): bill(months[d][s]) for s, d in COLUMNS}
    print(f"{'data path, $ a month':<24}" + "".join(f"{HEADINGS[s]:>18}" for s in SCENARIOS))
    print(f"{'':<24}" + "".join(f"{d:>9}" for _, d in COLUMNS))
    for line in bills[COLUMNS[0]]:
        print(f"{line:<24}" + "".join(f"{bills[c][line]:9.4f}" for c in COLUMNS))
    totals = {c: sum(bills[c].values()) for c in COLUMNS}
    print(f"{'data path total':<24}" + "".join(f"{totals[c]:9.4f}" for c in COLUMNS))
    return totals[("idle", "new")]


def print_counts(months: Mapping[str, Mapping[str, Usage]]) -> None:
    """What the dollars are made of, a month."""
    rows: dict[str, Callable[[Usage], float]] = {
        "Lambda requests": lambda u: u.lambda_requests,
        "Lambda GB-s": lambda u: u.lambda_gb_seconds,
        "DynamoDB WRU": lambda u: u.write_units,
        "DynamoDB RRU": lambda u: u.read_units,
        "EventBridge events": lambda u: u.events,
        "SQS requests": lambda u: u.sqs_requests,
        "metric-hours": lambda u: u.metric_hours,
        "log MB": lambda u: u.logs_gb * 1024,
        "SNS emails": lambda u: u.emails,
    }
    print(f"{'counted, a month':<24}" + "".join(f"{d:>9}" for _, d in COLUMNS))
    for label, of in rows.items():
        print(f"{label:<24}" + "".join(f"{_quantity(of(months[d][s])):>9}" for s, d in COLUMNS))


def _quantity(value: float) -> str:
    if value >= 1e6:
        return f"{value / 1e6:.2f}M"
    if value >= 1e4:
        return f"{value / 1e3:.1f}k"
    return f"{value:.1f}" if value < 100 else f"{value:.0f}"


def print_fixed(fixed: FixedResources) -> float:
    """What costs the same every month, whatever the traffic; returns its total."""
    lines = {"Secrets Manager secret (the Cerebras key)": SECRET_MONTH}
    lines |= {
        f"alarm {name} ({metrics} metric{'s' if metrics > 1 else ''})": (
            metrics * CLOUDWATCH_ALARM_METRIC_MONTH
        )
        for name, metrics in fixed.metrics_by_alarm.items()
    }
    lines |= {
        f"KMS customer managed keys: {fixed.kms_keys or 'none'} (OpsKmsKeyArn: bring your own)": (
            fixed.kms_keys * KMS_KEY_MONTH
        ),
        f"CloudWatch dashboards: {fixed.dashboards or 'none'} (CreateDashboard=false: none)": (
            fixed.dashboards * CLOUDWATCH_DASHBOARD_MONTH
        ),
    }
    print("fixed, $ a month, whatever the traffic (not in the totals above):")
    for label, dollars in lines.items():
        print(f"  {label:<64}{dollars:6.2f}")
    print(
        f"  (the alert topic uses alias/aws/sns, AWS managed: no monthly fee; a key of your own "
        f"for the secret adds ${KMS_KEY_MONTH:.2f}; the schema registry's custom schemas are "
        "free; the event archive is billed per GB archived and stored, a few cents here)"
    )
    total = sum(lines.values())
    print(f"  {'fixed total':<64}{total:6.2f}")
    return total


def print_assumptions() -> None:
    polls = event_source_requests(HOURS_PER_MONTH, 0)
    for line in (
        f"list prices as of {PRICES_AS_OF}, {REGION}; free tiers NOT applied; a month is "
        f"{HOURS_PER_MONTH} h",
        f"Lambda duration is charged, not measured (moto and the simulator are not AWS and "
        f"Cerebras): {TIMES.aws_ms:.0f} ms an AWS call, {TIMES.cerebras_ms:.0f} ms a Cerebras "
        "call (configured),",
        f"  a poller cycle's fanned-out calls in waves of {TIMES.aws_concurrency} and its "
        f"status reads in waves of {TIMES.read_concurrency}; rounded up to 1 ms; "
        "the functions' own CPU time is not charged;",
        "  cold starts (INIT is billed since 2025-08) are not counted: a function invoked "
        "every minute stays warm",
        f"SQS: the poll queue's event source long-polls all month, {EVENT_SOURCE_POLLERS} pollers"
        f" x {EVENT_SOURCE_WAIT_SECONDS} s waits = {polls:,.0f} receives, plus a receive and a "
        "delete a batch (AWS may go down to 2 pollers)",
        "DynamoDB: units from item sizes (1 KB a write unit, 2 in a transaction, again for an "
        "item on the InFlight index; 4 KB a read unit,",
        "  half when eventually consistent, as every index query is); storage: table and index "
        "at the end of the run, all month, with PITR",
        "logs: the bytes the functions wrote (JSON lines, EMF blobs); SystemLogLevel WARN sends "
        "no START/REPORT lines; no retention is set,",
        "  so each month's logs are stored again every later month",
        "Secrets Manager: one GetSecretValue per function and 5 minutes with Cerebras calls "
        "(its 300 s cache, one warm container); SNS: one email subscriber",
        "old: today's cycle on the old topology (benchmarks/cost.py), its per-record PutEvents, "
        "transactional progress writes and always-on metrics",
    ):
        print(line)
