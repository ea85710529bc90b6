"""What a DynamoDB request needs from IAM, and what a role of the translated template grants.

Resources are named by logical id (``DeploymentsTable``, ``DeploymentsTable/index/InFlight``),
however the template spells their ARN, so that two spellings of one grant compare equal.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import json
import re
from collections.abc import Callable, Iterable
from itertools import combinations
from typing import Any

TABLE = "DeploymentsTable"
# Inside a transaction each item needs its own action: there is no TransactWriteItems action.
IN_A_TRANSACTION = {
    "Put": "dynamodb:PutItem",
    "Update": "dynamodb:UpdateItem",
    "Delete": "dynamodb:DeleteItem",
    "ConditionCheck": "dynamodb:ConditionCheckItem",
    "Get": "dynamodb:GetItem",
}
ONE_ITEM = {"GetItem", "PutItem", "UpdateItem", "DeleteItem"}


@dataclasses.dataclass(frozen=True)
class Call:
    """What one DynamoDB request needs from IAM: an action, on the table or an index, for a
    partition key whose prefix is ``prefix`` (None on an index: no LeadingKeys there)."""

    action: str
    resource: str
    prefix: str | None


@dataclasses.dataclass(frozen=True)
class Access:
    """Actions on one resource, and the key prefixes they reach (None: any key)."""

    actions: frozenset[str]
    prefixes: frozenset[str] | None


def iam_calls(operation: str, params: dict[str, Any]) -> list[Call]:
    """The IAM actions one DynamoDB request is authorised by."""
    if operation in {"TransactWriteItems", "TransactGetItems"}:
        return [
            _item_call(IN_A_TRANSACTION[kind], request)
            for entry in params["TransactItems"]
            for kind, request in entry.items()
        ]
    if operation == "Query" and "IndexName" in params:
        return [Call("dynamodb:Query", f"{TABLE}/index/{params['IndexName']}", None)]
    if operation == "Query":
        placeholder = re.search(r"\bpk = (:\w+)", params["KeyConditionExpression"])
        assert placeholder, f"no partition key in {params['KeyConditionExpression']}"
        pk = params["ExpressionAttributeValues"][placeholder.group(1)]["S"]
        return [Call("dynamodb:Query", TABLE, _prefix(pk))]
    if operation in ONE_ITEM:
        return [_item_call(f"dynamodb:{operation}", params)]
    raise AssertionError(f"DynamoDB {operation} has no IAM mapping here yet: add one")


def _item_call(action: str, request: dict[str, Any]) -> Call:
    key = request.get("Key") or request["Item"]
    return Call(action, TABLE, _prefix(key["pk"]["S"]))


def _prefix(pk: str) -> str:
    kind, separator, _ = pk.partition("#")
    assert separator, f"partition key {pk!r} has no KIND# prefix"
    return f"{kind}#"


class Recorder:
    """The IAM calls a DynamoDB client makes while armed."""

    def __init__(self, client: Any) -> None:
        self.armed = False
        self.calls: set[Call] = set()
        client.meta.events.register("provide-client-params.dynamodb", self._record)

    def _record(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        if self.armed:
            self.calls.update(iam_calls(model.name, params))

    def armed_call(self, method: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            self.armed = True
            try:
                return method(*args, **kwargs)
            finally:
                self.armed = False

        return call


# -- what a role grants ----------------------------------------------------------------------


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def resource_name(resource: Any) -> str:
    """A resource by its logical id, whichever way the template spells its ARN."""
    match resource:
        case {"Fn::GetAtt": [logical_id, "Arn"]}:
            return str(logical_id)
        case {"Fn::Sub": str(text)}:
            return re.sub(r"^.*?\$\{(\w+)\.Arn\}", r"\1", text)
        case {"Fn::Sub": [str(text), dict(variables)]}:
            for name, value in variables.items():
                (reference,) = value.values()
                logical_id = reference if isinstance(reference, str) else reference[0]
                text = re.sub(rf"^.*?\$\{{{name}\}}", logical_id, text)
            return text
    return json.dumps(resource, sort_keys=True)


def statements(role: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        s for p in role["Properties"].get("Policies", []) for s in p["PolicyDocument"]["Statement"]
    ]


def leading_keys(statement: dict[str, Any]) -> set[str] | None:
    """The key prefixes a statement is limited to (None: any key)."""
    if "Condition" not in statement:
        return None
    patterns = statement["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]
    assert statement["Condition"] == {
        "ForAllValues:StringLike": {"dynamodb:LeadingKeys": patterns}
    }, statement
    assert all(p.endswith("#*") and p.count("*") == 1 for p in patterns), patterns
    return {p.removesuffix("*") for p in patterns}


def granted(role: dict[str, Any]) -> dict[str, Access]:
    """The DynamoDB access a role's inline statements allow, per resource."""
    grants = []
    for statement in statements(role):
        actions = {a for a in _listed(statement.get("Action", [])) if a.startswith("dynamodb:")}
        if statement["Effect"] == "Allow" and actions:
            keys = leading_keys(statement)
            grants += [(resource_name(r), actions, keys) for r in _listed(statement["Resource"])]
    return access(grants)


def access(grants: Iterable[tuple[str, set[str], set[str] | None]]) -> dict[str, Access]:
    """Grants merged per resource: one that names no key prefix reaches any key."""
    actions: dict[str, set[str]] = {}
    prefixes: dict[str, set[str] | None] = {}
    for resource, granted_actions, keys in grants:
        actions.setdefault(resource, set()).update(granted_actions)
        before = prefixes.get(resource, set())
        prefixes[resource] = None if before is None or keys is None else before | keys
    return {
        r: Access(frozenset(a), None if (keys := prefixes[r]) is None else frozenset(keys))
        for r, a in actions.items()
    }


def differences(function: str, need: dict[str, Access], have: dict[str, Access]) -> list[str]:
    """Each action or key prefix a function's role holds and it never uses, or lacks."""
    nothing = Access(frozenset(), frozenset())
    problems = []
    for resource in sorted(need.keys() | have.keys()):
        n, h = need.get(resource, nothing), have.get(resource, nothing)
        problems += [
            f"{function} holds {a} on {resource}, never called"
            for a in sorted(h.actions - n.actions)
        ]
        problems += [
            f"{function} lacks {a} on {resource}, called" for a in sorted(n.actions - h.actions)
        ]
        if h.actions and n.prefixes != h.prefixes:
            problems.append(
                f"{function} reaches {_keys(h.prefixes)} on {resource}, uses {_keys(n.prefixes)}"
            )
    return problems


def _keys(prefixes: frozenset[str] | None) -> str:
    return "any key" if prefixes is None else ", ".join(sorted(prefixes)) or "none"


def duplicates(role: dict[str, Any]) -> list[str]:
    """Pairs of statements granting an action (wildcards included) on one resource twice."""
    grants = [
        (resource_name(r), a, json.dumps(s.get("Condition"), sort_keys=True))
        for s in statements(role)
        if s["Effect"] == "Allow"
        for a in _listed(s.get("Action", []))
        for r in _listed(s.get("Resource", []))
    ]
    return [
        f"{a} and {b} on {resource}"
        for (resource, a, condition), (other, b, other_condition) in combinations(grants, 2)
        if (resource, condition) == (other, other_condition)
        and (fnmatch.fnmatchcase(a, b) or fnmatch.fnmatchcase(b, a))
    ]
