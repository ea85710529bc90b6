"""The whole monitor on the local stack: moto in server mode, the simulator, the template."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import boto3
import pytest

from rollout_monitor_local.clock import ManualClock
from rollout_monitor_local.devstack import DevStack, play
from rollout_monitor_local.server import serve
from rollout_monitor_local.simulator import DEFAULT_KEY, Simulator
from rollout_monitor_local.stack import DEFAULT_TEMPLATE
from rollout_monitor_local.story import DEFAULT_STORY, STORIES, Observed, judge

pytestmark = pytest.mark.e2e
ROOT = DEFAULT_TEMPLATE.parent


def test_the_story_gives_exactly_the_expected_events_records_and_alerts(tmp_path: Path) -> None:
    with DevStack(log_file=tmp_path / "functions.log") as stack:
        verdict = play(stack, DEFAULT_STORY, timeout=900)
        assert verdict.ok, verdict.problems
        kinds = Counter(e["detail-type"] for e in stack.seen.events)
        assert kinds == {
            "Deployment Submitted": 5,  # the release's too
            "Deployment Discovered": 1,  # the rollout started from the console
            "Deployment Rejected": 1,
            "Model Version Sync Changed": 3,  # uploaded (queued), in_progress, done
            "Rollout Status Changed": 12,
            "Rollout Stalled": 1,
        }
        assert len({e["detail"]["event_id"] for e in stack.seen.events}) == 23
        alerts = Counter((a["kind"], a["severity"]) for a in stack.seen.alerts)
        assert alerts == {
            ("rollout_failed", "critical"): 3,
            ("rollout_stalled", "warning"): 1,
            ("deploy_rejected", "warning"): 1,
        }
        store = stack.poller.store.deployments
        finals = {}
        for row in stack.seen.rows.values():
            if row.deployment_id:
                record = store.get(row.deployment_id)
                finals[row.label] = (record.status, len(store.history(row.deployment_id)))
        assert finals == {
            "succeeds": ("done", 3),
            "errors": ("error", 3),
            "rolls-back": ("rolled_back", 4),
            "stalls": ("in_progress", 2),
            "release": ("done", 3),
            "external": ("error", 3),  # adopted not_started: its first entry
        }
        assert stack.simulator is not None
        assert stack.simulator.count("POST", "models:upload") == 1
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
        verdict = play(stack, DEFAULT_STORY[:1], timeout=300)
        assert verdict.ok, verdict.problems
        items = boto3.client("dynamodb").scan(TableName="renamed-by-the-test")["Items"]
        assert any(i["sk"]["S"] == "META" for i in items)


class PollerKilled(BaseException):
    """The poller's process dies here (the invocation fails; the next scheduled run goes on).
    Not an Exception: a dying process is not one record's failure the cycle could isolate."""


def crash_at(real: Any, call: int, *, after: bool) -> Any:
    """Wrap a step of the poller so that its ``call``-th use dies, before or after acting."""
    calls = 0

    def step(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        this = calls  # the steps may run on several threads at once
        if this == call and not after:
            raise PollerKilled(f"killed before step {call}")
        result = real(*args, **kwargs)
        if this == call and after:
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
        store = stack.poller.store.deployments
        monkeypatch.setattr(
            store, "save_observation", crash_at(store.save_observation, call, after=after)
        )
        verdict = play(stack, DEFAULT_STORY, timeout=900)
        assert len(stack.seen.poller_failures) == 1, where
        assert "PollerKilled" in stack.seen.poller_failures[0]
        assert verdict.ok, verdict.problems


def test_against_a_real_api_url_it_deploys_and_follows_one_rollout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from rollout_monitor_local.cli import main

    # Stands in for api.cerebras.ai, on loopback. Its rollout moves 20 s each time the endpoint
    # is read, so every poll sees the next state however fast or slow this machine is.
    simulator = Simulator(clock=ManualClock())
    monkeypatch.setenv("CEREBRAS_API_KEY", DEFAULT_KEY)
    with serve(_ticking(simulator, seconds=20)) as url:
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
                "120",
                "--log-file",
                str(tmp_path / "log"),
            ]
        )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "not_started -> in_progress" in out
    assert "in_progress -> done" in out
    assert "-> error" not in out
    assert simulator.count("POST", ":deployModel") == 1
    assert DEFAULT_KEY not in out


