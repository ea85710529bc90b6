"""Deploy requests' claims and results (``REQUEST#<request_id>``)."""

from __future__ import annotations

import json
from typing import Any

from rollout_monitor.records import RequestClaim, RequestContent, RequestState
from rollout_monitor.store.items import (
    Guard,
    LostRace,
    StoreError,
    Table,
    from_item,
    number,
    request_key,
    text,
    to_item,
)

_STATE = {"#state": "state"}


def _finished_as(claim: RequestClaim) -> Guard:
    return Guard("#state = :state", _STATE, {":state": text(claim.state.value)})


class DynamoRequests:
    """The :class:`~rollout_monitor.ports.Requests` of one table."""

    def __init__(self, table: Table) -> None:
        self._table = table

    def claim(
        self, request_id: str, content: RequestContent, now: float, lease_seconds: float
    ) -> tuple[bool, RequestClaim]:
        """Claim ``request_id`` for this invocation.

        Returns ``(True, claim)`` when this invocation now owns it: a new request, or one
        with the same content whose previous owner was interrupted or let its lease run out
        (the caller must reconcile). Returns ``(False, existing)`` when another owns it, it is
        already finished, or it was claimed for different content.
        """
        claim = RequestClaim(
            request_id=request_id,
            state=RequestState.IN_PROGRESS,
            claimed_at=now,
            lease_until=now + lease_seconds,
            fingerprint=content.fingerprint,
            **content.model_dump(),
        )
        fields = claim.model_dump(
            mode="json",
            include={
                "request_id",
                "claimed_at",
                "lease_until",
                "endpoint_id",
                "model",
                "force",
                "fingerprint",
            },
        ) | {"expires_at": int(now + self._table.retention_seconds)}
        values = to_item(fields)
        # One conditional update: a take-over keeps what the earlier delivery wrote (sent_at,
        # known_before, their upload_ twins, first_claimed_at): nothing is lost between writes.
        try:
            answer = self._table.conditional(
                lambda: self._table.client.update_item(
                    TableName=self._table.name,
                    Key=request_key(request_id),
                    UpdateExpression=(
                        "SET #state = :in_progress, "
                        + ", ".join(f"#{name} = :{name}" for name in values)
                        + ", first_claimed_at = if_not_exists(first_claimed_at, :claimed_at)"
                    ),
                    ConditionExpression=(
                        "attribute_not_exists(pk) OR (fingerprint = :fingerprint AND "
                        "(#state = :interrupted OR (#state = :in_progress AND lease_until < :now)))"
                    ),
                    ExpressionAttributeNames=_STATE | {f"#{name}": name for name in values},
                    ExpressionAttributeValues={f":{k}": v for k, v in values.items()}
                    | {
                        ":interrupted": text(RequestState.INTERRUPTED.value),
                        ":in_progress": text(RequestState.IN_PROGRESS.value),
                        ":now": number(now),
                    },
                    ReturnValues="ALL_OLD",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
            )
        except LostRace as lost:
            existing = lost.item or self._table.get(request_key(request_id))
            if existing is None:  # cannot be: the condition failed on an existing item
                raise StoreError(f"request {request_id} could not be claimed") from lost
            return False, RequestClaim.model_validate(from_item(existing))
        previous = answer.get("Attributes")
        if previous is None:
            return True, claim.model_copy(update={"first_claimed_at": now})
        earlier = RequestClaim.model_validate(from_item(previous))
        carried = {
            "first_claimed_at": earlier.first_claimed_at or earlier.claimed_at,
            "sent_at": earlier.sent_at,
            "known_before": earlier.known_before,
            "upload_sent_at": earlier.upload_sent_at,
            "upload_known_before": earlier.upload_known_before,
            "taken_over": True,
        }
        return True, claim.model_copy(update=carried)

    def mark_sent(self, claim: RequestClaim, sent_at: float, known_before: list[str]) -> bool:
        """Before deployModel: note that the API may act from now on. False: this delivery no
        longer holds the request (another took it over), and must not send."""
        return self._held_update(
            claim,
            "SET sent_at = :sent, known_before = :known",
            {":sent": number(sent_at), ":known": {"L": [text(k) for k in known_before]}},
        )

    def mark_upload_sent(
        self, claim: RequestClaim, sent_at: float, known_before: list[str]
    ) -> bool:
        """Before a release's upload: :meth:`mark_sent`, for the upload."""
        return self._held_update(
            claim,
            "SET upload_sent_at = :sent, upload_known_before = :known",
            {":sent": number(sent_at), ":known": {"L": [text(k) for k in known_before]}},
        )

    def unmark_upload_sent(self, claim: RequestClaim) -> None:
        """The upload certainly did not reach Cerebras (a 429 to the end): a later delivery
        may send it."""
        self._held_update(claim, "REMOVE upload_sent_at, upload_known_before", {})

    def _held_update(
        self, claim: RequestClaim, expression: str, values: dict[str, dict[str, Any]]
    ) -> bool:
        """One update of a request this delivery still holds; False if it no longer does."""
        return self._table.attempt(
            lambda: self._table.client.update_item(
                TableName=self._table.name,
                Key=request_key(claim.request_id),
                UpdateExpression=expression,
                ConditionExpression="#state = :in_progress AND claimed_at = :claimed_at",
                ExpressionAttributeNames=_STATE,
                ExpressionAttributeValues=values
                | {
                    ":in_progress": text(RequestState.IN_PROGRESS.value),
                    ":claimed_at": number(claim.claimed_at),
                },
            )
        )

    def resume(self, claim: RequestClaim, now: float, lease_seconds: float) -> RequestClaim | None:
        """Take a waiting request back (its version's wait ended); None if another did."""
        resumed = claim.model_copy(
            update={
                "state": RequestState.IN_PROGRESS,
                "claimed_at": now,
                "lease_until": now + lease_seconds,
            }
        )
        taken = self._table.attempt(
            lambda: self._table.client.update_item(
                TableName=self._table.name,
                Key=request_key(claim.request_id),
                UpdateExpression=(
                    "SET #state = :in_progress, claimed_at = :now, lease_until = :until"
                ),
                ConditionExpression="#state = :waiting",
                ExpressionAttributeNames=_STATE,
                ExpressionAttributeValues={
                    ":in_progress": text(RequestState.IN_PROGRESS.value),
                    ":waiting": text(RequestState.WAITING.value),
                    ":now": number(now),
                    ":until": number(resumed.lease_until),
                },
            )
        )
        return resumed if taken else None

    def get(self, request_id: str) -> RequestClaim | None:
        item = self._table.get(request_key(request_id))
        return None if item is None else RequestClaim.model_validate(from_item(item))

    def interrupt(self, request_id: str, claimed_at: float) -> None:
        """Hand the request to the next delivery at once (best effort after a failure)."""
        self._table.attempt(
            lambda: self._table.client.update_item(
                TableName=self._table.name,
                Key=request_key(request_id),
                UpdateExpression="SET #state = :interrupted",
                ConditionExpression="#state = :in_progress AND claimed_at = :claimed_at",
                ExpressionAttributeNames=_STATE,
                ExpressionAttributeValues={
                    ":interrupted": text(RequestState.INTERRUPTED.value),
                    ":in_progress": text(RequestState.IN_PROGRESS.value),
                    ":claimed_at": number(claimed_at),
                },
            )
        )

    def finish_rejected(self, claim: RequestClaim, pending_event: str, lease_until: float) -> None:
        """The request's result is a rejection, to be announced from its outbox; only the
        delivery that still holds the claim may decide it."""
        rejection = json.loads(pending_event).get("detail", {})  # events.dump_pending
        document = claim.model_dump(
            mode="json",
            include={"request_id", "claimed_at", "lease_until", "endpoint_id", "model", "force"},
            exclude_none=True,
        ) | {
            "fingerprint": claim.fingerprint,
            "state": RequestState.REJECTED.value,
            "rejection_reason": rejection.get("reason"),
            "rejection_message": rejection.get("message"),
            "pending_events": [pending_event],
            "outbox_lease_until": lease_until,
            "expires_at": int(claim.claimed_at + self._table.retention_seconds),
        }
        try:
            self._table.conditional(
                lambda: self._table.client.put_item(
                    TableName=self._table.name,
                    Item=to_item(document) | request_key(claim.request_id),
                    ConditionExpression="#state = :in_progress AND claimed_at = :claimed_at",
                    ExpressionAttributeNames=_STATE,
                    ExpressionAttributeValues={
                        ":in_progress": text(RequestState.IN_PROGRESS.value),
                        ":claimed_at": number(claim.claimed_at),
                    },
                )
            )
        except LostRace as lost:
            raise StoreError(
                f"request {claim.request_id} was taken over: its result is not this one's"
            ) from lost

    def take_outbox(self, claim: RequestClaim, now: float, lease_seconds: float) -> bool:
        return self._table.take_outbox(
            request_key(claim.request_id),
            claim.outbox_lease_until,
            now + lease_seconds,
            _finished_as(claim),
        )

    def clear_outbox(self, claim: RequestClaim) -> None:
        self._table.clear_outbox(request_key(claim.request_id), _finished_as(claim))

    def release_outbox(self, claim: RequestClaim) -> None:
        self._table.release_outbox(request_key(claim.request_id), _finished_as(claim))
