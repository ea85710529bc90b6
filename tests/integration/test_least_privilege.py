"""Each function's role holds exactly the DynamoDB access its code uses: no more, no less.

What the code uses is measured, not listed: every method of every store Protocol
(:mod:`rollout_monitor.ports`) is run against the table built from ``template.yaml`` in moto,
and a botocore hook turns each call into the IAM actions, resource and partition-key prefix
it needs. Which Protocols a function holds is read from the annotations of what its wiring
(:mod:`rollout_monitor.wiring`) builds. Both are compared with the role in the translated
template.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol, get_args, get_type_hints

import boto3
import pytest

from rollout_monitor import ports, wiring
from rollout_monitor.records import (
    DeploymentRecord,
    HistoryEntry,
    LastOutcome,
    Reachability,
    RequestClaim,
    RequestContent,
    SyncOutcome,
    VersionWait,
)
from rollout_monitor.store import Tables
from rollout_monitor.store.alert_claims import DynamoAlertClaims
from rollout_monitor_local.stack import DEFAULT_TEMPLATE, Stack, load_sam_template, translate
from tests.integration.iam import (
    TABLE,
    Access,
    Call,
    Recorder,
    access,
    differences,
    duplicates,
    granted,
    iam_calls,
    resource_name,
    statements,
)

WIRING: dict[str, Callable[[], object]] = {  # each function's handler builds its service here
    "DeployFunction": wiring.deploy_service,
    "PollerFunction": wiring.poller_container,
    "AlertFunction": wiring.alert_service,
}
NOT_THE_TABLE = {  # Protocols of ports.py that no table adapter implements
    ports.Publisher,
    ports.Channel,
    ports.EndpointLister,
    ports.DeployApi,
    ports.StatusReader,
    ports.VersionApi,
    ports.SyncReader,
    ports.PollTrigger,
}


# -- what each store Protocol method calls ---------------------------------------------------

NOW = 1_000_000.0
RECORD = DeploymentRecord(
    deployment_id="d-1",
    endpoint_id="e-1",
    org_name="o",
    model_arch_id="a",
    version_id=1,
    model="orgs/o/models/a/versions/1",
    request_id="r-0",
    submitted_at=NOW,
    status="not_started",
    last_progress_at=NOW,
)
MOVED = RECORD.model_copy(update={"status": "in_progress", "sequence": 1})
ENTRY = HistoryEntry.of(MOVED, previous_status="not_started", observed_at=NOW)
DONE = RECORD.model_copy(update={"deployment_id": "d-2", "status": "done", "terminal_at": NOW})
OUTCOME = LastOutcome(outcome="failed", deployment_id="d-1", observed_at=NOW)
CONTENT = RequestContent(endpoint_id="e-1", model=RECORD.model)
WAIT = VersionWait(
    request_id="r-3",
    release=False,
    endpoint_id="e-1",
    model=RECORD.model,
    started_at=NOW,
    wait_until=NOW + 60,
    observed_at=NOW,
)
ENDED = WAIT.model_copy(update={"outcome": SyncOutcome.READY, "sequence": 1})


@dataclasses.dataclass
class Scene:
    """The adapters over the template's table; setting a scene up is not recorded."""

    tables: Tables

    def claim(self, request_id: str = "r-2") -> RequestClaim:
        return self.tables.requests.claim(request_id, CONTENT, NOW, 60)[1]


