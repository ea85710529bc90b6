"""AlertService's decisions, every outcome, over in-memory fakes of the store Protocols."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from rollout_monitor.alerts import AlertInProgressError, AlertService
from rollout_monitor.events import (
    DeploymentRejected,
    DetailType,
    LostReason,
    RejectionReason,
    RolloutLost,
    RolloutStalled,
    RolloutStatusChanged,
)
from rollout_monitor.formatting import Alert
from rollout_monitor.messages import Links
from rollout_monitor.records import DeploymentRecord, HistoryEntry, Reachability
from tests.fakes import FakeClaims, FakeDeployments, FakeEndpoints, FakeRequests, FakeTopic

NOW = 1_767_225_600.0
LINKS = Links("us-east-1", ("/aws/lambda/poller",), "https://console.example/{endpoint_id}")


def changed(
    deployment_id: str, status: str, outcome: str | None, at: float = NOW
) -> dict[str, Any]:
    return RolloutStatusChanged(
        event_id=f"{deployment_id}:2",
        deployment_id=deployment_id,
        endpoint_id="e-1",
        model="orgs/o/models/a/versions/1",
        org_name="o",
        model_arch_id="a",
        version_id=1,
        previous_status="in_progress",
        rollout_status=status,
        terminal=outcome is not None,
        outcome=outcome,  # type: ignore[arg-type]
        error_message="boom" if outcome == "failed" else None,
        updated_replicas=1,
        total_replicas=4,
        observed_at=at,
        submitted_at=at - 100,
        seconds_since_submission=100.0,
        requested_by="ci",
        reason=None,
        request_id="r",
        sequence=2,
    ).model_dump(mode="json")


def stalled(episode: int = 1) -> dict[str, Any]:
    return RolloutStalled(
        event_id=f"d-1:stall:{episode}",
        deployment_id="d-1",
        endpoint_id="e-1",
        model="orgs/o/models/a/versions/1",
        version_id=1,
        rollout_status="in_progress",
        listed_by_endpoint=True,
        stalled_for_seconds=700.0,
        stall_after_seconds=600.0,
        last_progress_at=NOW - 700,
        submitted_at=NOW - 800,
        requested_by=None,
        episode=episode,
        observed_at=NOW,
    ).model_dump(mode="json")


def rejected() -> dict[str, Any]:
    return DeploymentRejected.of(
        "r-1",
        RejectionReason.ENDPOINT_BUSY,
        "busy",
        rejected_at=NOW,
        endpoint_id="e-1",
        model=None,
        requested_by=None,
    ).model_dump(mode="json")


def stored(detail: dict[str, Any], **changes: Any) -> DeploymentRecord:
    """The record the table holds for an event's deployment."""
    return DeploymentRecord(
        deployment_id=detail["deployment_id"],
        endpoint_id=detail["endpoint_id"],
        org_name="o",
        model_arch_id="a",
        version_id=1,
        model=detail["model"],
        request_id="r",
        submitted_at=NOW - 100,
        status=detail["rollout_status"],
        sequence=detail.get("sequence", 0),
        last_progress_at=NOW,
        requested_by="ci",
    ).model_copy(update=changes)


