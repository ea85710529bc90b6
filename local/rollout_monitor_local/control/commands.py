"""What each ``rollout-monitor`` subcommand does against a :class:`~.monitor.Monitor`.

Exit codes (``docs/cli.md``): 0 done, 1 error/rolled_back/cancelled/lost, 2 rejected (or
nothing to undo), 3 timeout, 4 the monitor unreachable or misconfigured.
"""

from __future__ import annotations

import getpass
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO

from pydantic import ValidationError
from rich.console import Console
from rich.live import Live
from rich.status import Status
from rich.table import Table

from rollout_monitor.events import DeployRequested
from rollout_monitor.records import DeploymentRecord, RequestClaim, RequestState
from rollout_monitor_local.control import render
from rollout_monitor_local.control.monitor import (
    EXIT_DONE,
    EXIT_FAILED,
    EXIT_REJECTED,
    EXIT_TIMEOUT,
    Monitor,
)
from rollout_monitor_local.control.shapes import (
    DeploymentHistory,
    HistoryReport,
    Outcome,
    Rollout,
    StatusReport,
    Transition,
)

UNDO_LOOKBACK = 50  # an endpoint's deployments searched for the last good one


@dataclass
class Session:
    """What every subcommand shares: the monitor, where to write, how time passes."""

    monitor: Monitor
    out: TextIO = field(default_factory=lambda: sys.stdout)
    now: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
    poll_seconds: float = 2.0

    def say(self, line: str) -> None:
        print(line, file=self.out, flush=True)


@dataclass(frozen=True)
class Request:
    endpoint_id: str
    model: str
    request_id: str | None = None
    reason: str | None = None
    force: bool = False

    def detail(self) -> dict[str, object]:
        detail: dict[str, object] = {
            "endpoint_id": self.endpoint_id,
            "model": self.model,
            "request_id": self.request_id or f"cli-{uuid.uuid4().hex[:16]}",
            "requested_by": getpass.getuser(),
            "force": self.force,
        }
        return detail | ({"reason": self.reason} if self.reason else {})


def deploy(session: Session, request: Request, *, wait: bool, timeout: float) -> int:
    """Put ``Deploy Requested``; report what became of it; with ``wait``, follow the rollout."""
    detail = request.detail()
    try:
        DeployRequested.model_validate(detail)  # what the deploy function would refuse
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        session.say(f"Deployment Rejected (invalid_request), not sent: {problems}")
        return EXIT_REJECTED
    deadline = session.now() + timeout
    session.monitor.request_deploy(detail)
    request_id = str(detail["request_id"])
    session.say(f"Deploy Requested: {request.model} to {request.endpoint_id} ({request_id})")
    claim = _until(session, deadline, lambda: _decided(session.monitor.request(request_id)))
    if claim is None:
        session.say(f"timed out after {timeout:.0f} s: request {request_id} not decided yet")
        return EXIT_TIMEOUT
    if claim.state == RequestState.REJECTED:
        session.say(
            f"Deployment Rejected ({claim.rejection_reason or 'unknown'}): "
            f"{claim.rejection_message or 'see the Deployment Rejected event'}"
        )
        return EXIT_REJECTED
    session.say(f"Deployment Submitted: {claim.deployment_id}")
    if not wait or claim.deployment_id is None:
        return EXIT_DONE
    return follow(session, claim.deployment_id, deadline)


def follow(session: Session, deployment_id: str, deadline: float) -> int:
    """Print each change of the rollout until it ends (or ``deadline``)."""
    shown = ""
    console = Console(file=session.out)
    # On a terminal a spinner shows the elapsed time between changes; off one, only lines.
    spinner = Status("following the rollout", console=console) if console.is_terminal else None
    if spinner is not None:
        spinner.start()
    try:
        while True:
            record = session.monitor.deployment(deployment_id)
            if record is not None:
                rollout = Rollout.of(record, session.now())
                line = f"{rollout.status}  {render.replicas(rollout)} replicas"
                line += "  STALLED" if rollout.stalled else ""
                if line != shown:
                    session.say(f"{render.clock(session.now())}  {line}")
                    shown = line
                if spinner is not None:
                    spinner.update(f"{line}  {render.span(rollout.elapsed_seconds)}")
                if record.terminal:
                    return _ended(session, record)
            if session.now() >= deadline:
                session.say("timed out: the rollout is still in flight (it goes on)")
                return EXIT_TIMEOUT
            session.sleep(session.poll_seconds)
    finally:
        if spinner is not None:
            spinner.stop()


