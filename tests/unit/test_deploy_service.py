"""DeployService's decisions, every outcome, over in-memory fakes of the store Protocols."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from rollout_monitor.cerebras.errors import (
    CerebrasAuthenticationError,
    CerebrasServerError,
    CerebrasValidationError,
)
from rollout_monitor.cerebras.models import DeployOperation, EndpointStatus
from rollout_monitor.deploy import DeployOutcomeUnknownError, DeployService, RequestInProgressError
from rollout_monitor.events import DeploymentRejected, DeploymentSubmitted, RolloutStatusChanged
from rollout_monitor.records import RequestContent, RequestState
from tests.fakes import FakeBus, FakeCerebras, FakeDeployments, FakeEndpoints, FakeRequests

ENDPOINT = "my-org-llama-3.3-70b"
MODEL = "orgs/my-org/models/llama-3.3-70b/versions/1"
NOW = 1_767_225_600.0


def operation(deployment_id: str = "d-1", status: str = "not_started") -> DeployOperation:
    return DeployOperation.model_validate(
        {
            "name": deployment_id,
            "done": False,
            "response": {
                "deployment_id": deployment_id,
                "endpoint_id": ENDPOINT,
                "org_name": "my-org",
                "model_arch_id": "llama-3.3-70b",
                "version_id": 1,
                "created": int(NOW),
                "updated": int(NOW),
                "rollout_status": status,
            },
        }
    )


def listing(*deployed: dict[str, Any]) -> EndpointStatus:
    """The endpoint's status as Cerebras lists it."""
    return EndpointStatus.model_validate(
        {
            "name": ENDPOINT,
            "model_arch_id": "llama-3.3-70b",
            "deployed_models": list(deployed),
            "managing_org_name": "my-org",
            "created": 0,
            "updated": 0,
        }
    )


@dataclass
class Clock:
    now: float = NOW

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Harness:
    service: DeployService
    requests: FakeRequests
    endpoints: FakeEndpoints
    deployments: FakeDeployments
    cerebras: FakeCerebras
    bus: FakeBus
    clock: Clock

    def handle(self, **detail: Any) -> Any:
        body = {"endpoint_id": ENDPOINT, "model": MODEL, "request_id": "r-1"} | detail
        return self.service.handle(body, event_id="event-1")


@pytest.fixture
def h() -> Harness:
    requests, endpoints, clock = FakeRequests(), FakeEndpoints(), Clock()
    deployments = FakeDeployments(requests, endpoints)
    cerebras, bus = FakeCerebras(), FakeBus()
    service = DeployService(
        requests=requests,
        endpoints=endpoints,
        deployments=deployments,
        cerebras=cerebras,
        publisher=bus,
        now=clock,
        sleep=clock.sleep,
        duplicate_wait_seconds=5,
    )
    return Harness(service, requests, endpoints, deployments, cerebras, bus, clock)


def test_a_valid_request_is_deployed_recorded_and_announced_once(h: Harness) -> None:
    h.cerebras.operations = [operation()]
    result = h.handle()
    assert (result.outcome, result.deployment_id, result.duplicate) == ("submitted", "d-1", False)
    assert h.cerebras.calls == [f"GET {ENDPOINT}", f"deployModel {ENDPOINT} {MODEL}"]
    (event,) = h.bus.published
    assert isinstance(event, DeploymentSubmitted)
    assert (event.event_id, event.adopted) == ("d-1:submitted", False)
    assert h.deployments.records["d-1"].status == "not_started"
    assert h.endpoints.holds[ENDPOINT].deployment_id == "d-1"
    claim = h.requests.items["r-1"]
    assert (claim.state, claim.pending_events) == (RequestState.SUBMITTED, [])


def test_an_invalid_request_is_rejected_without_a_call(h: Harness) -> None:
    result = h.handle(endpoint_id="../etc")
    assert (result.outcome, result.reason) == ("rejected", "invalid_request")
    assert h.cerebras.calls == []
    (event,) = h.bus.published
    assert isinstance(event, DeploymentRejected)
    assert "endpoint_id" in event.message
    assert "r-1" not in h.requests.items  # an invalid request claims nothing


