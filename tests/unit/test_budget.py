"""A call's deadline decides when it gives up, never what it reports."""

from __future__ import annotations

import pytest

from rollout_monitor.cerebras.errors import CerebrasServerError, CerebrasTimeoutError
from rollout_monitor.cerebras.protocol import Budget


def test_an_attempt_past_the_deadline_reraises_the_last_real_error() -> None:
    budget = Budget(at=10.0)

    def failed_attempt() -> None:
        with budget.attempt(now=1.0) as left:
            assert left == 9.0
            raise CerebrasServerError(503)

    with pytest.raises(CerebrasServerError):
        failed_attempt()
    with pytest.raises(CerebrasServerError) as caught, budget.attempt(now=10.5):
        pytest.fail("no attempt starts past the deadline")
    assert caught.value.status_code == 503  # a slow machine does not turn it into a timeout


def test_a_call_with_no_attempt_in_time_is_a_timeout_that_sent_nothing() -> None:
    with pytest.raises(CerebrasTimeoutError) as caught, Budget(at=1.0).attempt(now=2.0):
        pytest.fail("no attempt starts past the deadline")
    assert caught.value.sent is False
