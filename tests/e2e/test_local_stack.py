"""The whole monitor on the local stack: moto in server mode, the simulator, the template."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

import boto3
import pytest

from rollout_monitor_local.clock import ScaledClock
from rollout_monitor_local.devstack import DEFAULT_STORY, DevStack, Observed, judge, play
from rollout_monitor_local.server import serve
from rollout_monitor_local.simulator import DEFAULT_KEY, Simulator
from rollout_monitor_local.stack import DEFAULT_TEMPLATE

pytestmark = pytest.mark.e2e
ROOT = DEFAULT_TEMPLATE.parent


def test_the_story_gives_exactly_the_expected_events_records_and_alerts(tmp_path: Path) -> None:
    with DevStack(log_file=tmp_path / "functions.log") as stack:
        verdict = play(stack, DEFAULT_STORY, timeout=60)
        assert verdict.ok, verdict.problems
        kinds = Counter(e["detail-type"] for e in stack.seen.events)
        assert kinds == {
            "Deployment Submitted": 4,
            "Deployment Rejected": 1,
            "Rollout Status Changed": 8,
            "Rollout Stalled": 1,
        }
        assert len({e["detail"]["event_id"] for e in stack.seen.events}) == 14
        alerts = Counter((a["kind"], a["severity"]) for a in stack.seen.alerts)
        assert alerts == {
            ("rollout_failed", "critical"): 2,
            ("rollout_stalled", "warning"): 1,
            ("deploy_rejected", "warning"): 1,
        }
        store = stack.poller.store
        finals = {}
        for row in stack.seen.rows.values():
            if row.deployment_id:
                record = store.get_deployment(row.deployment_id)
                finals[row.label] = (record.status, len(store.history(row.deployment_id)))
        assert finals == {
            "success": ("done", 3),
            "error": ("error", 3),
            "rollback": ("rolled_back", 4),
            "stall": ("in_progress", 2),
        }
        (still,) = store.in_flight()  # only the stalled one: it is never dropped
        assert still.status == "in_progress"
        assert still.stalled
        assert stack.seen.poller_failures == []
        assert stack.router.dead_letters == []
    assert "deployment submitted" in (tmp_path / "functions.log").read_text()


def test_a_missing_or_doubled_event_fails_the_run() -> None:
    seen = Observed()
    assert not judge(DEFAULT_STORY, seen).ok  # nothing happened: everything is missing
    event = {
        "detail-type": "Deployment Rejected",
        "detail": {"event_id": "x", "request_id": "demo-invalid"},
    }
    seen.events += [event, event]
    problems = judge(DEFAULT_STORY[-1:], seen).problems
    assert "event x announced 2 times" in problems


def _copy_with_renamed_table(tmp_path: Path, name: str) -> Path:
    for folder in ("functions", "layers", "events"):
        (tmp_path / folder).symlink_to(ROOT / folder)
    text = DEFAULT_TEMPLATE.read_text()
    marker = "  DeploymentsTable:\n    Type: AWS::DynamoDB::Table\n"
    assert marker in text
    renamed = text.replace(
        "      BillingMode: PAY_PER_REQUEST\n",
        f"      TableName: {name}\n      BillingMode: PAY_PER_REQUEST\n",
        1,
    )
    copy = tmp_path / "template.yaml"
    copy.write_text(renamed)
    return copy


def test_the_local_stack_follows_the_template(tmp_path: Path) -> None:
    template = _copy_with_renamed_table(tmp_path, "renamed-by-the-test")
    with DevStack(template=template, log_file=None) as stack:
        assert stack.stack.outputs["TableName"] == "renamed-by-the-test"
        assert stack.runtimes["DeployFunction"].environment["TABLE_NAME"] == "renamed-by-the-test"
        verdict = play(stack, DEFAULT_STORY[:1], timeout=30)
        assert verdict.ok, verdict.problems
        items = boto3.client("dynamodb").scan(TableName="renamed-by-the-test")["Items"]
        assert any(i["sk"]["S"] == "META" for i in items)


class PollerKilled(Exception):
    """The poller's process dies here (the invocation fails; the next scheduled run goes on)."""