Exercise = Callable[[Callable[..., Any], Scene], object]
# One entry per adapter method, reaching each branch that makes a different call.
EXERCISES: dict[str, Exercise] = {
    "deployments.get": lambda call, _: call("d-1"),
    "deployments.history": lambda call, _: call("d-1"),
    "deployments.in_flight": lambda call, _: (call(None), call(0)),
    "deployments.save_observation": lambda call, _: (
        call(RECORD, MOVED, None),
        call(RECORD, MOVED, ENTRY),
    ),
    "deployments.save_observations": lambda call, _: call([(RECORD, MOVED, ENTRY)]),
    "deployments.take_outbox": lambda call, _: call(RECORD, NOW, 60),
    "deployments.clear_outbox": lambda call, _: (call(RECORD), call(DONE)),
    "deployments.clear_outboxes": lambda call, _: call([RECORD, DONE]),
    "deployments.release_outbox": lambda call, _: call(RECORD),
    "deployments.record_submission": lambda call, _: (call(RECORD, NOW), call(DONE, NOW)),
    "deployments.record_discovery": lambda call, _: (call(MOVED, NOW), call(MOVED, NOW)),
    "requests.claim": lambda call, _: (
        call("r-1", CONTENT, NOW, 60),
        call("r-1", CONTENT, NOW, 60),
    ),
    "requests.get": lambda call, _: call("r-1"),
    "requests.mark_sent": lambda call, s: call(s.claim(), NOW, ["d-0"]),
    "requests.mark_upload_sent": lambda call, s: call(s.claim(), NOW, ["v-0"]),
    "requests.unmark_upload_sent": lambda call, s: call(s.claim()),
    "requests.resume": lambda call, s: call(s.claim(), NOW, 60),
    "requests.interrupt": lambda call, _: call("r-1", NOW),
    "requests.finish_rejected": lambda call, s: call(s.claim(), "{}", NOW),
    "requests.take_outbox": lambda call, s: call(s.claim(), NOW, 60),
    "requests.clear_outbox": lambda call, s: call(s.claim()),
    "requests.release_outbox": lambda call, s: call(s.claim()),
    "endpoints.claim": lambda call, _: (
        call("e-1", "r-1", NOW, force=False, stale_after=60),
        call("e-1", "r-2", NOW, force=False, stale_after=60),
        call("e-1", "r-2", NOW, force=True, stale_after=60),
    ),
    "endpoints.release": lambda call, _: call("e-1", "r-1"),
    "endpoints.free": lambda call, _: call("e-1", "d-1"),
    "endpoints.hold_external": lambda call, _: (call("e-9", "d-9", NOW), call("e-9", "d-8", NOW)),
    "endpoints.last_outcome": lambda call, _: call("e-1"),
    "endpoints.set_last_outcome": lambda call, _: call("e-1", OUTCOME),
    "alert_claims.claim": lambda call, _: (call("c-1", NOW, 60), call("c-1", NOW, 60)),
    "alert_claims.sent": lambda call, _: call("c-1", "m-1"),
    "alert_claims.release": lambda call, _: call("c-1"),
    "poll_slots.claim": lambda call, _: (call(0, 1), call(0, 1)),
    "reachability.get": lambda call, _: call(),
    "reachability.save": lambda call, _: call(Reachability(), Reachability(revision=1)),
    "reachability.take_outbox": lambda call, _: call(Reachability(), NOW, 60),
    "reachability.clear_outbox": lambda call, _: call(Reachability()),
    "waits.start": lambda call, s: call(s.claim("r-3"), WAIT),
    "waits.get": lambda call, _: call("r-3"),
    "waits.waiting": lambda call, _: call(),
    "waits.save": lambda call, _: call(WAIT, ENDED),
    "waits.take_outbox": lambda call, _: call(WAIT, NOW, 60),
    "waits.clear_outbox": lambda call, _: (call(WAIT), call(ENDED)),
    "waits.release_outbox": lambda call, _: call(WAIT),
}


def store_protocols() -> list[type]:
    """Every Protocol of ports.py that is not known to be something other than the table."""
    return [
        p
        for p in vars(ports).values()
        if isinstance(p, type) and Protocol in p.__bases__ and p not in NOT_THE_TABLE
    ]


def methods(protocol: type) -> list[str]:
    return sorted(
        name
        for cls in protocol.__mro__
        if cls.__module__ == ports.__name__
        for name, member in vars(cls).items()
        if callable(member) and not name.startswith("_")
    )


