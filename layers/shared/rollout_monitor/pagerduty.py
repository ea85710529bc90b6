"""PagerDuty adapter: the Events API v2, a ``trigger`` per critical alert and a ``resolve``
per recovery, on one incident per endpoint (``channels.dedup_key``).

A 429, a 5xx or a transport error is retried with backoff: the dedup key makes a repeated
trigger join the same incident and a repeated resolve a no-op, so a retry after an unknown
outcome doubles nothing. Any other refusal raises; the once-per-cause claim
(``alerts.py``) keeps a redelivered alert from being sent again once it was accepted.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import httpx
import tenacity

from rollout_monitor.channels import EmailFormat, pagerduty
from rollout_monitor.formatting import Alert

if TYPE_CHECKING:
    from pydantic import SecretStr

logger = logging.getLogger(__name__)

EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
PAGERDUTY_SECRET_FIELD = "routing_key"  # noqa: S105  (a field name, not a secret)
ATTEMPTS = 4
MAX_SECONDS = 15.0  # of retries: within the alert function's 30 s, with its other calls
TIMEOUT_SECONDS = 5.0
MAX_ERROR_TEXT = 300  # of PagerDuty's answer, in an exception


class PagerDutyError(Exception):
    """PagerDuty refused the event (not a 429 or 5xx): retrying would not help."""


class _Retryable(Exception):
    """A 429 or 5xx: PagerDuty asks to send again later."""


class PagerDuty:
    name = "pagerduty"

    def __init__(
        self,
        routing_key: Callable[[], SecretStr],
        client: httpx.Client,
        email: EmailFormat,
        url: str = EVENTS_URL,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._routing_key = routing_key
        self._client = client
        self._email = email
        self._url = url
        self._sleep = sleep

    def accepts(self, alert: Alert) -> bool:
        """Critical alerts open the endpoint's incident, recoveries resolve it."""
        return alert.page is not None

    def send(self, alert: Alert) -> str:
        """Send the event; return the dedup key PagerDuty answered with."""
        key = self._routing_key().get_secret_value()
        if key.startswith("{"):  # never send a whole JSON secret as the key
            raise PagerDutyError(f"the routing key secret is JSON without {PAGERDUTY_SECRET_FIELD}")
        event = pagerduty(alert, self._email.subject(alert), key)
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type((_Retryable, httpx.TransportError)),
            stop=tenacity.stop_after_attempt(ATTEMPTS) | tenacity.stop_after_delay(MAX_SECONDS),
            wait=tenacity.wait_exponential_jitter(initial=1.0, max=8.0, jitter=0.5),
            sleep=self._sleep,
            reraise=True,
        )
        answer = retrying(self._post, event)
        return str(answer.get("dedup_key") or event["dedup_key"])

    def _post(self, event: dict[str, object]) -> dict[str, object]:
        response = self._client.post(self._url, json=event, timeout=TIMEOUT_SECONDS)
        if response.status_code == 429 or response.status_code >= 500:
            logger.warning("PagerDuty asks to retry", extra={"status": response.status_code})
            raise _Retryable(str(response.status_code))
        if response.status_code != 202:
            raise PagerDutyError(
                f"PagerDuty refused the {event['event_action']} event: "
                f"{response.status_code} {response.text[:MAX_ERROR_TEXT]}"
            )
        answer = response.json()
        return answer if isinstance(answer, dict) else {}
