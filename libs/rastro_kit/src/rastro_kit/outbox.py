"""The transactional outbox: events are written in the same Postgres transaction as the state change
that caused them, and a relay publishes them afterwards, in insertion order, at least once.

Only one relay per service schema publishes at a time (a Postgres advisory lock elects it), so the
order of rows with one key is the order on the topic. Consumers make the rare duplicate harmless
with their inbox.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaProducer

from rastro_events import Envelope, encode_event, headers_for
from rastro_kit.logs import get_logger
from rastro_kit.metrics import OUTBOX_PENDING

__all__ = ["OutboxRelay", "enqueue_event", "enqueue_events", "enqueue_record"]

Headers = Sequence[tuple[str, bytes | None]]
log = get_logger(__name__)


async def enqueue_record(
    conn: Any, topic: str, key: bytes | None, value: bytes | None, headers: Headers = ()
) -> None:
    await conn.execute(
        "INSERT INTO outbox(topic, key, value, header_names, header_values) VALUES ($1, $2, $3, $4, $5)",
        topic,
        key,
        value,
        [h[0] for h in headers],
        [h[1] for h in headers],
    )


async def enqueue_event(conn: Any, topic: str, envelope: Envelope) -> None:
    await enqueue_record(
        conn, topic, envelope.subject.encode(), encode_event(envelope), headers_for(envelope)
    )


async def enqueue_events(conn: Any, events: Sequence[tuple[str, Envelope]]) -> None:
    """Many events in one round trip, in order: what a batch request should use."""
    rows = []
    for topic, envelope in events:
        headers = headers_for(envelope)
        names, values = [h[0] for h in headers], [h[1] for h in headers]
        rows.append((topic, envelope.subject.encode(), encode_event(envelope), names, values))
    await conn.executemany(
        "INSERT INTO outbox(topic, key, value, header_names, header_values) VALUES ($1, $2, $3, $4, $5)", rows
    )


class OutboxRelay:
    def __init__(
        self,
        pool: Any,
        producer: AIOKafkaProducer,
        schema: str,
        service: str,
        *,
        batch_size: int = 2000,
        poll_interval_s: float = 1.0,
    ) -> None:
        self._pool, self._producer, self._schema, self._service = pool, producer, schema, service
        self._batch_size, self._poll = batch_size, poll_interval_s
        self._wake = asyncio.Event()
        self._stopping = False
        self.published = 0
        self.is_leader = False

    async def run(self) -> None:
        backoff = 0.5
        while not self._stopping:
            try:
                await self._lead_and_publish()
                backoff = 0.5
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # broker or database down: keep the rows, try again later
                log.warning("outbox_relay_error", error=repr(exc), retry_in_s=backoff)
                self.is_leader = False
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def _lead_and_publish(self) -> None:
        lock_id = int.from_bytes(
            hashlib.sha256(f"outbox:{self._schema}".encode()).digest()[:8], "big", signed=True
        )
        async with self._pool.acquire() as conn:
            while not await conn.fetchval("SELECT pg_try_advisory_lock($1)", lock_id):
                if self._stopping:
                    return
                await asyncio.sleep(self._poll)
            channel = f"{self._schema}_outbox"
            await conn.add_listener(channel, self._on_notify)
            self.is_leader = True
            try:
                while not self._stopping:
                    # Clear before reading, not after: a NOTIFY that lands while a batch is being
                    # published must wake the next round, not be lost until the poll interval.
                    self._wake.clear()
                    sent = await self._publish_batch(conn)
                    if sent < self._batch_size:
                        try:
                            await asyncio.wait_for(self._wake.wait(), self._poll)
                        except TimeoutError:
                            pass
            finally:
                self.is_leader = False
                await conn.remove_listener(channel, self._on_notify)
                await conn.execute("SELECT pg_advisory_unlock($1)", lock_id)

    def _on_notify(self, *_: object) -> None:
        self._wake.set()

    async def _publish_batch(self, conn: Any) -> int:
        rows = await conn.fetch(
            "SELECT id, topic, key, value, header_names, header_values FROM outbox ORDER BY id LIMIT $1",
            self._batch_size,
        )
        if not rows:
            OUTBOX_PENDING.labels(self._service).set(0)
            return 0
        futures = [
            await self._producer.send(
                r["topic"],
                value=r["value"],
                key=r["key"],
                headers=list(zip(r["header_names"], r["header_values"], strict=True)),
            )
            for r in rows
        ]
        await asyncio.gather(*futures)
        await conn.execute("DELETE FROM outbox WHERE id = ANY($1::bigint[])", [r["id"] for r in rows])
        self.published += len(rows)
        pending = 0 if len(rows) < self._batch_size else await conn.fetchval("SELECT count(*) FROM outbox")
        OUTBOX_PENDING.labels(self._service).set(pending)
        return len(rows)