def _ended(session: Session, record: DeploymentRecord) -> int:
    outcome = "lost" if record.lost_reason else record.status
    took = render.span((record.terminal_at or session.now()) - record.submitted_at)
    error = f": {record.error_message}" if record.error_message else ""
    session.say(f"rollout {outcome} after {took}{error}")
    return EXIT_DONE if outcome == "done" else EXIT_FAILED


def _decided(claim: RequestClaim | None) -> RequestClaim | None:
    return claim if claim is not None and claim.finished else None


def _until[T](session: Session, deadline: float, probe: Callable[[], T | None]) -> T | None:
    while True:
        if (found := probe()) is not None:
            return found
        if session.now() >= deadline:
            return None
        session.sleep(session.poll_seconds)


def status(session: Session, endpoint_id: str | None, *, as_json: bool) -> int:
    """Rollouts in flight and each endpoint's last outcome."""
    now = session.now()
    in_flight = [
        Rollout.of(r, now)
        for r in session.monitor.in_flight()
        if endpoint_id is None or r.endpoint_id == endpoint_id
    ]
    outcomes = [
        Outcome.of(e, o)
        for e, o in sorted(session.monitor.last_outcomes().items())
        if endpoint_id is None or e == endpoint_id
    ]
    report = StatusReport(generated_at=now, in_flight=in_flight, last_outcomes=outcomes)
    if as_json:
        session.say(report.model_dump_json(indent=2))
        return EXIT_DONE
    session.say(f"in flight: {len(in_flight)}")
    for line in render.columns(render.ROLLOUT_COLUMNS, render.rollout_rows(in_flight)):
        session.say(line)
    session.say("")
    for line in render.columns(render.OUTCOME_COLUMNS, render.outcome_rows(outcomes)):
        session.say(line)
    return EXIT_DONE


def watch(session: Session, *, live: bool) -> int:
    """A board of every rollout in flight, redrawn until Ctrl-C."""
    console = Console(file=session.out)

    def frame() -> Table:
        now = session.now()
        rollouts = sorted(
            (Rollout.of(r, now) for r in session.monitor.in_flight()),
            key=lambda r: (r.endpoint_id, r.submitted_at),
        )
        title = f"rollouts in flight: {len(rollouts)}   {render.clock(now)} UTC   Ctrl-C ends"
        return render.board(rollouts, title, console.width)

    try:
        if live:
            with Live(frame(), console=console, auto_refresh=False, screen=False) as board:
                while True:
                    session.sleep(session.poll_seconds)
                    board.update(frame(), refresh=True)
        while True:
            console.print(frame())
            session.sleep(session.poll_seconds)
    except KeyboardInterrupt:
        return EXIT_DONE


def history(
    session: Session,
    *,
    deployment_id: str | None,
    endpoint_id: str | None,
    limit: int,
    as_json: bool,
) -> int:
    """Transitions with times, who asked and why: one deployment, or an endpoint's latest."""
    if deployment_id is not None:
        record = session.monitor.deployment(deployment_id)
        records = [] if record is None else [record]
    else:
        assert endpoint_id is not None
        records = session.monitor.by_endpoint(endpoint_id, limit)
    now = session.now()
    report = HistoryReport(
        generated_at=now,
        deployments=[
            DeploymentHistory(
                rollout=Rollout.of(r, now),
                transitions=[Transition.of(h) for h in session.monitor.history(r.deployment_id)],
            )
            for r in records
        ],
    )
    if as_json:
        session.say(report.model_dump_json(indent=2))
    elif not records:
        session.say(f"no deployment {deployment_id or 'for ' + str(endpoint_id)} in the table")
    for line in [] if as_json else render.history_lines(report.deployments):
        session.say(line)
    return EXIT_DONE if records else EXIT_REJECTED


def undo(session: Session, endpoint_id: str, *, force: bool, wait: bool, timeout: float) -> int:
    """Redeploy the endpoint's last model whose rollout ended ``done`` (another model than its
    latest deployment's), through ``Deploy Requested``."""
    records = session.monitor.by_endpoint(endpoint_id, UNDO_LOOKBACK)
    if not records:
        session.say(f"nothing to undo: no deployment of {endpoint_id} in the table")
        return EXIT_REJECTED
    latest = records[0]
    good = next((r for r in records if r.status == "done" and r.model != latest.model), None)
    if good is None:
        session.say(f"nothing to undo: no earlier rollout of {endpoint_id} ended done")
        return EXIT_REJECTED
    reason = (
        f"undo: back to {good.model}, the last rollout of {endpoint_id} that ended done "
        f"({good.deployment_id}), from {latest.model} ({latest.status})"
    )
    request = Request(endpoint_id, good.model, reason=reason, force=force)
    return deploy(session, request, wait=wait, timeout=timeout)