class Harness:
    def __init__(self, statuses: frozenset[str] = frozenset({"error", "rolled_back"})) -> None:
        self.claims, self.endpoints, self.topic = FakeClaims(), FakeEndpoints(), FakeTopic()
        self.deployments = FakeDeployments(FakeRequests(), self.endpoints)
        self.now = NOW
        self.reachability = Reachability()
        self.service = AlertService(
            claims=self.claims,
            outcomes=self.endpoints,
            deployments=self.deployments,
            reachability=self,
            channels=[self.topic],
            alert_statuses=statuses,
            links=LINKS,
            now=lambda: self.now,
            sleep=self.advance,
            busy_wait_seconds=1,
        )

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def get(self) -> Reachability:
        """The poller's reachability item, as the table holds it."""
        return self.reachability

    def record(self, detail: dict[str, Any], **changes: Any) -> dict[str, Any]:
        """Put the event's deployment in the table, as the poller would have; return it."""
        record = stored(detail, **changes)
        self.deployments.records[record.deployment_id] = record
        if "sequence" in detail:
            entry = HistoryEntry(
                deployment_id=record.deployment_id,
                sequence=detail["sequence"],
                previous_status=detail["previous_status"],
                status=detail["rollout_status"],
                observed_at=detail["observed_at"],
                error_message=detail["error_message"],
            )
            self.deployments.entries.setdefault(record.deployment_id, []).append(entry)
        return detail

    def handle(self, detail_type: str, detail: dict[str, Any]) -> Any:
        """Deliver an event the table bears out (the poller recorded what it says)."""
        if detail_type == DetailType.ROLLOUT_STATUS_CHANGED:
            self.record(detail)
        elif detail_type == DetailType.ROLLOUT_STALLED:
            record = self.deployments.records.get(detail["deployment_id"])
            episode = max(detail["episode"], record.stall_episode if record else 0)
            self.record(detail, stall_episode=episode)
        return self.service.handle(detail_type, detail)

    def kinds(self) -> list[str]:
        return [n.document["kind"] for n in self.topic.sent]


@pytest.fixture
def h() -> Harness:
    return Harness()


def test_a_failure_alerts_once_however_often_it_is_delivered(h: Harness) -> None:
    first = h.handle(DetailType.ROLLOUT_STATUS_CHANGED, changed("d-1", "error", "failed"))
    again = h.handle(DetailType.ROLLOUT_STATUS_CHANGED, changed("d-1", "error", "failed"))
    assert (first.sent, again.skipped) == (["d-1:error"], ["d-1:error"])
    assert h.kinds() == ["rollout_failed"]
    assert h.topic.sent[0].attributes["severity"] == "critical"


def test_a_status_not_listed_sends_nothing_but_is_remembered(h: Harness) -> None:
    result = h.handle(DetailType.ROLLOUT_STATUS_CHANGED, changed("d-1", "cancelled", "cancelled"))
    assert (result.sent, h.topic.sent) == ([], [])
    assert h.endpoints.last_outcome("e-1") is None  # a cancel is neither failure nor success


def test_a_listed_cancelled_status_alerts() -> None:
    h = Harness(frozenset({"error", "cancelled"}))
    h.handle(DetailType.ROLLOUT_STATUS_CHANGED, changed("d-1", "cancelled", "cancelled"))
    assert h.kinds() == ["rollout_failed"]


def test_a_success_after_a_failure_sends_one_recovery(h: Harness) -> None:
    h.handle(DetailType.ROLLOUT_STATUS_CHANGED, changed("d-1", "error", "failed"))
    ok = changed("d-2", "done", "succeeded", NOW + 10)
    h.handle(DetailType.ROLLOUT_STATUS_CHANGED, ok)
    h.handle(DetailType.ROLLOUT_STATUS_CHANGED, ok)
    h.handle(DetailType.ROLLOUT_STATUS_CHANGED, changed("d-3", "done", "succeeded", NOW + 20))
    assert h.kinds() == ["rollout_failed", "endpoint_recovered"]
    assert h.topic.sent[1].document["failed_deployment_id"] == "d-1"


def test_a_success_with_no_failure_before_sends_nothing(h: Harness) -> None:
    h.handle(DetailType.ROLLOUT_STATUS_CHANGED, changed("d-1", "done", "succeeded"))
    assert h.topic.sent == []
    outcome = h.endpoints.last_outcome("e-1")
    assert outcome is not None
    assert outcome.outcome == "succeeded"


def test_each_stall_episode_alerts_once(h: Harness) -> None:
    h.handle(DetailType.ROLLOUT_STALLED, stalled(1))
    h.handle(DetailType.ROLLOUT_STALLED, stalled(1))
    h.handle(DetailType.ROLLOUT_STALLED, stalled(2))
    assert h.kinds() == ["rollout_stalled", "rollout_stalled"]


