"""DynamoDB adapter: deployment records, their history, request and endpoint claims.

One table (see ``template.yaml``):

========================  ===============  ==============================================
pk                        sk               what
========================  ===============  ==============================================
``DEPLOYMENT#<id>``       ``META``         :class:`DeploymentRecord`; on the ``InFlight``
                                           index while ``in_flight`` is set
``DEPLOYMENT#<id>``       ``HISTORY#<n>``  one item per status change, ``n`` = sequence
``REQUEST#<request_id>``  ``REQUEST``      a deploy request's claim and its result
``ENDPOINT#<id>``         ``ACTIVE``       which request/deployment holds the endpoint
``ENDPOINT#<id>``         ``LAST_OUTCOME`` the endpoint's latest finished rollout
``ALERT#<cause>``         ``ALERT``        an alert's claim: sent once per cause
========================  ===============  ==============================================
"""

from __future__ import annotations

import json
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict

from rollout_monitor.cerebras.status import RolloutStatus

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef

IN_FLIGHT_INDEX = "InFlight"
IN_FLIGHT_MARKER = "1"
META = "META"

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


class StoreError(Exception):
    """A write the store could not make."""


class DeploymentRecord(BaseModel):
    """A deployment as the monitor knows it: the API's metadata, the request, its progress."""

    model_config = ConfigDict(frozen=True)

    deployment_id: str
    endpoint_id: str
    org_name: str
    model_arch_id: str
    version_id: int | str
    model: str
    version_alias: str | None = None
    request_id: str
    requested_by: str | None = None
    reason: str | None = None
    submitted_at: float
    status: str
    status_known: bool = True
    sequence: int = 0
    updated_replicas: int | None = None
    total_replicas: int | None = None
    max_unavailable: int | None = None
    error_message: str | None = None
    last_observed_at: float | None = None
    last_progress_at: float
    listed: bool | None = None
    stall_episode: int = 0
    stalled: bool = False
    terminal_at: float | None = None
    api_response: dict[str, Any] = {}
    unknown_status_warned: str | None = None
    # Outbox: events decided but not yet confirmed by PutEvents (JSON of each detail), and
    # until when the poller that wrote them has the sole right to publish them.
    pending_events: list[str] = []
    outbox_lease_until: float = 0.0

    @property
    def terminal(self) -> bool:
        return self.status_known and RolloutStatus(self.status).terminal

    @property
    def in_flight(self) -> bool:
        """On the InFlight index: still rolling out, or with events still to announce."""
        return not self.terminal or bool(self.pending_events)


class HistoryEntry(BaseModel):
    model_config = ConfigDict(frozen=True)

    deployment_id: str
    sequence: int
    previous_status: str | None = None
    status: str
    observed_at: float
    updated_replicas: int | None = None
    total_replicas: int | None = None
    error_message: str | None = None


class RequestState(StrEnum):
    IN_PROGRESS = "in_progress"
    INTERRUPTED = "interrupted"
    SUBMITTED = "submitted"
    REJECTED = "rejected"


class RequestClaim(BaseModel):
    model_config = ConfigDict(frozen=True)

    request_id: str
    state: RequestState
    claimed_at: float
    lease_until: float
    first_claimed_at: float | None = None
    taken_over: bool = False  # an earlier delivery held it and may have called the API
    deployment_id: str | None = None
    event: str | None = None  # the outbound detail decided for this request (JSON)
    announced: bool = False

    @property
    def finished(self) -> bool:
        return self.state in {RequestState.SUBMITTED, RequestState.REJECTED}


class EndpointHolder(BaseModel):
    model_config = ConfigDict(frozen=True)

    endpoint_id: str
    request_id: str
    deployment_id: str | None = None
    claimed_at: float


def to_item(document: dict[str, Any]) -> dict[str, Any]:
    plain = json.loads(json.dumps(document), parse_float=Decimal)
    return {k: _serializer.serialize(v) for k, v in plain.items() if v is not None}


def from_item(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _plain(_deserializer.deserialize(v)) for k, v in item.items()}


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | set):
        return [_plain(v) for v in value]
    return value


def _deployment_key(deployment_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"DEPLOYMENT#{deployment_id}"}, "sk": {"S": META}}


def _request_key(request_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"REQUEST#{request_id}"}, "sk": {"S": "REQUEST"}}


def _endpoint_key(endpoint_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"ENDPOINT#{endpoint_id}"}, "sk": {"S": "ACTIVE"}}


def _alert_key(key: str) -> dict[str, Any]:
    return {"pk": {"S": f"ALERT#{key}"}, "sk": {"S": "ALERT"}}


