"""Announcing what the poller recorded: every record's pending events published together,
up to ten per ``PutEvents`` call across records, then each record's outbox cleared (several
in one transaction) or, if one of its events was refused, released at once so the next
cycle announces the rest. Consumers deduplicate on ``event_id``, so announcing again is safe;
losing an event is not, and the outbox never allows it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rollout_monitor.events import OutboundDetail, load_pending
from rollout_monitor.ports import (
    MAX_ENTRIES_PER_PUT,
    MAX_TRANSACTION_ITEMS,
    Deployments,
    Publisher,
    PublishError,
)
from rollout_monitor.records import DeploymentRecord

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Announced:
    cleared: list[DeploymentRecord]  # every event accepted, the outbox cleared
    announced: int  # events accepted
    refused: int  # events refused after retries: announced by a later cycle


@dataclass
class Announcer:
    deployments: Deployments
    publisher: Publisher
    run: Callable[..., Awaitable[Any]]  # a blocking AWS call, off the event loop
    # Events the caller built this run, by their outbox text (events.dump_pending): announced
    # as they are; any other pending event is parsed from the record.
    built: Mapping[str, OutboundDetail] = field(default_factory=dict)

    async def announce(self, records: list[DeploymentRecord]) -> Announced:
        """Publish, then clear or release each record's outbox."""
        owner: dict[str, DeploymentRecord] = {}
        details: list[OutboundDetail] = []
        for record in records:
            for pending in record.pending_events:
                detail = self.built.get(pending) or load_pending(pending)
                owner[detail.event_id] = record
                details.append(detail)
        refused = set().union(
            *await asyncio.gather(
                *(self._publish(batch) for batch in batches(details, MAX_ENTRIES_PER_PUT))
            )
        )
        failed = {owner[event_id].deployment_id for event_id in refused}
        done = [r for r in records if r.deployment_id not in failed]
        outcomes = await asyncio.gather(
            *(
                self.run(self.deployments.release_outbox, r)
                for r in records
                if r.deployment_id in failed
            ),
            *(self._clear(group) for group in batches(done, MAX_TRANSACTION_ITEMS)),
            return_exceptions=True,
        )
        for outcome in outcomes:
            if isinstance(outcome, Exception):  # its lease lapses; announced again, same ids
                logger.error("an outbox write failed", exc_info=outcome)
            elif isinstance(outcome, BaseException):
                raise outcome
        return Announced(done, len(details) - len(refused), len(refused))

    async def _clear(self, records: list[DeploymentRecord]) -> None:
        """Clear several outboxes in one transaction; if refused, each on its own (a record
        changed since is announced by its newer change, with the same event ids)."""
        if len(records) > 1:
            try:
                if await self.run(self.deployments.clear_outboxes, records):
                    return
            except Exception:
                logger.warning("a grouped outbox clear failed; clearing each", exc_info=True)
        await asyncio.gather(*(self.run(self.deployments.clear_outbox, r) for r in records))

    async def _publish(self, batch: list[OutboundDetail]) -> set[str]:
        """Publish one batch; return the ids of the events still refused after retries."""
        try:
            await self.run(self.publisher.publish, batch)
        except PublishError as exc:
            logger.warning("events not published", extra={"event_ids": exc.failed_event_ids})
            return set(exc.failed_event_ids)
        except Exception:
            logger.exception("publishing failed", extra={"events": len(batch)})
            return {d.event_id for d in batch}
        return set()


def batches[T](items: Iterable[T], size: int) -> list[list[T]]:
    listed = list(items)
    return [listed[start : start + size] for start in range(0, len(listed), size)]