def test_a_rejection_alerts_once(h: Harness) -> None:
    h.handle(DetailType.DEPLOYMENT_REJECTED, rejected())
    h.handle(DetailType.DEPLOYMENT_REJECTED, rejected())
    assert h.kinds() == ["deploy_rejected"]


def test_an_event_with_no_alert_is_skipped(h: Harness) -> None:
    result = h.handle("Deployment Submitted", {"anything": 1})
    assert (result.sent, result.skipped, h.topic.sent) == ([], [], [])


def test_sns_down_releases_the_claim_so_the_retry_sends(h: Harness) -> None:
    h.topic.failures = 1
    with pytest.raises(RuntimeError):
        h.handle(DetailType.DEPLOYMENT_REJECTED, rejected())
    assert h.claims.states == {}
    assert h.handle(DetailType.DEPLOYMENT_REJECTED, rejected()).sent == ["rejected:r-1"]


def test_a_claim_held_by_another_delivery_fails_this_one_for_a_retry(h: Harness) -> None:
    h.claims.claim("rejected:r-1", NOW, 60)
    with pytest.raises(AlertInProgressError):
        h.handle(DetailType.DEPLOYMENT_REJECTED, rejected())
    assert h.topic.sent == []


def test_a_claim_whose_holder_died_is_taken_after_its_lease(h: Harness) -> None:
    h.claims.claim("rejected:r-1", NOW - 61, 60)
    assert h.handle(DetailType.DEPLOYMENT_REJECTED, rejected()).sent == ["rejected:r-1"]


def test_a_failure_seen_with_a_skewed_clock_then_two_successes_sends_one_recovery(
    h: Harness,
) -> None:
    h.handle(DetailType.ROLLOUT_STATUS_CHANGED, changed("d-1", "error", "failed", NOW + 300))
    for n, at in ((2, NOW + 10), (3, NOW + 20)):  # both "before" the failure, by the clocks
        h.handle(DetailType.ROLLOUT_STATUS_CHANGED, changed(f"d-{n}", "done", "succeeded", at))
    assert h.kinds() == ["rollout_failed", "endpoint_recovered"]


def test_a_failure_delivered_after_the_success_still_gets_its_recovery(h: Harness) -> None:
    ok = changed("d-2", "done", "succeeded", NOW + 10)
    h.handle(DetailType.ROLLOUT_STATUS_CHANGED, ok)
    late = changed("d-1", "error", "failed", NOW)  # Lambda's retry, after the success
    h.handle(DetailType.ROLLOUT_STATUS_CHANGED, late)
    h.handle(DetailType.ROLLOUT_STATUS_CHANGED, late)
    assert h.kinds() == ["rollout_failed", "endpoint_recovered"]
    recovery = h.topic.sent[1].document
    assert (recovery["deployment_id"], recovery["failed_deployment_id"]) == ("d-2", "d-1")


def test_a_forged_status_event_sends_nothing(h: Harness) -> None:
    forged = changed("d-9", "error", "failed")  # no such deployment in the table
    result = h.service.handle(DetailType.ROLLOUT_STATUS_CHANGED, forged)
    assert (result.unverified, h.topic.sent) == (["d-9:2"], [])
    h.record(changed("d-9", "in_progress", None))  # it exists, but never had that status
    result = h.service.handle(DetailType.ROLLOUT_STATUS_CHANGED, forged)
    assert (result.unverified, h.topic.sent) == (["d-9:2"], [])


def test_a_forged_stall_event_sends_nothing(h: Harness) -> None:
    h.record(stalled(1) | {"rollout_status": "in_progress"}, stall_episode=0)
    result = h.service.handle(DetailType.ROLLOUT_STALLED, stalled(1))
    assert (result.unverified, h.topic.sent) == (["d-1:stall:1"], [])


def test_the_alert_says_what_the_table_says_not_the_event(h: Harness) -> None:
    event = h.record(changed("d-1", "error", "failed"))
    tampered = event | {"error_message": "call +1-555-0100 now", "requested_by": "mallory"}
    h.service.handle(DetailType.ROLLOUT_STATUS_CHANGED, tampered)
    (alert,) = h.topic.sent
    assert "555-0100" not in alert.text
    assert "mallory" not in alert.text
    assert "boom" in alert.text  # the stored error message


