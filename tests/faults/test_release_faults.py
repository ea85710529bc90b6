"""A release's upload is never sent twice: after an ambiguous failure (Cerebras made the
version, its answer was lost) the version is looked for and adopted (issue 17)."""

from __future__ import annotations

import pytest

from rollout_monitor.cerebras.errors import CerebrasTransientError
from tests.faults.proxy import After, FaultProxy
from tests.integration.conftest import World
from tests.integration.test_release import ARCH, release, run_schedule


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
