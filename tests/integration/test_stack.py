"""The moto stack is created from template.yaml itself."""

from __future__ import annotations

import boto3

from rollout_monitor_local.stack import Stack


def test_table_comes_from_the_template(stack: Stack) -> None:
    table = boto3.client("dynamodb").describe_table(TableName=stack.outputs["TableName"])["Table"]
    assert [k["AttributeName"] for k in table["KeySchema"]] == ["pk", "sk"]
    (index,) = table["GlobalSecondaryIndexes"]
    assert index["IndexName"] == "InFlight"
    assert [k["AttributeName"] for k in index["KeySchema"]] == ["in_flight", "submitted_at"]
    # moto does not apply these two from CloudFormation; the template must still ask for them.
    properties = stack.template["Resources"]["DeploymentsTable"]["Properties"]
    assert properties["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert properties["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True


def test_bus_comes_from_the_template(stack: Stack) -> None:
    bus = boto3.client("events").describe_event_bus(Name=stack.outputs["EventBusName"])
    assert bus["Arn"] == stack.outputs["EventBusArn"]
    assert stack.outputs["EventBusName"] == "rollout-monitor-rollouts"