def _episode(detail_type: str, episode: int) -> dict[str, Any]:
    return {
        "event_id": f"cerebras:{detail_type.rsplit(maxsplit=1)[-1].lower()}:{episode}",
        "episode": episode,
        "failing_since": NOW - 700,
        "failing_for_seconds": 700.0,
        "unreachable_after_seconds": 600.0,
        "error_kinds": ["CerebrasTimeoutError"],
        "observed_at": NOW,
    }


def test_a_cerebras_episode_warns_once_and_its_end_is_noticed_once() -> None:
    harness = Harness()
    harness.reachability = Reachability(
        episode=3, failing_since=NOW - 700, announced=True, announced_episodes=[1, 3]
    )
    for _ in range(2):  # the second delivery is a duplicate
        harness.service.handle("Cerebras Unreachable", _episode("Cerebras Unreachable", 3))
    harness.reachability = Reachability(episode=4, announced_episodes=[1, 3])
    for _ in range(2):
        harness.service.handle("Cerebras Reachable", _episode("Cerebras Reachable", 3))
    kinds = [(n.document["kind"], n.attributes["severity"]) for n in harness.topic.sent]
    assert kinds == [("cerebras_unreachable", "warning"), ("cerebras_reachable", "info")]
    assert "CerebrasTimeoutError" in harness.topic.sent[0].text


@pytest.mark.parametrize(
    ("detail_type", "stored"),
    [
        ("Cerebras Unreachable", Reachability(episode=3, failing_since=NOW - 100)),  # unannounced
        ("Cerebras Unreachable", Reachability(episode=2)),  # an episode not yet begun
        ("Cerebras Reachable", Reachability(episode=3, announced=True, announced_episodes=[3])),
        # an episode that ended before it was announced: its events were never sent
        ("Cerebras Unreachable", Reachability(episode=5, announced_episodes=[1])),
        ("Cerebras Reachable", Reachability(episode=5, announced_episodes=[1])),
    ],
)
def test_a_cerebras_episode_the_table_does_not_show_sends_nothing(
    detail_type: str, stored: Reachability
) -> None:
    harness = Harness()
    harness.reachability = stored
    result = harness.service.handle(detail_type, _episode(detail_type, 3))
    assert result.unverified == [f"cerebras:{detail_type.rsplit(maxsplit=1)[-1].lower()}:3"]
    assert harness.topic.sent == []


def test_a_cerebras_episode_resent_under_another_event_id_warns_no_more() -> None:
    """The alert is keyed on the episode the table shows, not on the id the event carries."""
    harness = Harness()
    harness.reachability = Reachability(
        episode=3, failing_since=NOW - 700, announced=True, announced_episodes=[3]
    )
    harness.service.handle("Cerebras Unreachable", _episode("Cerebras Unreachable", 3))
    for forged in ("cerebras:unreachable:3b", "x-1", "x-2"):
        detail = _episode("Cerebras Unreachable", 3) | {"event_id": forged}
        harness.service.handle("Cerebras Unreachable", detail)
    assert len(harness.topic.sent) == 1


def test_a_cerebras_episode_number_the_table_never_held_sends_nothing() -> None:
    harness = Harness()
    harness.reachability = Reachability(episode=3)
    for detail_type in ("Cerebras Unreachable", "Cerebras Reachable"):
        result = harness.service.handle(detail_type, _episode(detail_type, -1))
        assert len(result.unverified) == 1, detail_type
    assert harness.topic.sent == []


@dataclass
class Pager:
    """A pager channel: takes what PagerDuty would (critical and recovery), or fails."""

    name: str = "pagerduty"
    failures: int = 0
    sent: list[tuple[str, str]] = field(default_factory=list)

    def accepts(self, alert: Alert) -> bool:
        return alert.page is not None

    def send(self, alert: Alert) -> str:
        if self.failures:
            self.failures -= 1
            raise RuntimeError("PagerDuty is down")
        assert alert.page is not None
        self.sent.append((alert.page.value, alert.endpoint_id or ""))
        return f"pd-{len(self.sent)}"


