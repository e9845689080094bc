"""The outbox relay against real Postgres and a real broker: order per key, wake-up, restart."""

from __future__ import annotations

import asyncio
import secrets
from collections import defaultdict

import pytest
from aiokafka.partitioner import DefaultPartitioner

from rastro_events.topics import TopicSpec
from rastro_kit.db import apply_migrations, create_pool
from rastro_kit.kafka import apply_topics, make_producer
from rastro_kit.outbox import OutboxRelay, OutboxRow, enqueue_record, enqueue_rows, partition_for
from rastro_kit.settings import KitSettings
from rastro_kit.testing import TopicReader, wait_until

pytestmark = pytest.mark.integration


async def test_rows_are_published_in_order_per_key_and_deleted(
    kafka_bootstrap: str, database_url: str, kafka_idempotence: bool
) -> None:
    schema = f"relay{secrets.token_hex(3)}"
    topic = f"rastro.{schema}.out"
    await apply_topics(kafka_bootstrap, [TopicSpec(topic, 3)])
    settings = KitSettings(
        service_name=schema,
        KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap,
        DATABASE_URL=database_url,
        RASTRO_KAFKA_IDEMPOTENCE=kafka_idempotence,
    )
    pool = await create_pool(database_url, schema)
    await apply_migrations(pool, schema, ())
    producer = make_producer(settings)
    await producer.start()
    relay = OutboxRelay(pool, producer, schema, schema, batch_size=50, poll_interval_s=30)
    task = asyncio.create_task(relay.run())
    try:
        await wait_until(lambda: relay.is_leader, message="relay leads")
        # Written in many small transactions while the relay runs: LISTEN/NOTIFY must wake it (the poll
        # interval is 30 s), and rows of one key must keep their order across batches.
        for i in range(300):
            async with pool.acquire() as conn, conn.transaction():
                await enqueue_record(
                    conn, topic, f"k{i % 7}".encode(), str(i).encode(), [("n", str(i).encode())]
                )
        async with TopicReader(kafka_bootstrap, topic) as reader:
            records = await reader.wait_for(lambda r: True, count=300, timeout=20)
        by_key: dict[bytes, list[int]] = defaultdict(list)
        for r in records:
            by_key[r.key].append(int(r.value))
        assert len(records) == 300
        assert all(values == sorted(values) for values in by_key.values())
        assert dict(records[0].headers)["n"] == records[0].value
        assert await wait_until(lambda: _empty(pool), message="outbox drained")
    finally:
        relay.stop()
        await asyncio.wait_for(task, 10)
        await producer.stop()
        await pool.close()


async def _empty(pool: object) -> bool:
    return await pool.fetchval("SELECT count(*) FROM outbox") == 0  # type: ignore[attr-defined, no-any-return]


async def test_batches_written_before_a_relay_runs_go_out_on_the_default_partitions_in_order(
    kafka_bootstrap: str, database_url: str, kafka_idempotence: bool
) -> None:
    """``enqueue_rows`` (one statement for a batch; COPY when header names differ), then a relay that
    starts afterwards (as after a crash between commit and publish): everything is published once, in
    order per key, each record on the partition the producer's default partitioner picks, and more
    records per partition than one producer batch holds (256 KiB) so the relay's batches spill."""
    schema = f"relay{secrets.token_hex(3)}"
    topic = f"rastro.{schema}.out"
    await apply_topics(kafka_bootstrap, [TopicSpec(topic, 3)])
    settings = KitSettings(
        service_name=schema,
        KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap,
        DATABASE_URL=database_url,
        RASTRO_KAFKA_IDEMPOTENCE=kafka_idempotence,
    )
    pool = await create_pool(database_url, schema)
    await apply_migrations(pool, schema, ())
    padding = b"x" * 2000
    same_names: list[OutboxRow] = [
        (topic, f"k{i % 11}".encode(), b"%d " % i + padding, ("n", "ce_id"), [str(i).encode(), b"id"])
        for i in range(900)
    ]
    mixed_names: list[OutboxRow] = [
        (
            topic,
            f"k{i % 11}".encode(),
            b"%d " % i + padding,
            ["n"] + ["odd"] * (i % 2),
            [str(i).encode()] * (1 + i % 2),
        )
        for i in range(900, 1000)
    ]
    async with pool.acquire() as conn:
        async with conn.transaction():
            await enqueue_rows(conn, same_names)
        async with conn.transaction():
            await enqueue_rows(conn, mixed_names)
        assert await conn.fetchval("SELECT count(*) FROM outbox") == 1000
    producer = make_producer(settings)
    await producer.start()
    relay = OutboxRelay(pool, producer, schema, schema, batch_size=400, poll_interval_s=30)
    task = asyncio.create_task(relay.run())
    try:
        async with TopicReader(kafka_bootstrap, topic) as reader:
            records = await reader.wait_for(lambda r: True, count=1000, timeout=30)
        assert len(records) == 1000
        by_key: dict[bytes, list[int]] = defaultdict(list)
        for r in records:
            n = int(r.value.split(b" ")[0])
            by_key[r.key].append(n)
            assert (
                r.partition == partition_for(r.key, [0, 1, 2]) == DefaultPartitioner()(r.key, [0, 1, 2], [])
            )
            row = (same_names + mixed_names)[n]
            assert r.headers == tuple(zip(row[3], row[4], strict=True)) and r.value == row[2]
        assert all(values == sorted(values) for values in by_key.values())
        assert sorted(n for values in by_key.values() for n in values) == list(range(1000))
        assert await wait_until(lambda: _empty(pool), message="outbox drained")
    finally:
        relay.stop()
        await asyncio.wait_for(task, 10)
        await producer.stop()
        await pool.close()