def _outcome_key(endpoint_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"ENDPOINT#{endpoint_id}"}, "sk": {"S": "LAST_OUTCOME"}}


def _old_item(exc: ClientError) -> dict[str, Any] | None:
    """The item a failed condition was checked against, when DynamoDB returned it."""
    item = exc.response.get("Item")
    return item if isinstance(item, dict) else None


def _failed_condition(exc: ClientError) -> bool:
    code = exc.response.get("Error", {}).get("Code", "")
    return code in {"ConditionalCheckFailedException", "TransactionCanceledException"}


class DeploymentStore:
    def __init__(
        self, table_name: str, retention_seconds: int, client: DynamoDBClient | None = None
    ) -> None:
        self.table_name = table_name
        self.retention_seconds = retention_seconds
        self._client = client or boto3.client("dynamodb")

    # -- deployments ----------------------------------------------------------------------------

    def get_deployment(self, deployment_id: str) -> DeploymentRecord | None:
        item = self._client.get_item(
            TableName=self.table_name, Key=_deployment_key(deployment_id), ConsistentRead=True
        ).get("Item")
        return None if item is None else DeploymentRecord.model_validate(from_item(item))

    def history(self, deployment_id: str) -> list[HistoryEntry]:
        pages = self._client.get_paginator("query").paginate(
            TableName=self.table_name,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :history)",
            ExpressionAttributeValues={
                ":pk": {"S": f"DEPLOYMENT#{deployment_id}"},
                ":history": {"S": "HISTORY#"},
            },
            ConsistentRead=True,
        )
        return [
            HistoryEntry.model_validate(from_item(item))
            for page in pages
            for item in page.get("Items", [])
        ]

    def in_flight(self) -> list[DeploymentRecord]:
        """Every deployment in flight: one query of the sparse index (more pages if large)."""
        pages = self._client.get_paginator("query").paginate(
            TableName=self.table_name,
            IndexName=IN_FLIGHT_INDEX,
            KeyConditionExpression="in_flight = :yes",
            ExpressionAttributeValues={":yes": {"S": IN_FLIGHT_MARKER}},
        )
        return [
            DeploymentRecord.model_validate(from_item(item))
            for page in pages
            for item in page.get("Items", [])
        ]

    def deployment_item(self, record: DeploymentRecord, *, in_flight: bool) -> dict[str, Any]:
        document = record.model_dump(mode="json")
        document |= {"pk": f"DEPLOYMENT#{record.deployment_id}", "sk": META}
        if in_flight:
            document["in_flight"] = IN_FLIGHT_MARKER
        elif record.terminal_at is not None:
            document["expires_at"] = int(record.terminal_at + self.retention_seconds)
        return to_item(document)

    def history_item(self, entry: HistoryEntry, *, terminal: bool) -> dict[str, Any]:
        document = entry.model_dump(mode="json")
        document |= {
            "pk": f"DEPLOYMENT#{entry.deployment_id}",
            "sk": f"HISTORY#{entry.sequence:06d}",
        }
        if terminal:
            document["expires_at"] = int(entry.observed_at + self.retention_seconds)
        return to_item(document)

    # -- deploy requests ------------------------------------------------------------------------

    def claim_request(
        self, request_id: str, endpoint_id: str, model: str, now: float, lease_seconds: float
    ) -> tuple[bool, RequestClaim]:
        """Claim ``request_id`` for this invocation.

        Returns ``(True, claim)`` when this invocation now owns it: a new request, or one whose
        previous owner was interrupted or let its lease run out (the caller must reconcile).
        Returns ``(False, existing)`` when another owns it or it is already finished.
        """
        claim = RequestClaim(
            request_id=request_id,
            state=RequestState.IN_PROGRESS,
            claimed_at=now,
            lease_until=now + lease_seconds,
        )
        document = claim.model_dump(mode="json", exclude={"taken_over", "first_claimed_at"}) | {
            "endpoint_id": endpoint_id,
            "model": model,
            "expires_at": int(now + self.retention_seconds),
        }
        item = to_item(document) | _request_key(request_id)
        try:
            answer = self._client.put_item(
                TableName=self.table_name,
                Item=item,
                ReturnValues="ALL_OLD",
                ConditionExpression=(
                    "attribute_not_exists(pk) OR #state = :interrupted "
                    "OR (#state = :in_progress AND lease_until < :now)"
                ),
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues={
                    ":interrupted": {"S": RequestState.INTERRUPTED.value},
                    ":in_progress": {"S": RequestState.IN_PROGRESS.value},
                    ":now": {"N": str(now)},
                },
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if not _failed_condition(exc):
                raise
            existing = _old_item(exc) or self._get(_request_key(request_id))
            if existing is None:  # cannot be: the condition failed on an existing item
                raise StoreError(f"request {request_id} could not be claimed") from exc
            return False, RequestClaim.model_validate(from_item(existing))
        previous = answer.get("Attributes")
        if previous is None:
            return True, claim.model_copy(update={"first_claimed_at": now})
        earlier = RequestClaim.model_validate(from_item(previous))
        first = earlier.first_claimed_at or earlier.claimed_at
        self._client.update_item(
            TableName=self.table_name,
            Key=_request_key(request_id),
            UpdateExpression="SET first_claimed_at = :first",
            ExpressionAttributeValues={":first": {"N": str(first)}},
        )
        return True, claim.model_copy(update={"first_claimed_at": first, "taken_over": True})

    def get_request(self, request_id: str) -> RequestClaim | None:
        item = self._get(_request_key(request_id))
        return None if item is None else RequestClaim.model_validate(from_item(item))

    def interrupt_request(self, request_id: str, claimed_at: float) -> None:
        """Hand the request to the next delivery at once (best effort after a failure)."""
        try:
            self._client.update_item(
                TableName=self.table_name,
                Key=_request_key(request_id),
                UpdateExpression="SET #state = :interrupted",
                ConditionExpression="#state = :in_progress AND claimed_at = :claimed_at",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues={
                    ":interrupted": {"S": RequestState.INTERRUPTED.value},
                    ":in_progress": {"S": RequestState.IN_PROGRESS.value},
                    ":claimed_at": {"N": str(claimed_at)},
                },
            )
        except ClientError as exc:
            if not _failed_condition(exc):
                raise

    def finish_rejected(self, request_id: str, event_json: str, now: float) -> None:
        document = {
            "request_id": request_id,
            "state": RequestState.REJECTED.value,
            "claimed_at": now,
            "lease_until": now,
            "event": event_json,
            "announced": False,
            "expires_at": int(now + self.retention_seconds),
        }
        self._client.put_item(
            TableName=self.table_name, Item=to_item(document) | _request_key(request_id)
        )

    def mark_announced(self, request_id: str) -> None:
        self._client.update_item(
            TableName=self.table_name,
            Key=_request_key(request_id),
            UpdateExpression="SET announced = :yes",
            ExpressionAttributeValues={":yes": {"BOOL": True}},
        )

    # -- endpoints ------------------------------------------------------------------------------

    def claim_endpoint(
        self, endpoint_id: str, request_id: str, now: float, *, force: bool, stale_after: float
    ) -> EndpointHolder | None:
        """Hold the endpoint for this request; return the current holder if another has it.

        A holder whose deployment never got recorded goes stale after ``stale_after`` seconds.
        """
        holder = EndpointHolder(endpoint_id=endpoint_id, request_id=request_id, claimed_at=now)
        item = to_item(holder.model_dump(mode="json")) | _endpoint_key(endpoint_id)
        condition: dict[str, Any] = {}
        if not force:
            condition = {
                "ConditionExpression": (
                    "attribute_not_exists(pk) OR request_id = :rid "
                    "OR (attribute_not_exists(deployment_id) AND claimed_at < :stale)"
                ),
                "ExpressionAttributeValues": {
                    ":rid": {"S": request_id},
                    ":stale": {"N": str(now - stale_after)},
                },
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        try:
            self._client.put_item(TableName=self.table_name, Item=item, **condition)
        except ClientError as exc:
            if not _failed_condition(exc):
                raise
            existing = _old_item(exc) or self._get(_endpoint_key(endpoint_id))
            if existing is None:  # released in between: try once more
                return self.claim_endpoint(
                    endpoint_id, request_id, now, force=force, stale_after=stale_after
                )
            return EndpointHolder.model_validate(from_item(existing))
        return None

    def release_endpoint(self, endpoint_id: str, request_id: str) -> None:
        try:
            self._client.delete_item(
                TableName=self.table_name,
                Key=_endpoint_key(endpoint_id),
                ConditionExpression="request_id = :rid AND attribute_not_exists(deployment_id)",
                ExpressionAttributeValues={":rid": {"S": request_id}},
            )
        except ClientError as exc:
            if not _failed_condition(exc):
                raise

    # -- the submission, atomically ---------------------------------------------------------

    def record_submission(
        self, record: DeploymentRecord, event_json: str, *, in_flight: bool
    ) -> None:
        """Record the deployment, its first history entry, the request's result and the
        endpoint's holder in one transaction."""
        first = HistoryEntry(
            deployment_id=record.deployment_id,
            sequence=0,
            previous_status=None,
            status=record.status,
            observed_at=record.submitted_at,
            updated_replicas=record.updated_replicas,
            total_replicas=record.total_replicas,
            error_message=record.error_message,
        )
        items: list[TransactWriteItemTypeDef] = [
            {
                "Put": {
                    "TableName": self.table_name,
                    "Item": self.deployment_item(record, in_flight=in_flight),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
            {
                "Put": {
                    "TableName": self.table_name,
                    "Item": self.history_item(first, terminal=not in_flight),
                }
            },
            {
                "Update": {
                    "TableName": self.table_name,
                    "Key": _request_key(record.request_id),
                    "UpdateExpression": (
                        "SET #state = :submitted, deployment_id = :did, event = :event, "
                        "announced = :no"
                    ),
                    "ExpressionAttributeNames": {"#state": "state"},
                    "ExpressionAttributeValues": {
                        ":submitted": {"S": RequestState.SUBMITTED.value},
                        ":did": {"S": record.deployment_id},
                        ":event": {"S": event_json},
                        ":no": {"BOOL": False},
                    },
                }
            },
        ]
        if in_flight:
            items.append(
                {
                    "Update": {
                        "TableName": self.table_name,
                        "Key": _endpoint_key(record.endpoint_id),
                        "UpdateExpression": "SET deployment_id = :did, request_id = :rid",
                        "ExpressionAttributeValues": {
                            ":did": {"S": record.deployment_id},
                            ":rid": {"S": record.request_id},
                        },
                    }
                }
            )
        else:
            items.append(
                {
                    "Delete": {
                        "TableName": self.table_name,
                        "Key": _endpoint_key(record.endpoint_id),
                    }
                }
            )
        try:
            self._client.transact_write_items(TransactItems=items)
        except ClientError as exc:
            if _failed_condition(exc):
                raise StoreError(f"deployment {record.deployment_id} is already recorded") from exc
            raise

    # -- alerts: one per cause ---------------------------------------------------------------

    def claim_alert(self, key: str, now: float, lease_seconds: float) -> str:
        """Claim the right to send the alert ``key``: ``"claimed"``, ``"sent"`` or ``"busy"``.

        A claim whose holder crashed before sending lapses after ``lease_seconds``.
        """
        item = to_item(
            {
                "state": "sending",
                "lease_until": now + lease_seconds,
                "expires_at": int(now + self.retention_seconds),
            }
        ) | _alert_key(key)
        try:
            self._client.put_item(
                TableName=self.table_name,
                Item=item,
                ConditionExpression=(
                    "attribute_not_exists(pk) OR (#state = :sending AND lease_until < :now)"
                ),
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues={":sending": {"S": "sending"}, ":now": {"N": str(now)}},
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if not _failed_condition(exc):
                raise
            existing = _old_item(exc) or self._get(_alert_key(key)) or {}
            return "sent" if from_item(existing).get("state") == "sent" else "busy"
        return "claimed"

    def alert_sent(self, key: str, message_id: str) -> None:
        self._client.update_item(
            TableName=self.table_name,
            Key=_alert_key(key),
            UpdateExpression="SET #state = :sent, message_id = :mid",
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues={":sent": {"S": "sent"}, ":mid": {"S": message_id}},
        )

    def release_alert(self, key: str) -> None:
        """Forget a claim whose alert could not be sent, so a retry sends it."""
        self._client.delete_item(
            TableName=self.table_name,
            Key=_alert_key(key),
            ConditionExpression="#state = :sending",
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues={":sending": {"S": "sending"}},
        )

    def last_outcome(self, endpoint_id: str) -> dict[str, Any] | None:
        item = self._get(_outcome_key(endpoint_id))
        return None if item is None else from_item(item)

    def set_last_outcome(
        self, endpoint_id: str, outcome: str, deployment_id: str, observed_at: float
    ) -> None:
        """Keep the endpoint's latest finished rollout; an older one never overwrites it."""
        try:
            self._client.put_item(
                TableName=self.table_name,
                Item=to_item(
                    {"outcome": outcome, "deployment_id": deployment_id, "observed_at": observed_at}
                )
                | _outcome_key(endpoint_id),
                ConditionExpression="attribute_not_exists(pk) OR observed_at <= :at",
                ExpressionAttributeValues={":at": {"N": str(observed_at)}},
            )
        except ClientError as exc:
            if not _failed_condition(exc):
                raise

    # -- the poller's writes: each conditional on the state it read ---------------------------

    @staticmethod
    def _unchanged_since(before: DeploymentRecord) -> dict[str, Any]:
        return {
            "ConditionExpression": "#status = :status AND #seq = :seq AND stall_episode = :episode",
            "ExpressionAttributeNames": {"#status": "status", "#seq": "sequence"},
            "ExpressionAttributeValues": {
                ":status": {"S": before.status},
                ":seq": {"N": str(before.sequence)},
                ":episode": {"N": str(before.stall_episode)},
            },
        }

    def save_observation(
        self, before: DeploymentRecord, after: DeploymentRecord, entry: HistoryEntry | None
    ) -> bool:
        """Write ``after`` (and its history entry) if the record is still as ``before`` was.

        False means another poller recorded this change first: nothing was written.
        """
        put: TransactWriteItemTypeDef = {
            "Put": {
                "TableName": self.table_name,
                "Item": self.deployment_item(after, in_flight=after.in_flight),
                **self._unchanged_since(before),  # type: ignore[typeddict-item]
            }
        }
        items = [put]
        if entry is not None:
            items.append(
                {
                    "Put": {
                        "TableName": self.table_name,
                        "Item": self.history_item(entry, terminal=after.terminal),
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                }
            )
        try:
            self._client.transact_write_items(TransactItems=items)
        except ClientError as exc:
            if _failed_condition(exc):
                return False
            raise
        return True

    def take_outbox(self, record: DeploymentRecord, now: float, lease_seconds: float) -> bool:
        """Take the right to publish a record's pending events whose writer's lease ran out."""
        try:
            self._client.update_item(
                TableName=self.table_name,
                Key=_deployment_key(record.deployment_id),
                UpdateExpression="SET outbox_lease_until = :until",
                ConditionExpression="outbox_lease_until = :old AND #seq = :seq",
                ExpressionAttributeNames={"#seq": "sequence"},
                ExpressionAttributeValues={
                    ":until": {"N": str(now + lease_seconds)},
                    ":old": {"N": str(record.outbox_lease_until)},
                    ":seq": {"N": str(record.sequence)},
                },
            )
        except ClientError as exc:
            if _failed_condition(exc):
                return False
            raise
        return True

    def clear_outbox(self, record: DeploymentRecord) -> None:
        """Forget the announced events; a finished deployment then leaves the InFlight index."""
        remove = "REMOVE pending_events" + (", in_flight" if record.terminal else "")
        try:
            self._client.update_item(
                TableName=self.table_name,
                Key=_deployment_key(record.deployment_id),
                UpdateExpression=f"{remove} SET outbox_lease_until = :zero",
                ConditionExpression="#seq = :seq AND stall_episode = :episode",
                ExpressionAttributeNames={"#seq": "sequence"},
                ExpressionAttributeValues={
                    ":zero": {"N": "0"},
                    ":seq": {"N": str(record.sequence)},
                    ":episode": {"N": str(record.stall_episode)},
                },
            )
        except ClientError as exc:
            # A newer change carries these events too, and will announce them (same ids).
            if not _failed_condition(exc):
                raise

    def release_outbox(self, record: DeploymentRecord) -> None:
        """Give up the publish right at once (PutEvents failed), so the next cycle retries."""
        try:
            self._client.update_item(
                TableName=self.table_name,
                Key=_deployment_key(record.deployment_id),
                UpdateExpression="SET outbox_lease_until = :zero",
                ConditionExpression="#seq = :seq",
                ExpressionAttributeNames={"#seq": "sequence"},
                ExpressionAttributeValues={
                    ":zero": {"N": "0"},
                    ":seq": {"N": str(record.sequence)},
                },
            )
        except ClientError as exc:
            if not _failed_condition(exc):
                raise

    def free_endpoint(self, endpoint_id: str, deployment_id: str) -> None:
        """Release the endpoint if this (finished) deployment still holds it."""
        try:
            self._client.delete_item(
                TableName=self.table_name,
                Key=_endpoint_key(endpoint_id),
                ConditionExpression="deployment_id = :did",
                ExpressionAttributeValues={":did": {"S": deployment_id}},
            )
        except ClientError as exc:
            if not _failed_condition(exc):
                raise

    def _get(self, key: dict[str, Any]) -> dict[str, Any] | None:
        return self._client.get_item(TableName=self.table_name, Key=key, ConsistentRead=True).get(
            "Item"
        )
