"""The EventBridge envelope fields each handler reads, and only those.

Powertools' ``EventBridgeModel`` requires every field of the envelope (``version``,
``account``, ``time``...), which a sample or a replayed event may lack, and a ``detail`` that is
an object. Each function reads a few fields, so it validates those: ``detail`` is left untyped
here and validated by the domain, which can answer a malformed one (a rejection, say) instead
of failing the invocation. The poller reads nothing from its schedule's envelope.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Envelope(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True)

    detail_type: str = Field(alias="detail-type")
    source: str
    detail: Any


class DeployEnvelope(BaseModel):
    """A ``Deploy Requested`` delivery: ``id`` is the idempotency key of last resort.

    Every field may be missing or wrong here: the deploy function answers any malformed
    delivery with a ``Deployment Rejected`` saying what is wrong, instead of failing.
    """

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    id: str = ""
    detail_type: str = Field(default="", alias="detail-type")
    source: str = ""
    detail: Any = None


class AlertEnvelope(_Envelope):
    """A status change, stall or rejection: ``detail-type`` chooses the alert."""