def test_a_busy_endpoint_is_rejected_naming_the_holder(h: Harness) -> None:
    h.cerebras.operations = [operation()]
    h.handle()
    result = h.handle(request_id="r-2")
    assert (result.outcome, result.reason) == ("rejected", "endpoint_busy")
    rejection = h.bus.published[-1]
    assert isinstance(rejection, DeploymentRejected)
    assert rejection.blocking_deployment_id == "d-1"
    assert len(h.cerebras.deploys) == 1


def test_force_deploys_over_a_busy_endpoint(h: Harness) -> None:
    h.cerebras.operations = [operation(), operation("d-2")]
    h.handle()
    assert h.handle(request_id="r-2", force=True).deployment_id == "d-2"


def test_an_endpoint_whose_rollout_ended_is_free(h: Harness) -> None:
    h.cerebras.operations = [operation(), operation("d-2")]
    h.handle()
    done = h.deployments.records["d-1"].model_copy(update={"status": "done"})
    h.deployments.records["d-1"] = done
    assert h.handle(request_id="r-2").deployment_id == "d-2"


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (CerebrasAuthenticationError(401, "bad key"), "authentication_failed"),
        (CerebrasValidationError(422, [{"msg": "no"}]), "cerebras_refused"),
    ],
)
def test_a_refusal_is_rejected_and_frees_the_endpoint(
    h: Harness, error: Exception, reason: str
) -> None:
    h.cerebras.operations = [error]
    result = h.handle()
    assert (result.outcome, result.reason) == ("rejected", reason)
    assert ENDPOINT not in h.endpoints.holds


def test_a_transient_failure_propagates_and_hands_the_request_on(h: Harness) -> None:
    h.cerebras.operations = [CerebrasServerError(503)]
    with pytest.raises(CerebrasServerError):
        h.handle()
    assert h.requests.items["r-1"].state == RequestState.INTERRUPTED
    assert h.bus.published == []


def test_a_duplicate_returns_the_first_result_without_a_call(h: Harness) -> None:
    h.cerebras.operations = [operation()]
    h.handle()
    again = h.handle()
    assert (again.outcome, again.deployment_id, again.duplicate) == ("submitted", "d-1", True)
    assert len(h.cerebras.deploys) == 1
    assert len(h.bus.published) == 1


def test_a_duplicate_of_a_rejection_is_the_rejection(h: Harness) -> None:
    h.cerebras.operations = [CerebrasAuthenticationError(401, "bad key")]
    h.handle()
    again = h.handle()
    assert (again.outcome, again.duplicate) == ("rejected", True)
    assert len(h.bus.published) == 1


def test_a_duplicate_waits_while_the_first_is_still_at_work_then_gives_up(h: Harness) -> None:
    h.requests.claim("r-1", CONTENT, NOW, 60)  # another delivery holds it
    with pytest.raises(RequestInProgressError):
        h.handle()
    assert h.clock.now >= NOW + 5  # it waited its duplicate_wait_seconds
    assert h.cerebras.calls == []


def test_a_failed_announcement_is_given_up_and_sent_by_the_retry(h: Harness) -> None:
    h.cerebras.operations = [operation()]
    h.bus.failures = 1  # the first delivery recorded, then PutEvents failed
    with pytest.raises(RuntimeError):
        h.handle()
    assert h.requests.items["r-1"].outbox_lease_until == 0.0  # released at once
    again = h.handle()  # Lambda's retry: announces under the same event id
    assert again.duplicate
    (event,) = h.bus.published
    assert event.event_id == "d-1:submitted"


def test_a_leased_outbox_is_left_to_its_writer_until_the_lease_lapses(h: Harness) -> None:
    h.cerebras.operations = [operation()]
    h.service.publisher = FakeBus(failures=1)
    real_release = h.requests.release_outbox
    h.requests.release_outbox = lambda claim: None  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        h.handle()  # died before giving the lease up
    h.requests.release_outbox = real_release  # type: ignore[method-assign]
    h.service.publisher = h.bus
    h.service.duplicate_wait_seconds = 1
    with pytest.raises(RequestInProgressError):
        h.handle()  # within the writer's lease: not announced twice, retried later
    assert h.bus.published == []
    h.clock.now += 120
    assert h.handle().duplicate
    assert [e.event_id for e in h.bus.published] == ["d-1:submitted"]


CONTENT = RequestContent(endpoint_id=ENDPOINT, model=MODEL)


