"""Every sample in events/ through the handler it is for, as `sam local invoke -e` would feed it.

`sam-scheduled-event.json` is SAM CLI's own sample for an EventBridge trigger
(`sam local generate-event cloudwatch scheduled-event`, unmodified; `make template-check` keeps
it current). Every function takes it: the poller polls, the deploy function rejects it as an
invalid request, the alert function skips it. The alert function alerts only on what the
table bears out: the status and stall samples name a deployment a fresh stack does not hold,
so they are answered as unverified (nothing sent), as a forged event would be.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

import pytest
from moto.events.models import EventPattern

from rollout_monitor_local.stack import Stack
from tests.integration.conftest import EVENTS, World, sample_event

SAM_SAMPLE = "sam-scheduled-event.json"
DEPLOYMENT = "550e8400-e29b-41d4-a716-446655440000"
IDLE_POLL = {
    "cycles": 1,
    "in_flight": 0,
    "transitions": 0,
    "stalls": 0,
    "announced": 0,
    "discovered": 0,  # the schedule runs discovery too: off without DiscoveryOrgs
    "versions_changed": 0,  # and follows the version waits: none
}


@dataclass(frozen=True)
class Sample:
    file: str
    function: str
    returns: dict[str, Any]
    alerts: int = 0  # sent to the topic
    varying: tuple[str, ...] = field(default=())  # returned keys whose value is not fixed

    def __str__(self) -> str:
        return f"{self.file}->{self.function}"


def submitted(request_id: str) -> dict[str, Any]:
    return {"request_id": request_id, "outcome": "submitted", "reason": None, "duplicate": False}


def rejected(request_id: str) -> dict[str, Any]:
    return {
        "request_id": request_id,
        "outcome": "rejected",
        "deployment_id": None,
        "reason": "invalid_request",
        "duplicate": False,
    }


SAMPLES = [
    Sample(
        "deploy-requested.json",
        "DeployFunction",
        submitted("release-2026-11-26-1"),
        varying=("deployment_id",),
    ),
    Sample(
        "deploy-requested-forced.json",
        "DeployFunction",
        submitted("hotfix-2026-11-26"),
        varying=("deployment_id",),
    ),
    Sample("deploy-requested-invalid.json", "DeployFunction", rejected("bad-request-1")),
    Sample(  # uploaded: the deploy waits for the version's sync
        "release-requested.json",
        "DeployFunction",
        {
            "request_id": "release-2026-11-26-ft",
            "outcome": "waiting",
            "deployment_id": None,
            "reason": None,
            "duplicate": False,
        },
    ),
    Sample(  # a wait's end for a request the table does not know: nothing is done
        "model-version-sync-changed-ready.json",
        "DeployFunction",
        {
            "request_id": "release-2026-11-26-ft",
            "outcome": "ignored",
            "deployment_id": None,
            "reason": None,
            "duplicate": False,
        },
    ),
    Sample("scheduled-poll.json", "PollerFunction", IDLE_POLL),
    Sample(
        "rollout-status-changed-error.json",
        "AlertFunction",
        {"sent": [], "channels": [], "skipped": [], "unverified": [f"{DEPLOYMENT}:2"]},
    ),
    Sample(
        "rollout-stalled.json",
        "AlertFunction",
        {"sent": [], "channels": [], "skipped": [], "unverified": [f"{DEPLOYMENT}:stall:1"]},
    ),
    Sample(
        "deployment-rejected.json",
        "AlertFunction",
        {
            "sent": ["rejected:release-2026-11-26-2"],
            "channels": ["rejected:release-2026-11-26-2"],
            "skipped": [],
            "unverified": [],
        },
        alerts=1,
    ),
    Sample(SAM_SAMPLE, "PollerFunction", IDLE_POLL),
    # No request_id in an empty detail: the event id is the request's key.
    Sample(SAM_SAMPLE, "DeployFunction", rejected("cdc73f9d-aea9-11e3-9d5a-835b769c0d9c")),
    Sample(
        SAM_SAMPLE,
        "AlertFunction",
        {"sent": [], "channels": [], "skipped": [], "unverified": []},
    ),
]


@pytest.mark.parametrize("sample", SAMPLES, ids=str)
def test_sample_event_runs_through_its_handler(world: World, sample: Sample) -> None:
    result = world.runtimes[sample.function].invoke(sample_event(sample.file))
    for key in sample.varying:
        assert result.pop(key)
    assert result == sample.returns
    assert len(world.alerts()) == sample.alerts


def test_alert_function_logs_and_skips_an_event_it_has_no_alert_for(
    world: World, monitor_logs: pytest.LogCaptureFixture
) -> None:
    assert world.runtimes["AlertFunction"].invoke(sample_event(SAM_SAMPLE)) == {
        "sent": [],
        "channels": [],
        "skipped": [],
        "unverified": [],
    }
    (warning,) = [r for r in monitor_logs.records if r.levelno == logging.WARNING]
    assert warning.getMessage() == "no alert is defined for this event: skipped"
    assert warning.__dict__["detail_type"] == "Scheduled Event"


def test_every_file_in_events_is_a_tested_sample() -> None:
    assert {p.name for p in EVENTS.glob("*.json")} == {s.file for s in SAMPLES}


def test_every_trigger_of_every_function_has_a_sample(stack: Stack) -> None:
    """Each rule of the template matches at least one sample of the function it invokes."""
    triggers = [r for r in stack.rules.values() if r.function_logical_id]
    assert {r.function_logical_id for r in triggers} == set(stack.functions)
    for rule in triggers:
        events = [sample_event(s.file) for s in SAMPLES if s.function == rule.function_logical_id]
        if rule.pattern is None:  # a schedule
            assert any(e["detail-type"] == "Scheduled Event" for e in events), rule.logical_id
        else:
            pattern = EventPattern.load(json.dumps(rule.pattern))
            assert any(pattern.matches_event(e) for e in events), rule.logical_id
