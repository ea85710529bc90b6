"""`rollout-monitor`'s commands over a fake monitor: what an operator or a CI job is told, and
the exit code, when the run does not go to plan (issue 15)."""

from __future__ import annotations

import getpass
import io
from dataclasses import dataclass, field
from typing import Any, cast

import pytest

from rollout_monitor.events import DetailType
from rollout_monitor.records import RequestClaim, RequestState
from rollout_monitor_local.cli import _parser
from rollout_monitor_local.control import cli, commands, render
from rollout_monitor_local.control.monitor import (
    EXIT_DONE,
    EXIT_REJECTED,
    EXIT_TIMEOUT,
    Monitor,
    MonitorError,
)
from rollout_monitor_local.control.shapes import DeploymentHistory, Rollout, Transition

ENDPOINT = "my-org-llama-3.3-70b"
MODEL = "orgs/my-org/models/llama-3.3-70b/versions/7"


@dataclass
class FakeMonitor:
    """The monitor's calls `deploy` makes: the request it was sent, the claim it reads back."""

    claim: RequestClaim | None = None
    interrupt: bool = False
    bus_error: str | None = None
    sent: list[dict[str, Any]] = field(default_factory=list)
    detail_types: list[DetailType] = field(default_factory=list)

    def request_deploy(
        self, detail: dict[str, Any], detail_type: DetailType = DetailType.DEPLOY_REQUESTED
    ) -> None:
        if self.bus_error is not None:
            raise MonitorError(self.bus_error)
        self.sent.append(detail)
        self.detail_types.append(detail_type)

    def request(self, request_id: str) -> RequestClaim | None:
        if self.interrupt:
            raise KeyboardInterrupt
        return self.claim


def _session(monitor: FakeMonitor) -> commands.Session:
    return commands.Session(cast(Monitor, monitor), out=io.StringIO(), sleep=lambda _: None)


