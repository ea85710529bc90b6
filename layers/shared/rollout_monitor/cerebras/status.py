"""The seven rollout statuses, and how any status string the API sends maps onto them."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class RolloutStatus(StrEnum):
    NOT_STARTED = "not_started"
    IN_PROGRESS = "in_progress"
    ROLLING_BACK = "rolling_back"
    ROLLED_BACK = "rolled_back"
    DONE = "done"
    ERROR = "error"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset(
    {RolloutStatus.DONE, RolloutStatus.ROLLED_BACK, RolloutStatus.ERROR, RolloutStatus.CANCELLED}
)

_SYNONYMS: dict[str, RolloutStatus] = {
    "complete": RolloutStatus.DONE,
    "completed": RolloutStatus.DONE,
    "succeeded": RolloutStatus.DONE,
    "failed": RolloutStatus.ERROR,
}


@dataclass(frozen=True, slots=True)
class ObservedStatus:
    """A status as reported: one of the seven, or an unknown value kept verbatim."""

    value: str
    known: bool

    @property
    def terminal(self) -> bool:
        return self.known and RolloutStatus(self.value).terminal


def normalise_status(raw: str) -> ObservedStatus:
    """Map a status string onto the seven values; an unknown one is kept as sent.

    An unknown value is treated as in flight by its callers, so a new server-side state is
    seen (and warned about) rather than crashed on.
    """
    folded = raw.strip().lower()
    if folded in RolloutStatus:
        return ObservedStatus(RolloutStatus(folded).value, known=True)
    if folded in _SYNONYMS:
        return ObservedStatus(_SYNONYMS[folded].value, known=True)
    return ObservedStatus(raw, known=False)
