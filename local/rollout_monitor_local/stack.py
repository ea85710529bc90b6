"""Create the stack from ``template.yaml`` itself, in moto: the tests' and the local stack's AWS.

The SAM template is translated by aws-sam-translator, exactly as CloudFormation's transform
would, and created through moto's CloudFormation. Table, bus, rules, queues and topic therefore
come from the one template AWS deploys, and cannot drift from it. Local ``CodeUri`` and
``ContentUri`` paths are zipped to a moto bucket first, as ``sam package`` would upload them.
"""

from __future__ import annotations

import copy
import io
import json
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from samtranslator.translator.managed_policy_translator import ManagedPolicyLoader
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

ARTIFACT_BUCKET = "rollout-monitor-local-artifacts"
DEFAULT_TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"
LOCAL_SECRET_ARN = (
    "arn:aws:secretsmanager:us-east-1:123456789012:secret:rollout-monitor/cerebras-key-AbCdEf"
)


@dataclass(frozen=True)
class FunctionSpec:
    """A function of the template, as Lambda would load it."""

    logical_id: str
    name: str
    code_dir: Path
    handler: str
    environment: dict[str, str]


@dataclass(frozen=True)
class RuleSpec:
    """An EventBridge rule of the template and the function it targets."""

    logical_id: str
    name: str
    pattern: dict[str, Any] | None
    schedule: str | None
    function_logical_id: str | None


@dataclass
class Stack:
    name: str
    template_dir: Path
    template: dict[str, Any]  # the translated CloudFormation
    outputs: dict[str, str]
    physical_ids: dict[str, str]
    functions: dict[str, FunctionSpec] = field(default_factory=dict)
    rules: dict[str, RuleSpec] = field(default_factory=dict)


def load_sam_template(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = yaml_parse(path.read_text())
    return document


def translate(sam_template: dict[str, Any]) -> dict[str, Any]:
    """SAM to CloudFormation, with local code paths pointed at the artifact bucket."""
    document = copy.deepcopy(sam_template)
    for logical_id, resource in document.get("Resources", {}).items():
        properties = resource.get("Properties", {})
        for key in ("CodeUri", "ContentUri"):
            if isinstance(properties.get(key), str):
                properties[key] = {"Bucket": ARTIFACT_BUCKET, "Key": f"{logical_id}.zip"}
    iam = boto3.client("iam", region_name="us-east-1")
    cloudformation: dict[str, Any] = transform(document, {}, ManagedPolicyLoader(iam))
    return cloudformation


def create_stack(
    template_path: Path = DEFAULT_TEMPLATE,
    *,
    stack_name: str = "rollout-monitor",
    parameters: dict[str, str] | None = None,
) -> Stack:
    """Create the template's stack in whatever AWS boto3 points at (moto, here)."""
    sam_template = load_sam_template(template_path)
    _upload_code(sam_template, template_path.parent)
    cloudformation = translate(sam_template)
    values = {"CerebrasApiKeySecretArn": LOCAL_SECRET_ARN} | (parameters or {})
    cfn = boto3.client("cloudformation")
    with warnings.catch_warnings():  # "not supported by moto's CloudFormation": alarms, etc.
        warnings.simplefilter("ignore", UserWarning)
        _create(cfn, stack_name, cloudformation, values)
    description = cfn.describe_stacks(StackName=stack_name)["Stacks"][0]
    if description["StackStatus"] != "CREATE_COMPLETE":
        raise RuntimeError(f"stack {stack_name} ended {description['StackStatus']}")
    physical = {  # moto lists the resource types it cannot create without ids: skip them
        r["LogicalResourceId"]: r.get("PhysicalResourceId", "")
        for r in cfn.describe_stack_resources(StackName=stack_name)["StackResources"]
        if "LogicalResourceId" in r
    }
    stack = Stack(
        name=stack_name,
        template_dir=template_path.parent,
        template=cloudformation,
        outputs={o["OutputKey"]: o["OutputValue"] for o in description.get("Outputs", [])},
        physical_ids=physical,
    )
    _read_functions(stack, sam_template)
    _read_rules(stack)
    return stack


def _create(
    cfn: Any, stack_name: str, cloudformation: dict[str, Any], values: dict[str, str]
) -> None:
    cfn.create_stack(
        StackName=stack_name,
        TemplateBody=json.dumps(cloudformation),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in values.items()],
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"],
    )


def _upload_code(sam_template: dict[str, Any], root: Path) -> None:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=ARTIFACT_BUCKET)
    for logical_id, resource in sam_template.get("Resources", {}).items():
        properties = resource.get("Properties", {})
        for key in ("CodeUri", "ContentUri"):
            if isinstance(properties.get(key), str):
                body = _zip_dir(root / properties[key])
                s3.put_object(Bucket=ARTIFACT_BUCKET, Key=f"{logical_id}.zip", Body=body)


def _zip_dir(directory: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(directory.rglob("*.py")):
            archive.write(path, path.relative_to(directory).as_posix())
    return buffer.getvalue()


def _read_functions(stack: Stack, sam_template: dict[str, Any]) -> None:
    lambda_client = boto3.client("lambda")
    for logical_id, resource in sam_template.get("Resources", {}).items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        name = stack.physical_ids[logical_id]
        configuration = lambda_client.get_function_configuration(FunctionName=name)
        stack.functions[logical_id] = FunctionSpec(
            logical_id=logical_id,
            name=name,
            code_dir=stack.template_dir / resource["Properties"]["CodeUri"],
            handler=configuration["Handler"],
            environment={
                k: str(v)
                for k, v in configuration.get("Environment", {}).get("Variables", {}).items()
            },
        )


def _read_rules(stack: Stack) -> None:
    events = boto3.client("events")
    function_by_arn = {
        boto3.client("lambda").get_function(FunctionName=f.name)["Configuration"][
            "FunctionArn"
        ]: f.logical_id
        for f in stack.functions.values()
    }
    for logical_id, resource in stack.template["Resources"].items():
        if resource["Type"] != "AWS::Events::Rule":
            continue
        properties = resource["Properties"]
        bus = (
            stack.outputs.get("EventBusName", "default")
            if "EventBusName" in properties
            else "default"
        )
        name = stack.physical_ids[logical_id].split("|")[-1]
        rule = events.describe_rule(Name=name, EventBusName=bus)
        targets = events.list_targets_by_rule(Rule=name, EventBusName=bus)["Targets"]
        function = next(
            (function_by_arn.get(t["Arn"]) for t in targets if t["Arn"] in function_by_arn), None
        )
        stack.rules[logical_id] = RuleSpec(
            logical_id=logical_id,
            name=name,
            pattern=json.loads(rule["EventPattern"]) if rule.get("EventPattern") else None,
            schedule=rule.get("ScheduleExpression"),
            function_logical_id=function,
        )
