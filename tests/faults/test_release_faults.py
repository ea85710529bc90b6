"""A release's upload is never sent twice: after an ambiguous failure (Cerebras made the
version, its answer was lost) the version is looked for and adopted (issue 17)."""

from __future__ import annotations

from typing import Any

import pytest

from rollout_monitor.cerebras.errors import CerebrasRateLimitedError, CerebrasTransientError
from rollout_monitor_local.simulator import Fault, FaultKind
from tests.faults.proxy import After, FaultProxy
from tests.integration.conftest import World
from tests.integration.test_release import ARCH, SYNC, release, release_event, run_schedule


@pytest.mark.parametrize("lost", [After.BAD_GATEWAY, After.RESET, After.MALFORMED])
def test_an_upload_whose_answer_is_lost_is_found_and_never_sent_again(
    faulty: World, proxy: FaultProxy, lost: After
) -> None:
    proxy.fail_after("models:upload", lost)
    result = release(faulty, "rel-lost", "s3://weights-bucket/ft-12", version_aliases=["ft-twelve"])

    assert result["outcome"] == "waiting"
    assert proxy.acted == 1
    assert faulty.simulator.count("POST", "models:upload") == 1
    versions = faulty.simulator.versions[("my-org", ARCH)]
    (made,) = [v for v in versions.values() if "ft-twelve" in v.aliases]
    run_schedule(faulty, 60)
    (submitted,) = faulty.emitted("Deployment Submitted")
    assert submitted["detail"]["model"].endswith(f"/versions/{made.version_id}")
    assert faulty.simulator.count("POST", "models:upload") == 1


def test_an_upload_not_listed_after_an_ambiguous_failure_fails_for_a_retry_that_never_sends(
    faulty: World, proxy: FaultProxy
) -> None:
    proxy.fail_after("models:upload", After.UNAVAILABLE)
    proxy.fail_reads_after_fault = True  # the look that follows cannot read the versions
    with pytest.raises(CerebrasTransientError):  # the invocation fails: Lambda retries it
        release(faulty, "rel-unknown", "s3://weights-bucket/ft-13")
    assert faulty.emitted() == []
    proxy.heal()
    # the retry looks (the version is listed now) and adopts it: no second upload
    assert release(faulty, "rel-unknown", "s3://weights-bucket/ft-13")["outcome"] == "waiting"
    assert faulty.simulator.count("POST", "models:upload") == 1


def test_an_upload_rate_limited_to_the_end_was_not_sent_and_a_retry_uploads_once(
    world: World,
) -> None:
    world.simulator.inject(
        Fault(FaultKind.RATE_LIMIT, times=1000, path_contains="models:upload", seconds=0.1)
    )
    with pytest.raises(CerebrasRateLimitedError):  # Cerebras certainly made nothing
        release(world, "rel-429", "s3://weights-bucket/ft-429")
    assert [v for v in _versions(world) if v.customer_s3_uri.endswith("ft-429")] == []
    world.simulator.faults.clear()
    world.clock.advance(600)
    assert release(world, "rel-429", "s3://weights-bucket/ft-429")["outcome"] == "waiting"
    assert [v for v in _versions(world) if v.customer_s3_uri.endswith("ft-429")] != []


def test_a_lost_upload_is_never_confused_with_an_older_upload_of_the_same_weights(
    faulty: World, proxy: FaultProxy
) -> None:
    weights = "s3://weights-bucket/nightly/latest"
    for n in range(510):  # more versions than a listing is kept of
        faulty.simulator.upload("my-org", ARCH, f"s3://weights-bucket/old/{n}", sync="synced")
    old = faulty.simulator.upload("my-org", ARCH, weights, sync="synced")  # the same path, before
    proxy.fail_after("models:upload", After.UNAVAILABLE)
    proxy.fail_reads_after_fault = True
    with pytest.raises(CerebrasTransientError):
        release(faulty, "rel-500", weights)
    proxy.heal()
    assert release(faulty, "rel-500", weights)["outcome"] == "waiting"
    (new,) = [v for v in _versions(faulty) if v.customer_s3_uri == weights and v is not old]
    (first,) = faulty.emitted(SYNC)
    assert first["detail"]["model"].endswith(f"/versions/{new.version_id}")


def test_a_release_redelivered_after_its_resume_lost_deploy_model_s_answer_adopts_it(
    faulty: World, proxy: FaultProxy
) -> None:
    assert release(faulty, "rel-x", "s3://weights-bucket/ft-x")["outcome"] == "waiting"
    proxy.fail_after(":deployModel", After.UNAVAILABLE)
    proxy.fail_reads_after_fault = True
    run_schedule(faulty, 60)  # synced: the resume sends deployModel, its answer is lost
    assert faulty.simulator.count("POST", ":deployModel") == 1
    proxy.heal()
    faulty.clock.advance(600)
    again = faulty.runtimes["DeployFunction"].invoke(
        release_event("rel-x", "s3://weights-bucket/ft-x")
    )
    assert again["outcome"] == "submitted"
    assert faulty.simulator.count("POST", ":deployModel") == 1


def _versions(world: World) -> list[Any]:
    return list(world.simulator.versions[("my-org", ARCH)].values())
