"""What the API shows of a subscription's messages and attempts, and resending a message."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rastro_notification.adapters.repository import iso, wake_dispatcher

__all__ = [
    "MessageRow",
    "get_message",
    "list_attempts",
    "list_messages",
    "recover_messages",
    "resend_message",
]

_MESSAGE_COLUMNS = (
    "id, event_id, event_type, status, attempts, next_attempt_at, leased_until, last_attempt_at, "
    "last_error, delivered_at, created_at, body"
)


@dataclass(frozen=True)
class MessageRow:
    row: Mapping[str, Any]

    @property
    def in_flight(self) -> bool:
        leased: datetime | None = self.row["leased_until"]
        return self.row["status"] == "pending" and leased is not None and leased > self.row["now"]

    def public(self) -> dict[str, Any]:
        r = self.row
        return {
            "id": r["id"],
            "event_id": r["event_id"],
            "event_type": r["event_type"],
            "status": r["status"],
            "attempts": r["attempts"],
            "next_attempt_at": iso(r["next_attempt_at"]) if r["status"] == "pending" else None,
            "last_attempt_at": iso(r["last_attempt_at"]),
            "last_error": r["last_error"],
            "delivered_at": iso(r["delivered_at"]),
            "created_at": iso(r["created_at"]),
            "payload": json.loads(r["body"]),
        }


async def list_messages(
    conn: Any, sub_id: str, status: str | None, before: str | None, limit: int
) -> list[MessageRow]:
    """Newest first."""
    rows = await conn.fetch(
        f"SELECT {_MESSAGE_COLUMNS}, now() AS now FROM messages WHERE subscription_id = $1"
        " AND ($2::text IS NULL OR status = $2) AND ($3::text IS NULL OR id < $3) ORDER BY id DESC LIMIT $4",
        sub_id,
        status,
        before,
        limit,
    )
    return [MessageRow(r) for r in rows]


async def get_message(conn: Any, sub_id: str, message_id: str) -> MessageRow | None:
    row = await conn.fetchrow(
        f"SELECT {_MESSAGE_COLUMNS}, now() AS now FROM messages WHERE id = $1 AND subscription_id = $2",
        message_id,
        sub_id,
    )
    return MessageRow(row) if row else None


async def list_attempts(
    conn: Any, sub_id: str, message_id: str | None, before: int | None, limit: int
) -> list[dict[str, Any]]:
    """Newest first."""
    rows = await conn.fetch(
        "SELECT id, message_id, attempt_number, attempted_at, status_code, latency_ms, response_excerpt,"
        " error, error_detail, outcome FROM attempts WHERE subscription_id = $1"
        " AND ($2::text IS NULL OR message_id = $2) AND ($3::bigint IS NULL OR id < $3)"
        " ORDER BY id DESC LIMIT $4",
        sub_id,
        message_id,
        before,
        limit,
    )
    return [
        {**dict(r), "attempted_at": iso(r["attempted_at"]), "latency_ms": round(r["latency_ms"], 3)}
        for r in rows
    ]


async def resend_message(conn: Any, sub_id: str, message_id: str) -> MessageRow | None:
    """Queue a message again now, with a fresh retry schedule. A message being sent right now is left
    alone (the caller reports a conflict): returned with ``in_flight`` true."""
    row = await conn.fetchrow(
        f"SELECT {_MESSAGE_COLUMNS}, now() AS now FROM messages"
        " WHERE id = $1 AND subscription_id = $2 FOR UPDATE",
        message_id,
        sub_id,
    )
    if row is None or MessageRow(row).in_flight:
        return MessageRow(row) if row else None
    row = await conn.fetchrow(
        "UPDATE messages SET status = 'pending', round_attempts = 0, next_attempt_at = now(),"
        " leased_until = NULL, claim_id = NULL, delivered_at = NULL"
        f" WHERE id = $1 RETURNING {_MESSAGE_COLUMNS}, now() AS now",
        message_id,
    )
    await wake_dispatcher(conn)
    return MessageRow(row)


async def recover_messages(conn: Any, sub_id: str, since: datetime, until: datetime | None) -> int:
    """Queue again, now and with a fresh schedule, every ``failed`` message of the subscription created
    in ``[since, until)``; the count. Their webhook-ids stay the same, so receivers drop what they had."""
    status = await conn.execute(
        "UPDATE messages SET status = 'pending', round_attempts = 0, next_attempt_at = now(),"
        " leased_until = NULL, claim_id = NULL WHERE subscription_id = $1 AND status = 'failed'"
        " AND created_at >= $2 AND ($3::timestamptz IS NULL OR created_at < $3)",
        sub_id,
        since,
        until,
    )
    count = int(status.split()[-1])
    if count:
        await wake_dispatcher(conn)
    return count
