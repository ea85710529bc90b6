"""`rollout-monitor`'s reads (issue 15): none scans the table, every option says what it does,
and what `--json` prints is what docs/cli.md documents."""

from __future__ import annotations

import argparse
import io
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from botocore.client import BaseClient

from rollout_monitor_local.cli import _parser, main
from rollout_monitor_local.control import commands
from rollout_monitor_local.control.monitor import Monitor, Target
from rollout_monitor_local.control.shapes import HistoryReport, StatusReport
from tests.integration.conftest import World
from tests.integration.iam import Call, access, differences, granted, iam_calls

ROOT = Path(__file__).resolve().parents[2]
READS = {"DescribeStacks", "GetItem", "Query"}


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Every AWS operation any client makes, by name."""
    seen: Counter[str] = Counter()
    original = BaseClient._make_api_call

    def spy(self: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        seen[operation] += 1
        return original(self, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", spy)
    return seen


def test_no_subcommand_scans_the_table(
    world: World, calls: Counter[str], capsys: pytest.CaptureFixture[str]
) -> None:
    deployment_id = world.deploy("errors")
    calls.clear()
    assert _one_watch_frame() == 0
    assert "Query" in calls
    assert set(calls) <= READS, dict(calls)
    for _ in range(6):
        world.clock.advance(10)
        world.poll()
    endpoint = "my-org-llama-3.3-70b"
    runs = {
        "status": ["status", "--json"],
        "status endpoint": ["status", "--endpoint", endpoint],
        "history deployment": ["history", "--deployment", deployment_id, "--json"],
        "history endpoint": ["history", "--endpoint", endpoint],
        "undo": ["undo", "--endpoint", endpoint, "--timeout", "0"],  # nothing to undo: 2
        "deploy": ["deploy", "--endpoint", endpoint, "--model",
                   "orgs/my-org/models/llama-3.3-70b/versions/1", "--timeout", "0"],
    }  # fmt: skip
    for name, argv in runs.items():
        calls.clear()
        code = main(argv)
        assert code in {0, 2, 3}, (name, code, capsys.readouterr())
        assert calls, name
        assert "Scan" not in calls, name
        assert set(calls) <= READS | {"PutEvents"}, (name, dict(calls))
        assert ("PutEvents" in calls) == (name == "deploy"), name
    capsys.readouterr()
    assert main(["history", "--deployment", deployment_id, "--json"]) == 0
    report = HistoryReport.model_validate_json(capsys.readouterr().out)
    assert [t.status for t in report.deployments[0].transitions][-1] == "error"


@pytest.mark.parametrize(("name", "model"), [("status", StatusReport), ("history", HistoryReport)])
def test_the_documented_json_shape_is_the_models(name: str, model: type[Any]) -> None:
    doc = (ROOT / "docs" / "cli.md").read_text()
    start = doc.index(f"```json {name}-schema\n") + len(f"```json {name}-schema\n")
    documented = json.loads(doc[start : doc.index("```", start)])
    assert documented == model.model_json_schema(), f"docs/cli.md's {name} shape is stale"


def test_every_option_says_what_it_does() -> None:
    parser = _parser()
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    summaries = {a.dest: a.help for a in commands._choices_actions}
    for command in ("deploy", "status", "watch", "history", "undo"):
        assert summaries[command], command
        sub = commands.choices[command]
        for action in sub._actions:
            if not isinstance(action, argparse._HelpAction):
                assert action.help, f"{command} {action.option_strings} has no help"


def _one_watch_frame() -> int:
    """`watch` draws its board, then Ctrl-C (the first wait raises it)."""
    monitor = Monitor.connect(Target(stack="rollout-monitor"))

    def interrupt(_: float) -> None:
        raise KeyboardInterrupt

    session = commands.Session(monitor, out=io.StringIO(), sleep=interrupt)
    code = commands.watch(session, live=False)
    assert "rollouts in flight: 1" in session.out.getvalue()  # type: ignore[attr-defined]
    return code


def test_the_operator_policy_grants_exactly_the_table_access_the_commands_use(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """As each function's role (test_least_privilege.py): measured, not listed."""
    request_id = "ci-measured"
    deployment_id = world.deploy("errors", request_id=request_id)
    used: set[Call] = set()
    original = BaseClient._make_api_call

    def record(self: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        if self.meta.service_model.service_name == "dynamodb":
            used.update(iam_calls(operation, params))
        return original(self, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", record)
    endpoint = "my-org-llama-3.3-70b"
    model = "orgs/my-org/models/llama-3.3-70b/versions/errors"
    for argv in (
        ["status", "--json"],
        ["history", "--deployment", deployment_id],
        ["history", "--endpoint", endpoint],
        ["undo", "--endpoint", endpoint, "--timeout", "0"],
        ["deploy", "--endpoint", endpoint, "--model", model, "--request-id", request_id,
         "--wait", "--timeout", "0"],
    ):  # fmt: skip
        main(argv)
    assert _one_watch_frame() == 0
    capsys.readouterr()
    need = access((c.resource, {c.action}, None if c.prefix is None else {c.prefix}) for c in used)
    policy = world.stack.template["Resources"]["OperatorPolicy"]["Properties"]
    have = granted({"Properties": {"Policies": [policy]}})
    problems = differences("OperatorPolicy", need, have)
    assert problems == [], "\n".join(problems)
