"""Whether Cerebras answers: an episode of failed status reads is announced once, when it has
lasted ``unreachable_after_seconds``, and its end once (``Cerebras Unreachable``, then
``Cerebras Reachable``).

Each poller invocation that read anything counts its reads: all failed (a 404 is an answer)
or not. The episode lives in one item (:class:`~rollout_monitor.records.Reachability`),
written only when it starts, is announced, learns a new kind of error or ends, each write
conditional on the revision read, so two pollers never announce one change twice. Its
events go through the item's outbox, as every announcement does.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field

from rollout_monitor.events import (
    CerebrasReachable,
    CerebrasUnreachable,
    dump_pending,
    load_pending,
)
from rollout_monitor.ports import Publisher, ReachabilityStore
from rollout_monitor.reads import CycleReport
from rollout_monitor.records import OUTBOX_LEASE_SECONDS, Reachability

logger = logging.getLogger(__name__)

ANSWERED = frozenset({"CerebrasNotFoundError"})  # a 404 is Cerebras answering
MAX_ERROR_KINDS = 10
MAX_ANNOUNCED_EPISODES = 20  # kept on the item for the alert function's check
TRUST_HEALTHY_SECONDS = 60.0  # a warm container re-reads a healthy state at most this often


def observe(
    state: Reachability, *, reachable: bool, errors: Collection[str], now: float, deadline: float
) -> Reachability:
    """The episode after one invocation's reads (pure); ``state`` itself if nothing changed."""
    if reachable:
        if state.failing_since is None:
            return state
        ended = state.model_copy(
            update={"episode": state.episode + 1, "failing_since": None, "announced": False}
        )
        if not state.announced:  # too short to have been announced: ends silently
            return ended.model_copy(update={"error_kinds": []})
        notice = CerebrasReachable.of(state, deadline=deadline, observed_at=now)
        return _announce(ended.model_copy(update={"error_kinds": []}), notice, now)
    kinds = sorted(set(state.error_kinds) | set(errors))[:MAX_ERROR_KINDS]
    if state.failing_since is None:
        return state.model_copy(update={"failing_since": now, "error_kinds": kinds})
    after = state if kinds == state.error_kinds else state.model_copy(update={"error_kinds": kinds})
    if state.announced or now - state.failing_since < deadline:
        return after
    announced = [*state.announced_episodes, state.episode][-MAX_ANNOUNCED_EPISODES:]
    after = after.model_copy(update={"announced": True, "announced_episodes": announced})
    return _announce(after, CerebrasUnreachable.of(after, deadline=deadline, observed_at=now), now)


def _announce(
    state: Reachability, event: CerebrasUnreachable | CerebrasReachable, now: float
) -> Reachability:
    return state.model_copy(
        update={
            "pending_events": [*state.pending_events, dump_pending(event)],
            "outbox_lease_until": now + OUTBOX_LEASE_SECONDS,
        }
    )


@dataclass
class ReachabilityWatch:
    """Turns each poller invocation's reads into the episode's writes and announcements."""

    store: ReachabilityStore
    publisher: Publisher
    unreachable_after_seconds: float
    now: Callable[[], float] = time.time
    # The state this container last read or wrote, and when: while Cerebras answers and it
    # was healthy less than TRUST_HEALTHY_SECONDS ago, the item is not read again.
    _healthy_at: float | None = field(default=None, init=False)
    # This container left events unpublished (or saw some): a run that read nothing still
    # flushes them, as the run that sees Cerebras again is often the last with a read (its
    # rollout finished meanwhile). A fresh container assumes none, so an idle run costs nothing.
    _outbox_unsure: bool = field(default=False, init=False)

    def observe(self, reports: Sequence[CycleReport]) -> Reachability | None:
        """Count the reads of ``reports``; None when they made none (nothing to learn)."""
        requests = sum(r.status_requests for r in reports)
        now = self.now()
        if not requests:
            if self._outbox_unsure:
                self._flush(self._remember(self.store.get(), now), now)
            return None
        errors = {k: n for r in reports for k, n in r.poll_errors.items() if k not in ANSWERED}
        reachable = sum(errors.values()) < requests
        trusted = self._healthy_at is not None and now - self._healthy_at < TRUST_HEALTHY_SECONDS
        if reachable and trusted:
            return Reachability()
        state = self._remember(self.store.get(), now)
        after = observe(
            state,
            reachable=reachable,
            errors=[k for k, n in errors.items() if n],
            now=now,
            deadline=self.unreachable_after_seconds,
        )
        if after != state:
            after = after.model_copy(update={"revision": state.revision + 1})
            if not self.store.save(state, after):
                self._healthy_at, self._outbox_unsure = None, True
                return None  # another poller wrote it first: it announces what it decided
            self._remember(after, now)
            if after.pending_events:
                self._publish(after)
            return after
        self._flush(state, now)
        return state

    def _flush(self, state: Reachability, now: float) -> None:
        """Publish what a writer that could not publish left, once its lease has lapsed."""
        if state.outbox_free(now) and self.store.take_outbox(state, now, OUTBOX_LEASE_SECONDS):
            self._publish(state)

    def _remember(self, state: Reachability, now: float) -> Reachability:
        healthy = state.failing_since is None and not state.pending_events
        self._healthy_at = now if healthy else None
        self._outbox_unsure = bool(state.pending_events)
        return state

    def _publish(self, state: Reachability) -> None:
        try:
            self.publisher.publish([load_pending(p) for p in state.pending_events])
        except Exception:  # the outcome is unknown: the outbox keeps them for the next try
            logger.warning("announcing Cerebras's reachability failed", exc_info=True)
            self._outbox_unsure = True
            return
        self._outbox_unsure = not self.store.clear_outbox(state)
