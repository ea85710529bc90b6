"""EventBridge adapter: publish outbound events, in batches, every failed entry retried."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

import tenacity

from rollout_monitor.events import SOURCE, OutboundDetail
from rollout_monitor.ports import MAX_ENTRIES_PER_PUT, PublishError

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_events.type_defs import PutEventsRequestEntryTypeDef

logger = logging.getLogger(__name__)

__all__ = ["MAX_ENTRIES_PER_PUT", "EventPublisher", "PublishError"]

PUBLISH_ATTEMPTS = 4


class EventPublisher:
    def __init__(self, bus_name: str, client: EventBridgeClient) -> None:
        self._bus_name = bus_name
        self._client = client

    def publish(self, details: Sequence[OutboundDetail]) -> None:
        """Publish all of ``details`` or raise :class:`PublishError` naming those that failed.

        Entries PutEvents refuses are sent again (only those), with backoff.
        """
        pending = list(details)

        def attempt() -> None:
            nonlocal pending
            pending, codes = self._put(pending)
            if pending:
                logger.warning(
                    "PutEvents entries failed", extra={"failed": len(pending), "codes": codes}
                )
                raise PublishError([d.event_id for d in pending], codes)

        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(PublishError),
            stop=tenacity.stop_after_attempt(PUBLISH_ATTEMPTS),
            wait=tenacity.wait_exponential_jitter(multiplier=0.1, max=1.0, jitter=0.1),
            reraise=True,
        )
        retrying(attempt)

    def _put(self, details: list[OutboundDetail]) -> tuple[list[OutboundDetail], list[str]]:
        """Send in batches of at most ten; return the entries refused and their error codes."""
        failed: list[OutboundDetail] = []
        codes: list[str] = []
        for start in range(0, len(details), MAX_ENTRIES_PER_PUT):
            batch = details[start : start + MAX_ENTRIES_PER_PUT]
            answer = self._client.put_events(Entries=[self._entry(d) for d in batch])
            if answer.get("FailedEntryCount", 0) == 0:
                continue
            for detail, result in zip(batch, answer["Entries"], strict=True):
                if "ErrorCode" in result:
                    failed.append(detail)
                    codes.append(result["ErrorCode"])
        return failed, codes

    def _entry(self, detail: OutboundDetail) -> PutEventsRequestEntryTypeDef:
        return {
            "Source": SOURCE,
            "DetailType": detail.detail_type.value,
            "Detail": detail.model_dump_json(),
            "EventBusName": self._bus_name,
        }
