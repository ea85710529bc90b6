"""Alert claims (``ALERT#<cause>``): each alert is sent once per cause."""

from __future__ import annotations

from rollout_monitor.records import AlertClaimState
from rollout_monitor.store.items import LostRace, Table, alert_key, from_item, number, text, to_item

_STATE = {"#state": "state"}
SENDING = "sending"


class DynamoAlertClaims:
    """The :class:`~rollout_monitor.ports.AlertClaims` of one table."""

    def __init__(self, table: Table) -> None:
        self._table = table

    def claim(self, cause: str, now: float, lease_seconds: float) -> AlertClaimState:
        """Claim the right to send the alert for ``cause``.

        A claim whose holder crashed before sending lapses after ``lease_seconds``.
        """
        item = to_item(
            {
                "state": SENDING,
                "lease_until": now + lease_seconds,
                "expires_at": int(now + self._table.retention_seconds),
            }
        ) | alert_key(cause)
        try:
            self._table.conditional(
                lambda: self._table.client.put_item(
                    TableName=self._table.name,
                    Item=item,
                    ConditionExpression=(
                        "attribute_not_exists(pk) OR (#state = :sending AND lease_until < :now)"
                    ),
                    ExpressionAttributeNames=_STATE,
                    ExpressionAttributeValues={":sending": text(SENDING), ":now": number(now)},
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
            )
        except LostRace as lost:
            existing = lost.item or self._table.get(alert_key(cause)) or {}
            sent = from_item(existing).get("state") == AlertClaimState.SENT.value
            return AlertClaimState.SENT if sent else AlertClaimState.BUSY
        return AlertClaimState.CLAIMED

    def sent(self, cause: str, message_id: str) -> None:
        self._table.client.update_item(
            TableName=self._table.name,
            Key=alert_key(cause),
            UpdateExpression="SET #state = :sent, message_id = :mid",
            ExpressionAttributeNames=_STATE,
            ExpressionAttributeValues={
                ":sent": text(AlertClaimState.SENT.value),
                ":mid": text(message_id),
            },
        )

    def release(self, cause: str) -> None:
        """Forget a claim whose alert could not be sent, so a retry sends it."""
        self._table.attempt(
            lambda: self._table.client.delete_item(
                TableName=self._table.name,
                Key=alert_key(cause),
                ConditionExpression="#state = :sending",
                ExpressionAttributeNames=_STATE,
                ExpressionAttributeValues={":sending": text(SENDING)},
            )
        )