def crash_at(real: Any, call: int, *, after: bool) -> Any:
    """Wrap a step of the poller so that its ``call``-th use dies, before or after acting."""
    calls = 0

    def step(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == call and not after:
            raise PollerKilled(f"killed before step {call}")
        result = real(*args, **kwargs)
        if calls == call and after:
            raise PollerKilled(f"killed after step {call}")
        return result

    return step


@pytest.mark.parametrize(
    ("where", "call", "after"),
    [
        ("before the 3rd transition is recorded", 3, False),
        ("after the 3rd transition is recorded, before PutEvents", 3, True),
        ("after the 1st, with three more records to write in that cycle", 1, True),
    ],
)
def test_killing_the_poller_mid_run_loses_and_doubles_nothing(
    where: str, call: int, after: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    with DevStack(log_file=None) as stack:
        store = stack.poller.store
        monkeypatch.setattr(
            store, "save_observation", crash_at(store.save_observation, call, after=after)
        )
        verdict = play(stack, DEFAULT_STORY, timeout=60)
        assert len(stack.seen.poller_failures) == 1, where
        assert "PollerKilled" in stack.seen.poller_failures[0]
        assert verdict.ok, verdict.problems


def test_against_a_real_api_url_it_deploys_and_follows_one_rollout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from rollout_monitor_local.cli import main

    simulator = Simulator(clock=ScaledClock(40))  # stands in for api.cerebras.ai, on loopback
    monkeypatch.setenv("CEREBRAS_API_KEY", DEFAULT_KEY)
    with serve(simulator.app) as url:
        code = main(
            [
                "local",
                "--plain",
                "--cerebras-url",
                url,
                "--endpoint",
                "my-org-llama-3.3-70b",
                "--model",
                "orgs/my-org/models/llama-3.3-70b/versions/succeeds",
                "--poll-interval",
                "1",
                "--timeout",
                "30",
                "--log-file",
                str(tmp_path / "log"),
            ]
        )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "in_progress -> done" in out
    assert "-> error" not in out
    assert simulator.count("POST", ":deployModel") == 1
    assert DEFAULT_KEY not in out


def test_the_plain_output_is_plain_lines(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from rollout_monitor_local.cli import main

    code = main(
        ["local", "--scenario", "error", "--scenario", "invalid", "--log-file", str(tmp_path / "l")]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "[CRITICAL] error: my-org-qwen-3-32b version 2" in out
    assert "The story played as scripted" in out
    assert not set("┏━┃│") & set(out)
    assert all(
        line.startswith(("[", "Summary", "The story", "Function logs")) for line in out.splitlines()
    )


def test_requests_from_another_shell_reach_a_running_stack(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from rollout_monitor_local.cli import main

    with DevStack(log_file=None) as stack:
        code = main(
            [
                "request",
                "--aws-endpoint-url",
                stack.moto_url,
                "--endpoint",
                "my-org-llama-3.3-70b",
                "--model",
                "orgs/my-org/models/llama-3.3-70b/versions/errors",
                "--request-id",
                "from-another-shell",
            ]
        )
        assert code == 0
        assert '"EventId"' in capsys.readouterr().out
        deadline = time.monotonic() + 30
        lines: list[str] = []
        while time.monotonic() < deadline and "ALERT" not in " ".join(lines):
            lines += stack.step()
            time.sleep(0.05)
        row = stack.seen.rows["from-another-shell"]
        assert (row.status, row.endpoint_id, row.version) == (
            "error",
            "my-org-llama-3.3-70b",
            "errors",
        )
        assert any(line.startswith("ALERT CRITICAL: [CRITICAL] error:") for line in lines)