def adapter_of(protocol: type) -> str | None:
    """The field of Tables whose adapter has each of the Protocol's methods, same parameters."""
    found = [
        field
        for field, adapter in get_type_hints(Tables).items()
        if all(
            hasattr(adapter, m)
            and inspect.signature(getattr(adapter, m)).parameters.keys()
            == inspect.signature(getattr(protocol, m)).parameters.keys()
            for m in methods(protocol)
        )
    ]
    return found[0] if len(found) == 1 else None


def unexercised(protocols: Iterable[type], exercises: dict[str, Exercise]) -> list[str]:
    problems = []
    for protocol in protocols:
        adapter = adapter_of(protocol)
        if adapter is None:
            problems.append(f"{protocol.__name__}: no one adapter of Tables implements it")
            continue
        problems += [
            f"{protocol.__name__}.{m}: no exercise {adapter}.{m}"
            for m in methods(protocol)
            if f"{adapter}.{m}" not in exercises
        ]
    return problems


def exercise_all(stack: Stack) -> dict[str, set[Call]]:
    """Each adapter method's calls, run against the template's table in moto."""
    client = boto3.client("dynamodb")
    recorder = Recorder(client)
    scene = Scene(Tables.over(client, stack.outputs["TableName"], 86400, shards=2))
    used = {}
    for name, exercise in EXERCISES.items():
        adapter, method = name.split(".")
        recorder.calls = set()
        exercise(recorder.armed_call(getattr(getattr(scene.tables, adapter), method)), scene)
        used[name] = recorder.calls
    return used


# -- which Protocols each function holds -----------------------------------------------------


def _types(hint: Any) -> Iterator[type]:
    if isinstance(hint, type):
        yield hint
    for argument in get_args(hint):
        yield from _types(argument)


def built_by(entry: Callable[[], object]) -> set[type]:
    """What a function's wiring builds: the service it returns, the services that one holds,
    and what its properties and methods return (the poller's container builds its services
    per call)."""
    service = next(_types(get_type_hints(entry)["return"]))
    built = {service} | {
        t
        for hint in get_type_hints(service).values()
        for t in _types(hint)
        if dataclasses.is_dataclass(t)
    }
    for member in vars(service).values():
        # a method, a property's getter, a cached_property's function
        function = getattr(member, "fget", None) or getattr(member, "func", None) or member
        if inspect.isfunction(function):
            type_params = {t.__name__: t for t in getattr(function, "__type_params__", ())}
            built.update(_types(get_type_hints(function, localns=type_params).get("return")))
    return built


def held_protocols(function: str) -> set[type]:
    return {
        hint
        for service in built_by(WIRING[function])
        for annotation in get_type_hints(service).values()
        for hint in _types(annotation)
        if Protocol in hint.__bases__
    }


def needed(function: str, used: dict[str, set[Call]]) -> dict[str, Access]:
    """Every call of every method of each store Protocol the function holds."""
    held = held_protocols(function) - NOT_THE_TABLE
    assert held <= set(store_protocols()), f"{function} holds Protocols not in ports.py: {held}"
    calls = {
        call
        for protocol in held
        for method in methods(protocol)
        for call in used[f"{adapter_of(protocol)}.{method}"]
    }
    return access((c.resource, {c.action}, None if c.prefix is None else {c.prefix}) for c in calls)


# -- the tests -------------------------------------------------------------------------------


def test_every_method_of_every_store_protocol_is_exercised() -> None:
    assert store_protocols(), "ports.py has no store Protocol?"
    assert unexercised(store_protocols(), EXERCISES) == []
    assert set(EXERCISES) <= {f"{adapter_of(p)}.{m}" for p in store_protocols() for m in methods(p)}


def test_a_store_protocol_method_without_an_exercise_is_reported() -> None:
    fewer = {k: v for k, v in EXERCISES.items() if k != "deployments.history"}
    assert unexercised([ports.DeploymentLookup], fewer) == [
        "DeploymentLookup.history: no exercise deployments.history"
    ]


