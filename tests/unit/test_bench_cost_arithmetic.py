"""The cost model: counted operations to capacity units, billed durations and dollars."""

from __future__ import annotations

import math

import pytest

from benchmarks.prices import (
    HOURS_PER_MONTH,
    LAMBDA_GB_SECOND,
    CallTimes,
    Usage,
    bill,
    billed_ms,
    concurrent_ms,
    event_source_requests,
    fixed_resources,
    gb_seconds,
    item_bytes,
    metric_hours,
    read_units,
    write_units,
)


def test_write_units_round_up_per_kb_and_double_in_a_transaction() -> None:
    assert write_units(1) == 1
    assert write_units(1024) == 1
    assert write_units(1025) == 2
    assert write_units(1025, transactional=True) == 4
    assert write_units(0) == 1  # an item never seen, or a failed condition: still one


def test_read_units_are_4_kb_each_and_half_when_eventually_consistent() -> None:
    assert read_units(0, consistent=False) == 0.5  # an empty query still reads
    assert read_units(4096, consistent=True) == 1
    assert read_units(4097, consistent=True) == 2
    assert read_units(100 * 1700, consistent=False) == math.ceil(170_000 / 4096) / 2


def test_item_size_counts_names_values_and_the_overhead_of_lists_and_maps() -> None:
    assert item_bytes({"pk": {"S": "ab"}}) == 4
    assert item_bytes({"n": {"N": "12345"}}) == 1 + 3 + 1  # 5 digits: 3 bytes, plus one
    assert item_bytes({"n": {"N": "-0.00120"}}) == 1 + 1 + 1  # "12": leading/trailing zeros go
    assert item_bytes({"ok": {"BOOL": True}}) == 3
    listed = {"l": {"L": [{"S": "xy"}, {"N": "7"}]}}
    assert item_bytes(listed) == 1 + 3 + (1 + 2) + (1 + 2)
    mapped = {"m": {"M": {"k": {"S": "v"}}}}
    assert item_bytes(mapped) == 1 + 3 + (1 + 1 + 1)


def test_a_poller_cycle_is_charged_by_waves_of_concurrent_calls() -> None:
    times = CallTimes(aws_ms=10, cerebras_ms=50, aws_concurrency=16, read_concurrency=10)
    idle = concurrent_ms(2, {}, 0, times)
    assert idle == 20  # the slot claim and the index query
    busy = concurrent_ms(3, {"write": 100, "publish": 10, "clear": 100}, 100, times)
    assert busy == (3 + 7 + 1 + 7) * 10 + 10 * 50
    assert billed_ms(0.2) == 1
    assert billed_ms(530.01) == 531


def test_duration_is_priced_per_gb_second() -> None:
    assert gb_seconds(1000, 256) == 0.25
    usage = Usage(lambda_gb_seconds=gb_seconds(1000, 1024) * 1_000_000)
    assert bill(usage)["Lambda duration"] == pytest.approx(1_000_000 * LAMBDA_GB_SECOND)


def test_a_month_of_the_event_sources_polls() -> None:
    polls = event_source_requests(HOURS_PER_MONTH, 0)
    assert polls == 5 * HOURS_PER_MONTH * 180  # five pollers, one 20 s receive each
    assert event_source_requests(1, 30) == 5 * 180 + 60
    assert bill(Usage(sqs_requests=polls))["SQS requests"] == pytest.approx(polls * 0.40 / 1e6)


def test_a_metric_costs_a_hour_for_each_clock_hour_it_is_published_in() -> None:
    published = [(10.0, "Cycles"), (3500.0, "Cycles"), (3700.0, "Cycles"), (20.0, "Stalls")]
    assert metric_hours(published) == 3
    month = bill(Usage(metric_hours=7 * HOURS_PER_MONTH))["CloudWatch metrics"]
    assert month == pytest.approx(7 * 0.30)


def test_usage_adds_and_scales_field_by_field() -> None:
    hour = Usage(lambda_requests=60, write_units=60, events=2)
    month = hour.times(HOURS_PER_MONTH) + Usage(stored_gb=0.001)
    assert (month.lambda_requests, month.write_units, month.events) == (43_800, 43_800, 1460)
    assert month.stored_gb == 0.001


def test_alarms_are_priced_by_the_metrics_they_evaluate() -> None:
    template = {
        "Resources": {
            "One": {"Type": "AWS::CloudWatch::Alarm", "Properties": {"MetricName": "x"}},
            "Math": {
                "Type": "AWS::CloudWatch::Alarm",
                "Properties": {
                    "Metrics": [
                        {"Id": "total", "Expression": "a + b"},
                        {"Id": "a", "MetricStat": {}},
                        {"Id": "b", "MetricStat": {}},
                    ]
                },
            },
            "Queue": {"Type": "AWS::SQS::Queue"},
        }
    }
    fixed = fixed_resources(template)
    assert (fixed.alarms, fixed.alarm_metrics, fixed.dashboards, fixed.kms_keys) == (2, 3, 0, 0)
