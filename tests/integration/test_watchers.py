"""The monitor watches itself: alarms that reach someone, logs that expire, a dashboard, an
archive (issue 14), asserted on the template as CloudFormation receives it."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3

from rollout_monitor_local.alarms import alarm_state
from rollout_monitor_local.stack import Stack

FUNCTIONS = ("DeployFunction", "PollerFunction", "AlertFunction")
ROOT = Path(__file__).resolve().parents[2]
NOW = 1_800_000_000.0


def _of_type(stack: Stack, kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in stack.template["Resources"].items() if v["Type"] == kind}


def test_every_alarm_tells_the_operations_topic_of_alarm_and_ok(stack: Stack) -> None:
    alarms = _of_type(stack, "AWS::CloudWatch::Alarm")
    assert len(alarms) >= 11
    for name, alarm in alarms.items():
        properties = alarm["Properties"]
        assert properties["AlarmActions"] == [{"Ref": "OpsTopic"}], name
        assert properties["OKActions"] == [{"Ref": "OpsTopic"}], name
        assert len(properties["AlarmDescription"]) > 80, f"{name}: say what to do"
    alarmed = {
        (a["Properties"].get("MetricName"), str(a["Properties"].get("Dimensions")))
        for a in alarms.values()
    }
    for function in FUNCTIONS:
        for metric in ("Errors", "Throttles"):
            dimensions = str([{"Name": "FunctionName", "Value": {"Ref": function}}])
            assert (metric, dimensions) in alarmed, (function, metric)


def test_the_operations_topic_uses_a_key_cloudwatch_may_use(stack: Stack) -> None:
    resources = stack.template["Resources"]
    topic = resources["OpsTopic"]["Properties"]
    assert topic["KmsMasterKeyId"] == {
        "Fn::If": ["CreateOpsKey", {"Ref": "OpsKey"}, {"Ref": "OpsKmsKeyArn"}]
    }
    key = resources["OpsKey"]["Properties"]
    assert key["EnableKeyRotation"] is True
    grants = {
        s["Principal"]["Service"]: s
        for s in key["KeyPolicy"]["Statement"]
        if "Service" in s.get("Principal", {})
    }
    assert set(grants) == {"cloudwatch.amazonaws.com", "events.amazonaws.com"}
    for grant in grants.values():
        assert grant["Effect"] == "Allow"
        assert set(grant["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey*"}
    # the alert topic keeps the AWS-managed key: rollouts' alerts and the monitor's alarms part
    assert resources["AlertTopic"]["Properties"]["KmsMasterKeyId"] == "alias/aws/sns"
    assert stack.outputs["OpsTopicArn"].startswith("arn:aws:sns:")
    assert "OpsEmailSubscription" not in stack.physical_ids  # no OpsEmail given: none


def test_the_dead_man_alarm_breaches_on_missing_data(stack: Stack) -> None:
    alarm = stack.template["Resources"]["PollerDeadManAlarm"]["Properties"]
    assert alarm["TreatMissingData"] == "breaching"
    assert alarm["ComparisonOperator"] == "LessThanThreshold"
    assert alarm["Threshold"] == 1
    assert alarm["EvaluationPeriods"] == {"Ref": "DeadManMinutes"}
    (returned,) = [m for m in alarm["Metrics"] if m["ReturnData"]]
    assert returned["Expression"] == "FILL(invocations, 0) - FILL(errors, 0)"


def test_each_function_logs_to_its_own_group_with_retention(stack: Stack) -> None:
    resources = stack.template["Resources"]
    groups = _of_type(stack, "AWS::Logs::LogGroup")
    assert len(groups) == len(FUNCTIONS)
    for group in groups.values():
        assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    assert stack.template["Parameters"]["LogRetentionDays"]["Default"] == 30
    for function in FUNCTIONS:
        config = resources[function]["Properties"]["LoggingConfig"]
        assert config["LogGroup"]["Ref"] in groups, function
        assert config["LogFormat"] == "JSON"


def test_the_dashboard_shows_what_an_operator_asks_first(stack: Stack) -> None:
    dashboard = stack.template["Resources"]["Dashboard"]
    assert dashboard["Condition"] == "HasDashboard"
    body = json.loads(dashboard["Properties"]["DashboardBody"]["Fn::Sub"])
    titles = [w["properties"]["title"] for w in body["widgets"]]
    text = json.dumps(body)
    for wanted in ("in flight", "by status", "by severity", "errors by kind", "p95", "Dead-letter"):
        assert any(wanted in t for t in titles), wanted
    for metric in ("DeploymentsInFlight", "Transitions", "AlertsSent", "PollErrors"):
        assert metric in text
    for queue in (
        "StatusAlertsDLQ",
        "StallAlertsDLQ",
        "RejectionAlertsDLQ",
        "FailedInvocationsQueue",
    ):
        assert f"${{{queue}.QueueName}}" in text
    for function in FUNCTIONS:
        assert f"${{{function}}}" in text


def test_the_bus_is_archived_for_replay(stack: Stack) -> None:
    archive = stack.template["Resources"]["EventArchive"]["Properties"]
    assert archive["SourceArn"] == {"Fn::GetAtt": ["EventBus", "Arn"]}
    assert archive["RetentionDays"] == {"Ref": "EventArchiveDays"}


def test_the_deploy_function_has_reserved_concurrency(stack: Stack) -> None:
    deploy = stack.template["Resources"]["DeployFunction"]["Properties"]
    assert deploy["ReservedConcurrentExecutions"] == {"Ref": "DeployConcurrency"}


def test_cerebras_episodes_reach_the_alert_function(stack: Stack) -> None:
    (rule,) = [r for r in stack.rules.values() if "Cerebras Unreachable" in str(r.pattern)]
    assert rule.function_logical_id == "AlertFunction"
    assert "Cerebras Reachable" in rule.pattern["detail-type"]  # type: ignore[index]
    poller = stack.functions["PollerFunction"].environment
    assert poller["UNREACHABLE_AFTER_SECONDS"] == "600"


def test_every_checkov_skip_says_why() -> None:
    lines = (ROOT / ".checkov.yaml").read_text().splitlines()
    start = lines.index("skip-check:")
    skips = [i for i in range(start + 1, len(lines)) if lines[i].startswith("  - CKV")]
    assert skips, "no skipped check listed"
    for i in skips:
        assert lines[i - 1].startswith("  #"), f"{lines[i].strip()} has no reason above it"


def test_every_alarm_of_the_template_can_be_evaluated_locally(stack: Stack) -> None:
    for name in _of_type(stack, "AWS::CloudWatch::Alarm"):
        assert alarm_state(stack, name, NOW, {}) in {"OK", "ALARM"}, name


def test_one_alert_dead_letter_queue_alone_raises_their_alarm(stack: Stack) -> None:
    """SQS stops publishing the metrics of a queue idle for six hours: when one dead-letter
    queue wakes with a message, the other two still have no data."""
    queue = stack.physical_ids["StallAlertsDLQ"].rsplit("/", 1)[-1]
    boto3.client("cloudwatch").put_metric_data(
        Namespace="AWS/SQS",
        MetricData=[
            {
                "MetricName": "ApproximateNumberOfMessagesVisible",
                "Dimensions": [{"Name": "QueueName", "Value": queue}],
                "Timestamp": datetime.fromtimestamp(NOW - 30, UTC),
                "Value": 1.0,
            }
        ],
    )
    assert alarm_state(stack, "AlertDLQsAlarm", NOW, {}) == "ALARM"
