"""Evaluate a template's CloudWatch alarm against the metrics in moto, as CloudWatch would.

moto stores metric data but does not evaluate alarms or metric math. This reads an alarm's
definition from the translated template (its ``Ref`` resolved against the stack), fetches each
metric's datapoints per period from moto, computes the alarm's expression (the arithmetic and
``FILL`` the template uses) and applies ``EvaluationPeriods``, ``DatapointsToAlarm``,
``ComparisonOperator`` and ``TreatMissingData`` over the periods ending at ``now``.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import boto3

from rollout_monitor_local.stack import Stack

type Series = list[float | None]  # one value per period, oldest first; None: no data

_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "GreaterThanThreshold": operator.gt,
    "GreaterThanOrEqualToThreshold": operator.ge,
    "LessThanThreshold": operator.lt,
    "LessThanOrEqualToThreshold": operator.le,
}
_ARITHMETIC: dict[type[ast.operator], Callable[[float, float], float]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
}


def alarm_state(stack: Stack, logical_id: str, now: float, parameters: dict[str, str]) -> str:
    """``ALARM`` or ``OK``: the alarm's state at ``now`` (epoch seconds)."""
    alarm = _resolve(stack.template["Resources"][logical_id]["Properties"], stack, parameters)
    periods = int(alarm["EvaluationPeriods"])
    series = _values(alarm, stack, now, periods)
    treat = alarm.get("TreatMissingData", "missing")
    compare = _COMPARE[alarm["ComparisonOperator"]]
    threshold = float(alarm["Threshold"])
    breaching = 0
    for value in series:
        if value is None:
            breaching += treat == "breaching"
        else:
            breaching += compare(value, threshold)
    return "ALARM" if breaching >= int(alarm.get("DatapointsToAlarm", periods)) else "OK"


def _values(alarm: dict[str, Any], stack: Stack, now: float, periods: int) -> Series:
    if "Metrics" not in alarm:
        metric = {
            "Namespace": alarm["Namespace"],
            "MetricName": alarm["MetricName"],
            "Dimensions": alarm.get("Dimensions", []),
        }
        return _fetch(metric, alarm["Statistic"], int(alarm["Period"]), now, periods)
    fetched: dict[str, Series] = {}
    for query in alarm["Metrics"]:
        if "MetricStat" in query:
            stat = query["MetricStat"]
            fetched[query["Id"]] = _fetch(
                stat["Metric"], stat["Stat"], int(stat["Period"]), now, periods
            )
    (returned,) = [q for q in alarm["Metrics"] if q.get("ReturnData", True)]
    if "Expression" not in returned:
        return fetched[returned["Id"]]
    tree = ast.parse(returned["Expression"], mode="eval").body
    return [_compute(tree, {k: v[i] for k, v in fetched.items()}) for i in range(periods)]


def _compute(node: ast.expr, values: dict[str, float | None]) -> float | None:
    """The template's metric math for one period: names, numbers, + - *, FILL(m, value)."""
    if isinstance(node, ast.Name):
        return values[node.id]
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return float(node.value)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "FILL":
        value, fill = (_compute(a, values) for a in node.args)
        return fill if value is None else value
    if isinstance(node, ast.BinOp) and type(node.op) in _ARITHMETIC:
        left, right = _compute(node.left, values), _compute(node.right, values)
        return None if left is None or right is None else _ARITHMETIC[type(node.op)](left, right)
    raise ValueError(f"metric math this evaluator does not know: {ast.unparse(node)}")


def _fetch(metric: dict[str, Any], stat: str, period: int, now: float, periods: int) -> Series:
    end = int(now) // period * period
    start = end - period * periods
    answer = boto3.client("cloudwatch").get_metric_statistics(
        Namespace=metric["Namespace"],
        MetricName=metric["MetricName"],
        Dimensions=metric.get("Dimensions", []),
        StartTime=datetime.fromtimestamp(start, UTC),
        EndTime=datetime.fromtimestamp(end, UTC),
        Period=period,
        Statistics=[stat],
    )
    by_start = {
        int(point["Timestamp"].timestamp()) // period * period: float(point[stat])
        for point in answer["Datapoints"]
    }
    return [by_start.get(start + i * period) for i in range(periods)]


def _resolve(value: Any, stack: Stack, parameters: dict[str, str]) -> Any:
    """``Ref`` to a parameter or a resource, and a queue's ``QueueName``, as CloudFormation
    resolved them."""
    if isinstance(value, dict):
        if set(value) == {"Ref"}:
            name = value["Ref"]
            if name in stack.physical_ids:
                return stack.physical_ids[name]
            return parameters.get(name, stack.template["Parameters"][name].get("Default"))
        if set(value) == {"Fn::GetAtt"}:
            logical_id, attribute = value["Fn::GetAtt"]
            if attribute != "QueueName":
                raise ValueError(f"an attribute this evaluator does not know: {attribute}")
            return stack.physical_ids[logical_id].rsplit("/", 1)[-1]  # the id is its URL
        return {k: _resolve(v, stack, parameters) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, stack, parameters) for v in value]
    return value