def _ticking(simulator: Simulator, *, seconds: float) -> Any:
    """The simulator's app, whose clock moves ``seconds`` after each endpoint status read."""
    clock = simulator.clock
    assert isinstance(clock, ManualClock)

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await simulator.app(scope, receive, send)
        path = scope.get("path", "")
        if scope["type"] == "http" and scope["method"] == "GET" and "/endpoints/" in path:
            clock.advance(seconds)

    return app


def test_the_plain_output_is_plain_lines(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from rollout_monitor_local.cli import main

    code = main(
        [
            "local",
            "--speed",
            "0",
            "--scenario",
            "errors",
            "--scenario",
            "invalid",
            "--log-file",
            str(tmp_path / "l"),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "[CRITICAL] error: my-org-qwen-3-32b version 2" in out
    assert "The story's 2 requests played as scripted" in out
    assert not set("┏━┃│") & set(out)
    assert all(
        line.startswith(("[", "Summary", "Took", "The story", "Function logs"))
        for line in out.splitlines()
    )


def test_requests_from_another_shell_reach_a_running_stack(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from rollout_monitor_local.cli import main

    with DevStack(log_file=None) as stack:
        code = main(
            [
                "deploy",
                "--aws-endpoint-url",
                stack.moto_url,
                "--endpoint",
                "my-org-llama-3.3-70b",
                "--model",
                "orgs/my-org/models/llama-3.3-70b/versions/errors",
                "--request-id",
                "from-another-shell",
                "--timeout",
                "0",  # the stack is not stepping yet: nothing decides it meanwhile
            ]
        )
        assert code == 3
        assert "Deploy Requested: " in capsys.readouterr().out
        lines: list[str] = []
        while stack.steps < 20 and "ALERT" not in " ".join(lines):
            lines += stack.step()
        row = stack.seen.rows["from-another-shell"]
        assert (row.status, row.endpoint_id, row.version) == (
            "error",
            "my-org-llama-3.3-70b",
            "errors",
        )
        assert any(line.startswith("ALERT CRITICAL: [CRITICAL] error:") for line in lines)


def test_scenario_names_are_the_simulators_aliases() -> None:
    from rollout_monitor_local.simulator import SCENARIOS

    not_a_scenario = {"invalid", "release", "external"}  # a request, a release, the console
    assert set(STORIES) - not_a_scenario == set(SCENARIOS)
    for name, item in STORIES.items():
        if name not in not_a_scenario:
            assert item.detail["model"].endswith(f"/versions/{name}")


def test_the_optional_scenarios_play_as_scripted() -> None:
    story = (STORIES["cancelled"], STORIES["invisible"])
    with DevStack(log_file=None) as stack:
        verdict = play(stack, story, timeout=900)
    assert verdict.ok, verdict.problems


def test_each_request_keeps_its_own_row_and_a_wrong_stack_is_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from rollout_monitor_local.cli import main

    with DevStack(log_file=None) as stack:
        url = ["--aws-endpoint-url", stack.moto_url, "--timeout", "0"]
        for request_id, arch in (("cli-1", "llama-3.3-70b"), ("cli-2", "qwen-3-32b")):
            model = f"orgs/my-org/models/{arch}/versions/succeeds"
            argv = ["deploy", *url, "--endpoint", f"my-org-{arch}", "--model", model]
            assert main([*argv, "--request-id", request_id]) == 3  # not decided yet
        stack.step()
        assert {k: r.status for k, r in stack.seen.rows.items()} == {
            "cli-1": "not_started",
            "cli-2": "not_started",
        }
        capsys.readouterr()
        code = main(["status", "--aws-endpoint-url", stack.moto_url, "--stack", "wrong-stack"])
    err = capsys.readouterr().err
    assert code == 4
    assert len(err.strip().splitlines()) == 1
    assert "wrong-stack" in err
    assert "Traceback" not in err


def test_the_same_story_gives_the_same_events_step_by_step() -> None:
    """The virtual clock: two runs of the story see the same transitions at the same steps."""
    runs = []
    for _ in range(2):
        with DevStack(log_file=None) as stack:
            timeline: list[tuple[int, str]] = []

            def record(
                lines: list[str], stack: DevStack = stack, timeline: list[Any] = timeline
            ) -> None:
                timeline.extend((stack.steps, line) for line in lines if "->" in line)

            assert play(stack, DEFAULT_STORY, timeout=900, on_step=record).ok
        runs.append(timeline)
    assert runs[0] == runs[1]
    assert len(runs[0]) == 15  # 12 transitions, 3 version syncs