def test_a_failing_channel_holds_back_no_other_and_its_retry_sends_it_alone(h: Harness) -> None:
    pager = Pager(failures=1)
    h.service.channels = [pager, h.topic]  # the failing channel first
    detail = h.record(changed("d-1", "error", "failed"))
    with pytest.raises(RuntimeError, match="PagerDuty is down"):
        h.service.handle(DetailType.ROLLOUT_STATUS_CHANGED, detail)
    assert h.kinds() == ["rollout_failed"]  # the email went all the same
    result = h.service.handle(DetailType.ROLLOUT_STATUS_CHANGED, detail)  # Lambda's retry
    assert pager.sent == [("trigger", "e-1")]
    assert h.kinds() == ["rollout_failed"]  # not sent twice
    assert (result.sent, result.channels) == (["d-1:error"], ["d-1:error#pagerduty"])


def test_a_failure_whose_channel_failed_is_still_recovered_from(h: Harness) -> None:
    h.service.channels = [Pager(failures=99), h.topic]
    for _ in range(3):  # every delivery fails on the pager
        with pytest.raises(RuntimeError):
            h.handle(DetailType.ROLLOUT_STATUS_CHANGED, changed("d-1", "error", "failed"))
    h.service.channels = [h.topic]
    h.handle(DetailType.ROLLOUT_STATUS_CHANGED, changed("d-2", "done", "succeeded", NOW + 60))
    assert h.kinds() == ["rollout_failed", "endpoint_recovered"]


def test_a_page_is_only_triggered_where_a_recovery_resolves_it() -> None:
    h = Harness(frozenset({"error", "rolled_back", "cancelled"}))
    pager = Pager()
    h.service.channels = [h.topic, pager]
    h.handle(DetailType.ROLLOUT_STATUS_CHANGED, changed("d-1", "cancelled", "cancelled"))
    assert pager.sent == []  # critical, but nothing would resolve it: not paged
    h.handle(DetailType.ROLLOUT_STATUS_CHANGED, changed("d-2", "error", "failed", NOW + 10))
    h.handle(DetailType.ROLLOUT_STATUS_CHANGED, changed("d-3", "done", "succeeded", NOW + 20))
    assert pager.sent == [("trigger", "e-1"), ("resolve", "e-1")]
    assert h.topic.sent[-1].subject.startswith("[INFO] recovered")


def test_an_endpoint_gone_pages_and_its_next_success_resolves_it(h: Harness) -> None:
    pager = Pager()
    h.service.channels = [h.topic, pager]
    lost = RolloutLost.of(
        stored(changed("d-1", "in_progress", None), lost_reason="endpoint_not_found"),
        reason=LostReason.ENDPOINT_NOT_FOUND,
        deadline=900,
        observed_at=NOW,
    ).model_dump(mode="json")
    h.deployments.records["d-1"] = stored(
        changed("d-1", "in_progress", None), lost_reason="endpoint_not_found"
    )
    h.service.handle(DetailType.ROLLOUT_LOST, lost)
    h.handle(DetailType.ROLLOUT_STATUS_CHANGED, changed("d-2", "done", "succeeded", NOW + 60))
    assert pager.sent == [("trigger", "e-1"), ("resolve", "e-1")]


def test_a_recovery_is_routed_as_the_failure_it_closes(h: Harness) -> None:
    failed = h.record(changed("d-1", "error", "failed"), team="search")
    h.service.handle(DetailType.ROLLOUT_STATUS_CHANGED, failed)
    done = h.record(changed("d-2", "done", "succeeded", NOW + 60), team="ads")
    h.service.handle(DetailType.ROLLOUT_STATUS_CHANGED, done)
    failure, recovery = h.topic.sent
    assert failure.attributes["team"] == "search"
    assert recovery.document["kind"] == "endpoint_recovered"
    assert recovery.attributes["team"] == "search"  # the failed deployment's team
