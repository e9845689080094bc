"""The transactional outbox: events are written in the same Postgres transaction as the state change
that caused them, and a relay publishes them afterwards, in insertion order, at least once.

Only one relay per service schema publishes at a time (a Postgres advisory lock elects it), so the
order of rows with one key is the order on the topic. Consumers make the rare duplicate harmless
with their inbox.

Hot path (ingest's 1,000-event batches): many rows go in with one statement (one round trip, and
the NOTIFY trigger fires once), and the relay fills one record batch per partition itself (the
producer's own partitioning, murmur2 of the key) instead of one ``send`` per record.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import random
import struct
import time
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaProducer

from rastro_events import Envelope, encode_event, headers_for
from rastro_events.encoding import HEADER_NAMES, EncodedEvent
from rastro_kit.logs import get_logger
from rastro_kit.metrics import OUTBOX_PENDING

__all__ = [
    "OutboxRelay",
    "OutboxRow",
    "enqueue_encoded",
    "enqueue_event",
    "enqueue_events",
    "enqueue_record",
    "enqueue_rows",
    "murmur2",
    "partition_for",
]

Headers = Sequence[tuple[str, bytes | None]]
# One outbox row as ``enqueue_rows`` takes it: topic, key, value, header names, header values.
OutboxRow = tuple[str, bytes | None, bytes | None, Sequence[str], Sequence[bytes | None]]
log = get_logger(__name__)

_INSERT = "INSERT INTO outbox(topic, key, value, header_names, header_values) VALUES ($1, $2, $3, $4, $5)"
_COLUMNS = ("topic", "key", "value", "header_names", "header_values")


async def enqueue_record(
    conn: Any, topic: str, key: bytes | None, value: bytes | None, headers: Headers = ()
) -> None:
    await conn.execute(_INSERT, topic, key, value, [h[0] for h in headers], [h[1] for h in headers])


async def enqueue_event(conn: Any, topic: str, envelope: Envelope) -> None:
    await enqueue_record(
        conn, topic, envelope.subject.encode(), encode_event(envelope), headers_for(envelope)
    )


async def enqueue_events(conn: Any, events: Sequence[tuple[str, Envelope]]) -> None:
    """Many events in one round trip, in order: what a batch request should use."""
    rows: list[OutboxRow] = []
    for topic, envelope in events:
        headers = headers_for(envelope)
        names, values = [h[0] for h in headers], [h[1] for h in headers]
        rows.append((topic, envelope.subject.encode(), encode_event(envelope), names, values))
    await enqueue_rows(conn, rows)


async def enqueue_encoded(conn: Any, events: Sequence[EncodedEvent]) -> None:
    """Events built by ``encode_new_event`` (what a handler emits), in one round trip, in order."""
    await enqueue_rows(conn, [(e.topic, e.key, e.value, HEADER_NAMES, e.header_values) for e in events])


async def enqueue_rows(conn: Any, rows: Sequence[OutboxRow]) -> None:
    """Rows already encoded, in order (their ids follow the sequence), in one statement.

    Call inside the transaction that makes the rows true. One round trip and one statement (so the
    NOTIFY trigger fires once), where ``executemany`` runs a statement per row: when every row has
    the same header names (a batch of events always does), one ``INSERT … SELECT FROM unnest(…)``
    of column arrays, the cheapest to encode; otherwise a binary ``COPY``.
    """
    if len(rows) <= 1:
        if rows:
            await conn.execute(_INSERT, *rows[0])
        return
    names = rows[0][3]
    width = len(names)
    if all((r[3] is names or r[3] == names) and len(r[4]) == width for r in rows):
        columns = [[r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], list(names)]
        columns += [[r[4][i] for r in rows] for i in range(width)]
        await conn.execute(_unnest_insert(width), *columns)
    else:
        await conn.copy_records_to_table("outbox", records=rows, columns=_COLUMNS)


@functools.cache
def _unnest_insert(width: int) -> str:
    """``INSERT … SELECT`` of rows given as column arrays, headers as ``width`` arrays of values."""
    values = [f"h{i}" for i in range(width)]
    arrays = "".join(f", ${i + 5}::bytea[]" for i in range(width))
    header_values = f"ARRAY[{', '.join(values)}]::bytea[]" if width else "'{}'::bytea[]"
    return (
        "INSERT INTO outbox(topic, key, value, header_names, header_values)"
        f" SELECT t, k, v, $4::text[], {header_values}"
        f" FROM unnest($1::text[], $2::bytea[], $3::bytea[]{arrays})"
        f" WITH ORDINALITY AS r(t, k, v, {''.join(h + ', ' for h in values)}n) ORDER BY n"
    )


_M, _MASK = 0x5BD1E995, 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 (the Java client's ``Utils.murmur2``), as aiokafka's ``DefaultPartitioner`` uses
    it, with the same result; a few times faster than aiokafka's pure-Python loop."""
    length = len(data)
    h = 0x9747B28C ^ length
    whole = length & ~3
    for (k,) in struct.iter_unpack("<I", data[:whole]):
        k = (k * _M) & _MASK
        k ^= k >> 24
        h = ((h * _M) & _MASK) ^ ((k * _M) & _MASK)
    extra = length & 3
    if extra:
        if extra == 3:
            h ^= data[whole + 2] << 16
        if extra >= 2:
            h ^= data[whole + 1] << 8
        h = ((h ^ data[whole]) * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    return h ^ (h >> 15)


def partition_for(key: bytes | None, partitions: Sequence[int]) -> int:
    """The partition aiokafka's default partitioner picks for ``key`` (``partitions`` sorted)."""
    if key is None:
        return random.choice(partitions)
    return partitions[(murmur2(key) & 0x7FFFFFFF) % len(partitions)]


class OutboxRelay:
    """``pool`` must hand out real sessions (``Runtime.session_pool``: straight to Postgres, never through
    a transaction pooler): the leader holds its advisory lock and its LISTEN on one connection, and
    publishes through it."""

    def __init__(
        self,
        pool: Any,
        producer: AIOKafkaProducer,
        schema: str,
        service: str,
        *,
        batch_size: int = 4000,
        poll_interval_s: float = 1.0,
    ) -> None:
        self._pool, self._producer, self._schema, self._service = pool, producer, schema, service
        self._batch_size, self._poll = batch_size, poll_interval_s
        self._wake = asyncio.Event()
        self._stopping = False
        self.published = 0
        self.is_leader = False
        self._counted_at = 0.0

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
            # Plan each statement for its own ids and the table as it is now. The outbox is a queue: it
            # is near empty whenever autovacuum analyzes it, but grows dead rows between vacuums, and a
            # cached generic plan made on the empty table deleted 20 published rows by a sequential scan
            # of every dead one (8 ms a round at 500 events/s). RESET ALL on release puts it back.
            await conn.execute("SET plan_cache_mode = force_custom_plan")
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
        await asyncio.gather(*await self._send(rows))
        # Only now, every record acknowledged (acks=all), may the rows go.
        await conn.execute("DELETE FROM outbox WHERE id = ANY($1::bigint[])", [r[0] for r in rows])
        self.published += len(rows)
        if len(rows) < self._batch_size:
            OUTBOX_PENDING.labels(self._service).set(0)
        elif time.monotonic() - self._counted_at >= 1.0:  # a backlog: count it, at most once a second
            self._counted_at = time.monotonic()
            OUTBOX_PENDING.labels(self._service).set(await conn.fetchval("SELECT count(*) FROM outbox"))
        return len(rows)

    async def _send(self, rows: Sequence[Any]) -> list[asyncio.Future[Any]]:
        """Queue ``rows`` as record batches, one open batch per partition, filled in row order.

        The partition is the one ``send`` would pick (murmur2 of the key over the topic's partitions),
        and a partition's batches are submitted in the order they filled, so the order of one key's
        rows is their order on the partition. Returns the futures of the batches' acknowledgements.
        """
        producer = self._producer
        partitions: dict[str, list[int]] = {}
        open_batches: dict[tuple[str, int], Any] = {}
        acks: list[asyncio.Future[Any]] = []
        for _, topic, key, value, names, values in rows:
            parts = partitions.get(topic)
            if parts is None:
                parts = partitions[topic] = sorted(await producer.partitions_for(topic))
            partition = partition_for(key, parts)
            headers = list(zip(names, values, strict=True))
            batch = open_batches.get((topic, partition))
            if batch is None:
                batch = open_batches[topic, partition] = producer.create_batch()
            if batch.append(key=key, value=value, timestamp=None, headers=headers) is None:  # full
                acks.append(await producer.send_batch(batch, topic, partition=partition))
                batch = open_batches[topic, partition] = producer.create_batch()
                batch.append(key=key, value=value, timestamp=None, headers=headers)  # first always fits
        for (topic, partition), batch in open_batches.items():
            acks.append(await producer.send_batch(batch, topic, partition=partition))
        return acks