def test_ctrl_c_while_waiting_exits_130_and_says_the_rollout_goes_on(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(Monitor, "connect", classmethod(lambda _, __: FakeMonitor(interrupt=True)))
    args = _parser().parse_args(["deploy", "--endpoint", ENDPOINT, "--model", MODEL, "--wait"])
    try:
        code = cli.run(args)
    except KeyboardInterrupt:
        pytest.fail("Ctrl-C escaped `rollout-monitor deploy --wait` as a traceback")
    assert code == 130
    assert "goes on" in capsys.readouterr().err


def test_a_deploy_from_a_uid_without_a_user_name_is_still_sent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_user() -> str:
        raise KeyError("getpwuid(): uid not found: 1001")  # a container's --user 1001

    monkeypatch.setattr(getpass, "getuser", no_user)
    monitor = FakeMonitor()
    code = commands.deploy(
        _session(monitor), commands.Request(ENDPOINT, MODEL), wait=False, timeout=0
    )
    assert code == 3
    (detail,) = monitor.sent
    assert detail["requested_by"] is None


@pytest.mark.parametrize(
    ("claim_state", "says"),
    [
        (None, "never reached the deploy function"),
        (RequestState.INTERRUPTED, "the deploy function failed on it"),
        (RequestState.IN_PROGRESS, "still in_progress"),
    ],
)
def test_a_timeout_before_the_decision_says_where_the_request_is_stuck(
    claim_state: RequestState | None, says: str
) -> None:
    claim = (
        None
        if claim_state is None
        else RequestClaim(request_id="r-1", state=claim_state, claimed_at=0, lease_until=0)
    )
    session = _session(FakeMonitor(claim=claim))
    request = commands.Request(ENDPOINT, MODEL, request_id="r-1")
    assert commands.deploy(session, request, wait=True, timeout=0) == 3
    assert says in cast(io.StringIO, session.out).getvalue()


@pytest.mark.parametrize("limit", ["0", "-3"])
def test_a_history_limit_below_one_is_a_usage_error(limit: str) -> None:
    with pytest.raises(SystemExit):
        _parser().parse_args(["history", "--endpoint", ENDPOINT, "--limit", limit])


def test_history_shows_no_control_characters_from_the_table() -> None:
    rollout = Rollout(
        deployment_id="d-1",
        endpoint_id=ENDPOINT,
        model=MODEL,
        version_id=7,
        status="error",
        updated_replicas=None,
        total_replicas=None,
        stalled=False,
        submitted_at=0.0,
        elapsed_seconds=1.0,
        ended_at=1.0,
        lost_reason=None,
        request_id="r-1",
        requested_by="ci\x1b]0;owned\x07",
        reason="promote 7\n  2026-11-27 00:00:00  #9  error -> done\x1b[2J",
    )
    transition = Transition(
        sequence=1,
        previous_status="in_progress",
        status="error",
        observed_at=1.0,
        updated_replicas=None,
        total_replicas=None,
        error_message="weights\r\nmissing\x1b[31m",
    )
    lines = render.history_lines([DeploymentHistory(rollout=rollout, transitions=[transition])])
    assert len("\n".join(lines).splitlines()) == 2
    assert all(ch.isprintable() for line in lines for ch in line), lines


def test_a_put_that_may_have_gone_through_names_the_request_id_to_retry_with() -> None:
    session = _session(FakeMonitor(bus_error="Read timeout on endpoint URL"))
    with pytest.raises(MonitorError, match="reuse --request-id cli-"):
        commands.deploy(session, commands.Request(ENDPOINT, MODEL), wait=True, timeout=60)


def test_a_deploy_s_team_and_labels_reach_the_request_and_pass_its_validation() -> None:
    from rollout_monitor.events import DeployRequested

    labels = ["--label", "env=prod", "--label", "tier=1"]
    args = _parser().parse_args(
        ["deploy", "--endpoint", ENDPOINT, "--model", MODEL, "--team", "search", *labels]
    )
    args.timeout = 0  # no decision is waited for: only the request matters here
    monitor = FakeMonitor()
    assert cli._dispatch(_session(monitor), args) == 3
    (detail,) = monitor.sent
    assert (detail["team"], detail["labels"]) == ("search", {"env": "prod", "tier": "1"})
    DeployRequested.model_validate(detail)  # what the deploy function will accept


def test_a_label_without_a_value_separator_is_a_usage_error() -> None:
    with pytest.raises(SystemExit):
        _parser().parse_args(["deploy", "--endpoint", ENDPOINT, "--model", MODEL, "--label", "env"])


RELEASE = commands.Release(
    "my-org", "llama-3.3-70b", "s3://weights-bucket/ft-1", "my-org-llama-3.3-70b", ("ft-one",)
)


def _waiting(request_id: str) -> RequestClaim:
    return RequestClaim(
        request_id=request_id,
        state=RequestState.WAITING,
        claimed_at=0,
        lease_until=0,
        endpoint_id=RELEASE.endpoint_id,
        model="release:my-org/llama-3.3-70b@s3://weights-bucket/ft-1#ft-one",
    )


def test_a_release_without_wait_reports_the_upload_and_exits_0() -> None:
    monitor = FakeMonitor()
    release = commands.Release(**{**RELEASE.__dict__, "request_id": "rel-1"})
    monitor.claim = _waiting("rel-1")
    session = _session(monitor)
    assert commands.release(session, release, wait=False, timeout=60) == EXIT_DONE
    assert monitor.detail_types == [DetailType.RELEASE_REQUESTED]
    assert monitor.sent[0]["weight_uri"] == "s3://weights-bucket/ft-1"
    out = session.out.getvalue()  # type: ignore[attr-defined]
    assert "waiting for the model version's sync" in out


def test_a_release_with_wait_waits_through_the_sync_then_times_out_if_it_never_ends() -> None:
    monitor = FakeMonitor(claim=_waiting("rel-2"))
    release = commands.Release(**{**RELEASE.__dict__, "request_id": "rel-2"})
    clock = iter(range(0, 1000, 10))
    session = commands.Session(
        cast(Monitor, monitor), out=io.StringIO(), sleep=lambda _: None, now=lambda: next(clock)
    )
    assert commands.release(session, release, wait=True, timeout=60) == EXIT_TIMEOUT
    out = session.out.getvalue()  # type: ignore[attr-defined]
    assert out.count("waiting for the model version's sync") == 1
    assert "still waiting" in out


def test_an_invalid_release_is_rejected_and_not_sent() -> None:
    monitor = FakeMonitor()
    release = commands.Release(**{**RELEASE.__dict__, "weight_uri": "http://nope"})
    assert commands.release(_session(monitor), release, wait=False, timeout=60) == EXIT_REJECTED
    assert monitor.sent == []