def test_a_taken_over_request_adopts_the_deployment_instead_of_deploying(h: Harness) -> None:
    _, claim = h.requests.claim("r-1", CONTENT, NOW, 60)
    h.requests.mark_sent(claim, NOW, [])
    h.requests.interrupt("r-1", NOW)  # the first delivery died after deployModel
    h.cerebras.endpoint = listing(
        {"id": "d-9", "model": MODEL, "created": int(NOW) + 1, "state": "in_progress"}
    )
    result = h.handle()
    assert result.deployment_id == "d-9"
    assert h.cerebras.calls == [f"GET {ENDPOINT}"]
    (event,) = h.bus.published
    assert isinstance(event, DeploymentSubmitted)
    assert event.adopted


def test_a_taken_over_request_that_never_sent_deploys(h: Harness) -> None:
    h.requests.claim("r-1", CONTENT, NOW, 60)
    h.requests.interrupt("r-1", NOW)  # died before deployModel was sent
    h.cerebras.endpoint = listing()
    h.cerebras.operations = [operation()]
    assert h.handle().deployment_id == "d-1"
    assert h.cerebras.calls == [f"GET {ENDPOINT}", f"deployModel {ENDPOINT} {MODEL}"]


def test_a_taken_over_request_that_sent_waits_until_absence_is_proven(h: Harness) -> None:
    _, claim = h.requests.claim("r-1", CONTENT, NOW, 60)
    h.requests.mark_sent(claim, NOW, [])
    h.requests.interrupt("r-1", NOW)
    h.cerebras.operations = [operation()]
    with pytest.raises(DeployOutcomeUnknownError):
        h.handle()  # nothing listed yet, and it could still appear: never sent blind
    assert h.cerebras.deploys == []
    h.clock.now += 86  # past the send window and the listing delay: it was never made
    assert h.handle().deployment_id == "d-1"
    assert len(h.cerebras.deploys) == 1


def test_a_different_request_with_the_same_id_is_a_conflict(h: Harness) -> None:
    h.cerebras.operations = [operation()]
    h.handle()
    result = h.handle(endpoint_id="my-org-qwen-3-32b")
    assert (result.outcome, result.reason) == ("rejected", "request_id_conflict")
    rejection = h.bus.published[-1]
    assert isinstance(rejection, DeploymentRejected)
    assert "differ in endpoint_id" in rejection.message
    assert "endpoint_id=my-org-llama-3.3-70b" in rejection.message
    assert len(h.cerebras.deploys) == 1
    assert h.requests.items["r-1"].state == RequestState.SUBMITTED  # the first stands


def test_an_invalid_request_leaves_its_id_to_a_valid_one(h: Harness) -> None:
    h.cerebras.operations = [operation()]
    assert h.handle(force="yes").reason == "invalid_request"
    assert h.handle().outcome == "submitted"


def test_a_deployment_over_at_once_announces_its_status(h: Harness) -> None:
    h.cerebras.operations = [operation(status="error")]
    h.handle()
    submitted, changed = h.bus.published
    assert isinstance(submitted, DeploymentSubmitted)
    assert isinstance(changed, RolloutStatusChanged)
    assert (changed.event_id, changed.previous_status, changed.rollout_status) == (
        "d-1:0",
        None,
        "error",
    )
    assert changed.outcome == "failed"
    assert ENDPOINT not in h.endpoints.holds


def test_a_retry_that_sent_adopts_its_deployment_even_if_another_holds_the_endpoint(
    h: Harness,
) -> None:
    """Looking for what was sent comes before the busy check: a made deployment is never
    answered with endpoint_busy."""
    _, claim = h.requests.claim("r-1", CONTENT, NOW, 60)
    h.endpoints.claim(ENDPOINT, "r-1", NOW, force=False, stale_after=900)
    h.requests.mark_sent(claim, NOW, [])
    h.requests.interrupt("r-1", NOW)  # deployModel failed ambiguously; the invocation failed
    h.endpoints.claim(ENDPOINT, "r-2", NOW + 30, force=True, stale_after=900)  # someone forced
    h.cerebras.endpoint = listing(
        {"id": "d-9", "model": MODEL, "created": int(NOW), "state": "in_progress"}
    )
    result = h.handle()
    assert (result.outcome, result.deployment_id) == ("submitted", "d-9")
    assert h.cerebras.deploys == []
