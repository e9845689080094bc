"""What the chaos scenarios read back from the services' stores and topics to judge a run.

Plain queries, each on its own connection: the scenarios poll them with deadlines (``wait_until``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from rastro_cli.checker import _wait_accounted
from rastro_events import decode_event
from rastro_events.topics import TRACKING_NORMALIZED

__all__ = [
    "accounted",
    "attempt_kinds",
    "db_now",
    "message_events",
    "message_statuses",
    "messages",
    "normalized_ids",
    "outbox_rows",
]


async def db_now(database_url: str) -> datetime:
    conn = await asyncpg.connect(database_url)
    try:
        now: datetime = await conn.fetchval("SELECT now()")
        return now
    finally:
        await conn.close()


async def accounted(database_url: str, manifest: list[dict[str, Any]]) -> int:
    """Events of the manifest handled (normalization's inbox) or dead-lettered, now: the checker's
    first check, read once."""
    sent = {i for line in manifest for i in line["event_ids"]}
    conn = await asyncpg.connect(database_url)
    try:
        handled, dead = await _wait_accounted(conn, sent, 0, "normalization", "dlq_replay", "normalization")
    finally:
        await conn.close()
    return len(handled) + len(dead)


async def outbox_rows(database_url: str, *schemas: str) -> int:
    """Rows not yet published in the outboxes of these services' schemas."""
    conn = await asyncpg.connect(database_url)
    try:
        return sum([int(await conn.fetchval(f"SELECT count(*) FROM {s}.outbox")) for s in schemas])
    finally:
        await conn.close()


async def messages(database_url: str, subscriptions: list[str]) -> dict[str, tuple[str, str]]:
    """The webhook messages of ``subscriptions``: webhook-id -> (status, the exact body sent)."""
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT id, status, body FROM notification.messages WHERE subscription_id = ANY($1)",
            subscriptions,
        )
    finally:
        await conn.close()
    return {r["id"]: (r["status"], r["body"]) for r in rows}


async def message_statuses(database_url: str, subscriptions: list[str]) -> dict[str, int]:
    """How many messages of ``subscriptions`` are pending, delivered, failed (cheap: for polling)."""
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT status, count(*) AS n FROM notification.messages WHERE subscription_id = ANY($1)"
            " GROUP BY status",
            subscriptions,
        )
    finally:
        await conn.close()
    return {r["status"]: r["n"] for r in rows}


async def message_events(database_url: str, subscriptions: list[str]) -> set[str]:
    """The event ids the messages of ``subscriptions`` carry (``data.event_id`` of each body)."""
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT DISTINCT (body::jsonb)->'data'->>'event_id' FROM notification.messages"
            " WHERE subscription_id = ANY($1)",
            subscriptions,
        )
    finally:
        await conn.close()
    return {r[0] for r in rows}


async def attempt_kinds(database_url: str, subscriptions: list[str]) -> dict[str, int]:
    """The subscriptions' delivery attempts by what the sender saw: the status code, or its error."""
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT coalesce(status_code::text, error) AS kind, count(*) AS n FROM notification.attempts"
            " WHERE subscription_id = ANY($1) GROUP BY 1",
            subscriptions,
        )
    finally:
        await conn.close()
    return {r["kind"]: r["n"] for r in rows}


async def normalized_ids(bootstrap: str, tenants: set[str]) -> set[str]:
    """Ids of the normalized tracking events of ``tenants`` on the topic, read to its end."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    prefixes = tuple(f"{t}/".encode() for t in tenants)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None, fetch_max_wait_ms=50
    )
    await consumer.start()
    try:
        await consumer.topics()
        found = sorted(consumer.partitions_for_topic(TRACKING_NORMALIZED) or ())
        parts = [TopicPartition(TRACKING_NORMALIZED, p) for p in found]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        ids: set[str] = set()
        while not all([await consumer.position(tp) >= ends[tp] for tp in parts]):
            batch = await consumer.getmany(timeout_ms=200, max_records=10_000)
            for records in batch.values():
                # The ce_id header, not the body: nothing to decode, so that a receiver served by the
                # same event loop is not starved while a large topic is read.
                ids.update(_ce_id(r) for r in records if r.key and r.key.startswith(prefixes))
        return ids
    finally:
        await consumer.stop()


def _ce_id(record: Any) -> str:
    for name, value in record.headers:
        if name == "ce_id":
            return bytes(value).decode()
    return str(decode_event(record.value)[0].id)
