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
from rich.text import Text

from rollout_monitor.cerebras.names import ModelVersionName
from rollout_monitor.events import DeployRequested, DetailType, ReleaseRequested
from rollout_monitor.records import DeploymentRecord, RequestClaim, RequestContent, RequestState
from rollout_monitor.rejections import conflict
from rollout_monitor_local.control import render
from rollout_monitor_local.control.monitor import (
    EXIT_DONE,
    EXIT_FAILED,
    EXIT_REJECTED,
    EXIT_TIMEOUT,
    Monitor,
    MonitorError,
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
    team: str | None = None
    labels: dict[str, str] = field(default_factory=dict)

    def detail(self) -> dict[str, object]:
        return _detail(self, {"endpoint_id": self.endpoint_id, "model": self.model})


def _detail(request: Request | Release, own: dict[str, object]) -> dict[str, object]:
    """A request's own fields, then what every request says: its id (a new one if none), who
    asks, ``force``, and the reason, team and labels when given."""
    detail = own | {
        "request_id": request.request_id or f"cli-{uuid.uuid4().hex[:16]}",
        "requested_by": _who(),
        "force": request.force,
    }
    optional = {"reason": request.reason, "team": request.team, "labels": request.labels}
    return detail | {name: value for name, value in optional.items() if value}


def _who() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # a container's uid with no passwd entry and no $USER
        return None


def deploy(session: Session, request: Request, *, wait: bool, timeout: float) -> int:
    """Put ``Deploy Requested``; report what became of it; with ``wait``, follow the rollout."""
    detail = request.detail()
    try:
        asked = DeployRequested.model_validate(detail)  # what the deploy function would refuse
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        session.say(f"Deployment Rejected (invalid_request), not sent: {problems}")
        return EXIT_REJECTED
    content = RequestContent(endpoint_id=asked.endpoint_id, model=asked.model, force=asked.force)
    deadline = session.now() + timeout
    request_id = str(detail["request_id"])
    _put(session, detail, DetailType.DEPLOY_REQUESTED)
    session.say(f"Deploy Requested: {request.model} to {request.endpoint_id} ({request_id})")
    claim = _outcome(session, request_id, content, deadline, wait=wait)
    if claim is None:
        return EXIT_TIMEOUT
    if _other(claim, content):
        rejected = conflict(asked, request_id, claim, content, session.now())
        session.say(f"Deployment Rejected ({rejected.reason}): {rejected.message}")
        return EXIT_REJECTED
    return _submitted(session, claim, wait=wait, deadline=deadline)


@dataclass(frozen=True)
class Release:
    org_name: str
    model_arch_id: str
    weight_uri: str
    endpoint_id: str
    version_aliases: tuple[str, ...] = ()
    request_id: str | None = None
    reason: str | None = None
    force: bool = False
    team: str | None = None
    labels: dict[str, str] = field(default_factory=dict)

    def detail(self) -> dict[str, object]:
        own: dict[str, object] = {
            "org_name": self.org_name,
            "model_arch_id": self.model_arch_id,
            "weight_uri": self.weight_uri,
            "version_aliases": list(self.version_aliases),
            "endpoint_id": self.endpoint_id,
        }
        return _detail(self, own)


def release(session: Session, request: Release, *, wait: bool, timeout: float) -> int:
    """Put ``Release Requested``; report the upload's sync and what became of the deploy;
    with ``wait``, follow the rollout. Exit codes as :func:`deploy`'s."""
    detail = request.detail()
    try:
        asked = ReleaseRequested.model_validate(detail)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        session.say(f"Deployment Rejected (invalid_request), not sent: {problems}")
        return EXIT_REJECTED
    content = RequestContent(
        endpoint_id=asked.endpoint_id, model=asked.content_key(), force=asked.force
    )
    deadline = session.now() + timeout
    request_id = str(detail["request_id"])
    _put(session, detail, DetailType.RELEASE_REQUESTED)
    session.say(
        f"Release Requested: {asked.weight_uri} ({asked.model_arch_id}) to {asked.endpoint_id} "
        f"({request_id})"
    )
    claim = _outcome(session, request_id, content, deadline, wait=wait)
    if claim is None:
        return EXIT_TIMEOUT
    if _other(claim, content):
        session.say(
            f"Deployment Rejected (request_id_conflict): request_id {request_id} was first "
            "used for another request"
        )
        return EXIT_REJECTED
    return _submitted(session, claim, wait=wait, deadline=deadline)


def _put(session: Session, detail: dict[str, object], detail_type: DetailType) -> None:
    try:
        session.monitor.request_deploy(detail, detail_type)
    except MonitorError as exc:  # a timeout may hide a put that went through
        request_id = detail["request_id"]
        raise MonitorError(f"{exc} (to retry, reuse --request-id {request_id})") from exc


def _outcome(
    session: Session, request_id: str, content: RequestContent, deadline: float, *, wait: bool
) -> RequestClaim | None:
    """The request once decided (None: timed out, said why). A wait for the version's sync
    is shown once, and waited through with ``wait``; without, it is the answer."""
    said_waiting = False

    def decided() -> RequestClaim | None:
        nonlocal said_waiting
        claim = session.monitor.request(request_id)
        if claim is not None and claim.state == RequestState.WAITING:
            if not said_waiting:
                session.say("waiting for the model version's sync")
                said_waiting = True
            if not wait:
                return claim
        return _decided(claim, content)

    claim = _until(session, deadline, decided)
    if claim is None:
        last = session.monitor.request(request_id)
        session.say(f"timed out: {_undecided(request_id, last)}")
    return claim


def _submitted(session: Session, claim: RequestClaim, *, wait: bool, deadline: float) -> int:
    if claim.state == RequestState.REJECTED:
        session.say(
            f"Deployment Rejected ({claim.rejection_reason or 'unknown'}): "
            f"{render.plain(claim.rejection_message, 'see the Deployment Rejected event')}"
        )
        return EXIT_REJECTED
    if claim.state == RequestState.WAITING:
        session.say("the deploy follows once it is synced (rollout-monitor status)")
        return EXIT_DONE
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
                    spinner.update(Text(f"{line}  {render.span(rollout.elapsed_seconds)}"))
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
    error = f": {render.plain(record.error_message)}" if record.error_message else ""
    session.say(f"rollout {outcome} after {took}{error}")
    return EXIT_DONE if outcome == "done" else EXIT_FAILED


def _decided(claim: RequestClaim | None, content: RequestContent) -> RequestClaim | None:
    return claim if claim is not None and (claim.finished or _other(claim, content)) else None


def _other(claim: RequestClaim, content: RequestContent) -> bool:
    """The request id was first used for other content: the deploy function refuses this one
    (``request_id_conflict``) and records nothing, so the claim read is the first request's."""
    return claim.fingerprint not in (None, content.fingerprint)


def _undecided(request_id: str, claim: RequestClaim | None) -> str:
    if claim is None:
        return (
            f"request {request_id} never reached the deploy function (is the stack's "
            "Deploy Requested rule enabled?)"
        )
    return (
        f"request {request_id} is still {claim.state.value}: the deploy function failed on it "
        "and Lambda retries it (then keeps it in the stack's failed-invocations queue)"
        if claim.state == RequestState.INTERRUPTED
        else f"request {request_id} is still {claim.state.value}: not decided yet"
    )


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
    else:
        for line in render.history_lines(report.deployments):
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
    good = next((r for r in records if r.status == "done" and _pinned(r) != _pinned(latest)), None)
    if good is None:
        session.say(f"nothing to undo: no earlier rollout of {endpoint_id} ended done")
        return EXIT_REJECTED
    reason = (
        f"undo: back to {_pinned(good)}, the last rollout of {endpoint_id} that ended done "
        f"({good.deployment_id}), from {_pinned(latest)} ({latest.status})"
    )
    request = Request(endpoint_id, _pinned(good), reason=reason, force=force)
    return deploy(session, request, wait=wait, timeout=timeout)


def _pinned(record: DeploymentRecord) -> str:
    """The version a rollout deployed, by number when known: an alias may name another now."""
    if not isinstance(record.version_id, int):
        return record.model
    version = str(record.version_id)
    return str(ModelVersionName(record.org_name, record.model_arch_id, version))