def test_each_role_holds_exactly_the_dynamodb_access_its_function_uses(stack: Stack) -> None:
    assert set(stack.functions) == set(WIRING)
    used = exercise_all(stack)
    resources = stack.template["Resources"]
    for function in WIRING:  # the managed policies SAM attaches hold no table access
        managed = resources[f"{function}Role"]["Properties"].get("ManagedPolicyArns", [])
        assert "DynamoDB" not in str(managed), function
    problems = [
        problem
        for function in WIRING
        for problem in differences(
            function, needed(function, used), granted(resources[f"{function}Role"])
        )
    ]
    assert problems == []


def test_a_call_no_role_grants_is_reported(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    """Had the alert claims started reading the in-flight index, AlertFunction would lack it."""
    sent = DynamoAlertClaims.sent

    def sent_and_query(self: DynamoAlertClaims, cause: str, message_id: str) -> None:
        sent(self, cause, message_id)
        self._table.client.query(
            TableName=self._table.name,
            IndexName="InFlight",
            KeyConditionExpression="in_flight = :shard",
            ExpressionAttributeValues={":shard": {"S": "ACTIVE#0"}},
        )

    monkeypatch.setattr(DynamoAlertClaims, "sent", sent_and_query)
    role = stack.template["Resources"]["AlertFunctionRole"]
    assert differences(
        "AlertFunction", needed("AlertFunction", exercise_all(stack)), granted(role)
    ) == ["AlertFunction lacks dynamodb:Query on DeploymentsTable/index/InFlight, called"]


def test_no_role_holds_a_permission_twice(stack: Stack) -> None:
    resources = stack.template["Resources"]
    roles = {k: v for k, v in resources.items() if v["Type"] == "AWS::IAM::Role"}
    assert {f"{f}Role" for f in WIRING} <= set(roles)
    assert {name: duplicates(role) for name, role in roles.items() if duplicates(role)} == {}


def _table_statement(role: dict[str, Any]) -> dict[str, Any]:
    (statement,) = [s for s in statements(role) if resource_name(s["Resource"]) == TABLE]
    return statement


MUTATIONS: dict[str, tuple[Callable[[dict[str, Any]], object], str]] = {
    "an action never called": (
        lambda role: _table_statement(role)["Action"].append("dynamodb:Scan"),
        "AlertFunction holds dynamodb:Scan on DeploymentsTable, never called",
    ),
    "an action called, missing": (
        lambda role: _table_statement(role)["Action"].remove("dynamodb:GetItem"),
        "AlertFunction lacks dynamodb:GetItem on DeploymentsTable, called",
    ),
    "any key": (
        lambda role: _table_statement(role).pop("Condition"),
        "AlertFunction reaches any key on DeploymentsTable",
    ),
    "a duplicate statement": (
        lambda role: role["Properties"]["Policies"].append(
            {"PolicyName": "Again", "PolicyDocument": {"Statement": [_table_statement(role)]}}
        ),
        "dynamodb:GetItem and dynamodb:GetItem on DeploymentsTable",
    ),
}


@pytest.mark.parametrize("mutation", MUTATIONS)
def test_a_role_that_drifts_from_its_function_is_reported(aws: None, mutation: str) -> None:
    """The comparison itself: the alert role as translated against a changed copy of it."""
    role = translate(load_sam_template(DEFAULT_TEMPLATE))["Resources"]["AlertFunctionRole"]
    drifted = copy.deepcopy(role)
    change, expected = MUTATIONS[mutation]
    change(drifted)
    reported = differences("AlertFunction", granted(role), granted(drifted)) + duplicates(drifted)
    assert any(problem.startswith(expected) for problem in reported), reported


def test_a_transaction_needs_each_items_own_action() -> None:
    key = {"pk": {"S": "DEPLOYMENT#d-1"}, "sk": {"S": "META"}}
    items = [{kind: {"TableName": "t", "Key": key}} for kind in ("Update", "ConditionCheck")]
    assert iam_calls("TransactWriteItems", {"TransactItems": items}) == [
        Call("dynamodb:UpdateItem", TABLE, "DEPLOYMENT#"),
        Call("dynamodb:ConditionCheckItem", TABLE, "DEPLOYMENT#"),
    ]
