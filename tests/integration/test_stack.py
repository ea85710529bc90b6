"""The moto stack is created from template.yaml itself."""

from __future__ import annotations

import boto3

from rollout_monitor_local.stack import Stack


def test_table_comes_from_the_template(stack: Stack) -> None:
    table = boto3.client("dynamodb").describe_table(TableName=stack.outputs["TableName"])["Table"]
    assert [k["AttributeName"] for k in table["KeySchema"]] == ["pk", "sk"]
    indexes = {i["IndexName"]: i for i in table["GlobalSecondaryIndexes"]}
    assert set(indexes) == {"InFlight", "ByEndpoint"}
    keys = {name: [k["AttributeName"] for k in i["KeySchema"]] for name, i in indexes.items()}
    assert keys == {
        "InFlight": ["in_flight", "submitted_at"],
        "ByEndpoint": ["endpoint_key", "endpoint_at"],
    }
    assert indexes["ByEndpoint"]["Projection"]["ProjectionType"] == "INCLUDE"
    # moto does not apply these two from CloudFormation; the template must still ask for them.
    properties = stack.template["Resources"]["DeploymentsTable"]["Properties"]
    assert properties["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert properties["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True


def test_bus_comes_from_the_template(stack: Stack) -> None:
    bus = boto3.client("events").describe_event_bus(Name=stack.outputs["EventBusName"])
    assert bus["Arn"] == stack.outputs["EventBusArn"]
    assert stack.outputs["EventBusName"] == "rollout-monitor-rollouts"


def test_nothing_is_dropped_every_function_and_rule_has_an_encrypted_dlq(stack: Stack) -> None:
    resources = stack.template["Resources"]
    queues = {k for k, v in resources.items() if v["Type"] == "AWS::SQS::Queue"}
    for queue in queues:
        assert resources[queue]["Properties"]["SqsManagedSseEnabled"] is True, queue
    for logical_id in ("DeployFunction", "PollerFunction", "AlertFunction"):
        config = resources[f"{logical_id}EventInvokeConfig"]["Properties"]
        target = config["DestinationConfig"]["OnFailure"]["Destination"]
        assert target == {"Fn::GetAtt": ["FailedInvocationsQueue", "Arn"]}, logical_id
    rules = {k: v for k, v in resources.items() if v["Type"] == "AWS::Events::Rule"}
    assert len(rules) == 7  # deploy, release and wait ends; the alert function's four
    for name, rule in rules.items():
        (target,) = rule["Properties"]["Targets"]
        assert "RetryPolicy" in target, name
        dlq = target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0]
        assert dlq in queues, name
    alarmed = {
        metric["MetricStat"]["Metric"]["Dimensions"][0]["Value"]["Fn::GetAtt"][0]
        for alarm in resources.values()
        if alarm["Type"] == "AWS::CloudWatch::Alarm"
        for metric in alarm["Properties"].get("Metrics", [])
        if "Fn::GetAtt" in str(metric.get("MetricStat"))
    } | {
        alarm["Properties"]["Dimensions"][0]["Value"]["Fn::GetAtt"][0]
        for alarm in resources.values()
        if alarm["Type"] == "AWS::CloudWatch::Alarm"
        and "Fn::GetAtt" in str(alarm["Properties"].get("Dimensions"))
    }
    # Every dead-letter queue is alarmed; the poll queue is the poller's chain, not one.
    assert alarmed == queues - {"PollQueue"}


def test_functions_reach_only_this_stacks_resources(stack: Stack) -> None:
    resources = stack.template["Resources"]
    text = str({k: v for k, v in resources.items() if v["Type"] == "AWS::IAM::Role"})
    assert "'Resource': '*'" not in text
    alert_role = str(resources["AlertFunctionRole"])
    assert "secretsmanager" not in alert_role  # only the functions that call Cerebras read the key
    assert "sns:Publish" in alert_role
    assert "sns:Publish" not in str(resources["PollerFunctionRole"])


def test_secrets_never_reach_a_functions_environment(stack: Stack) -> None:
    for function in stack.functions.values():
        assert "CEREBRAS_API_KEY" not in function.environment
        arn = function.environment["CEREBRAS_API_KEY_SECRET_ARN"]
        assert arn.startswith("arn:aws:secretsmanager:")


def test_only_the_monitors_functions_may_put_events_with_its_source(stack: Stack) -> None:
    resources = stack.template["Resources"]
    (policy,) = [v for v in resources.values() if v["Type"] == "AWS::Events::EventBusPolicy"]
    statement = policy["Properties"]["Statement"]
    assert (statement["Effect"], statement["Principal"], statement["Action"]) == (
        "Deny",
        "*",
        "events:PutEvents",
    )
    assert statement["Condition"]["StringEquals"] == {"events:source": "cerebras.rollout-monitor"}
    allowed = statement["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]
    assert allowed == [
        {"Fn::GetAtt": ["DeployFunctionRole", "Arn"]},
        {"Fn::GetAtt": ["PollerFunctionRole", "Arn"]},
    ]
    assert "AlertFunctionRole" not in str(statement)  # the alert function never speaks
