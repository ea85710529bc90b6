"""The events about Cerebras itself: an episode of failed status reads, at its start or end."""

from __future__ import annotations

from typing import ClassVar, Self

from rollout_monitor.events.base import DetailType, OutboundDetail
from rollout_monitor.records import Reachability


class CerebrasEpisode(OutboundDetail):
    """An episode of failed status reads (:class:`Reachability`), at its start or its end."""

    episode: int
    failing_since: float
    failing_for_seconds: float
    unreachable_after_seconds: float
    error_kinds: list[str]
    observed_at: float

    @classmethod
    def id_of(cls, episode: int) -> str:
        """``cerebras:unreachable:<episode>`` or ``cerebras:reachable:<episode>``."""
        return f"cerebras:{cls.detail_type.value.split()[-1].lower()}:{episode}"

    @classmethod
    def of(cls, state: Reachability, *, deadline: float, observed_at: float) -> Self:
        since = state.failing_since if state.failing_since is not None else observed_at
        return cls(
            event_id=cls.id_of(state.episode),
            episode=state.episode,
            failing_since=since,
            failing_for_seconds=round(observed_at - since, 3),
            unreachable_after_seconds=deadline,
            error_kinds=state.error_kinds,
            observed_at=observed_at,
        )


class CerebrasUnreachable(CerebrasEpisode):
    """Every status read has failed for ``unreachable_after_seconds``: once per episode."""

    detail_type: ClassVar[DetailType] = DetailType.CEREBRAS_UNREACHABLE


class CerebrasReachable(CerebrasEpisode):
    """A status read succeeded after an announced episode: its end, once."""

    detail_type: ClassVar[DetailType] = DetailType.CEREBRAS_REACHABLE
