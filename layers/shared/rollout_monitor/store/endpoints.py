"""Endpoint holds (``ENDPOINT#<id> / ACTIVE``) and last outcomes (``... / LAST_OUTCOME``);
the ByEndpoint index: an endpoint's deployments, every endpoint's last outcome."""

from __future__ import annotations

from typing import Any

from rollout_monitor.records import EXTERNAL_REQUEST, EndpointHolder, LastOutcome
from rollout_monitor.store.items import (
    ALL_OUTCOMES,
    BY_ENDPOINT_INDEX,
    LostRace,
    Table,
    endpoint_key,
    from_item,
    number,
    outcome_key,
    text,
    to_item,
)


class DynamoEndpoints:
    """The ``EndpointHolds``, ``EndpointRelease`` and ``EndpointOutcomes`` of a table
    (:mod:`rollout_monitor.ports`)."""

    def __init__(self, table: Table) -> None:
        self._table = table

    def claim(
        self, endpoint_id: str, request_id: str, now: float, *, force: bool, stale_after: float
    ) -> EndpointHolder | None:
        """Hold the endpoint for this request; return the current holder if another has it.

        A holder whose deployment never got recorded goes stale after ``stale_after`` seconds.
        """
        holder = EndpointHolder(endpoint_id=endpoint_id, request_id=request_id, claimed_at=now)
        item = to_item(holder.model_dump(mode="json")) | endpoint_key(endpoint_id)
        condition: dict[str, Any] = {}
        if not force:
            condition = {
                "ConditionExpression": (
                    "attribute_not_exists(pk) OR request_id = :rid "
                    "OR (attribute_not_exists(deployment_id) AND claimed_at < :stale)"
                ),
                "ExpressionAttributeValues": {
                    ":rid": text(request_id),
                    ":stale": number(now - stale_after),
                },
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        try:
            self._table.conditional(
                lambda: self._table.client.put_item(
                    TableName=self._table.name, Item=item, **condition
                )
            )
        except LostRace as lost:
            existing = lost.item or self._table.get(endpoint_key(endpoint_id))
            if existing is None:  # released in between: try once more
                return self.claim(
                    endpoint_id, request_id, now, force=force, stale_after=stale_after
                )
            return EndpointHolder.model_validate(from_item(existing))
        return None

    def hold_external(self, endpoint_id: str, deployment_id: str, now: float) -> bool:
        """Hold a free endpoint for a rollout started outside the monitor (False if held)."""
        holder = EndpointHolder(
            endpoint_id=endpoint_id,
            request_id=f"{EXTERNAL_REQUEST}{deployment_id}",
            deployment_id=deployment_id,
            claimed_at=now,
        )
        item = to_item(holder.model_dump(mode="json")) | endpoint_key(endpoint_id)
        return self._table.attempt(
            lambda: self._table.client.put_item(
                TableName=self._table.name,
                Item=item,
                ConditionExpression="attribute_not_exists(pk)",
            )
        )

    def release(self, endpoint_id: str, request_id: str) -> None:
        """Let go of a hold this request took but never used (no deployment recorded)."""
        self._table.attempt(
            lambda: self._table.client.delete_item(
                TableName=self._table.name,
                Key=endpoint_key(endpoint_id),
                ConditionExpression="request_id = :rid AND attribute_not_exists(deployment_id)",
                ExpressionAttributeValues={":rid": text(request_id)},
            )
        )

    def free(self, endpoint_id: str, deployment_id: str) -> None:
        """Release the endpoint if this (finished) deployment still holds it."""
        self._table.attempt(
            lambda: self._table.client.delete_item(
                TableName=self._table.name,
                Key=endpoint_key(endpoint_id),
                ConditionExpression="deployment_id = :did",
                ExpressionAttributeValues={":did": text(deployment_id)},
            )
        )

    def last_outcome(self, endpoint_id: str) -> LastOutcome | None:
        item = self._table.get(outcome_key(endpoint_id))
        return None if item is None else LastOutcome.model_validate(from_item(item))

    def set_last_outcome(self, endpoint_id: str, outcome: LastOutcome) -> None:
        """Keep the endpoint's latest finished rollout; an older one never overwrites it."""
        self._table.attempt(
            lambda: self._table.client.put_item(
                TableName=self._table.name,
                Item=to_item(
                    outcome.model_dump(mode="json")
                    | {
                        "endpoint_id": endpoint_id,
                        "endpoint_key": ALL_OUTCOMES,
                        "endpoint_at": outcome.observed_at,
                    }
                )
                | outcome_key(endpoint_id),
                ConditionExpression="attribute_not_exists(pk) OR observed_at <= :at",
                ExpressionAttributeValues={":at": number(outcome.observed_at)},
            )
        )

    def last_outcomes(self) -> dict[str, LastOutcome]:
        """Every endpoint's last outcome, by endpoint id (the ByEndpoint index, one query)."""
        pages = self._table.client.get_paginator("query").paginate(
            TableName=self._table.name,
            IndexName=BY_ENDPOINT_INDEX,
            KeyConditionExpression="endpoint_key = :all",
            ExpressionAttributeValues={":all": text(ALL_OUTCOMES)},
            ScanIndexForward=False,
        )
        return {
            item["pk"]["S"].removeprefix("ENDPOINT#"): LastOutcome.model_validate(from_item(item))
            for page in pages
            for item in page.get("Items", [])
        }

    def deployments(self, endpoint_id: str, limit: int) -> list[str]:
        """The ids of the endpoint's latest ``limit`` deployments, newest first."""
        answer = self._table.client.query(
            TableName=self._table.name,
            IndexName=BY_ENDPOINT_INDEX,
            KeyConditionExpression="endpoint_key = :endpoint",
            ExpressionAttributeValues={":endpoint": text(endpoint_id)},
            ScanIndexForward=False,
            Limit=limit,
        )
        return [item["pk"]["S"].removeprefix("DEPLOYMENT#") for item in answer.get("Items", [])]
