"""Consumer lag and outbox backlog as the ``BacklogMonitor`` exports them: a real broker, a real Postgres."""

from __future__ import annotations

import asyncio
import secrets

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from prometheus_client import REGISTRY

from rastro_events.topics import TopicSpec, replay_topic
from rastro_kit import consumer_lag
from rastro_kit.consumer_lag import BacklogMonitor, WatchedGroup
from rastro_kit.db import apply_migrations, create_pool
from rastro_kit.kafka import apply_topics, make_consumer, make_producer
from rastro_kit.metrics import CONSUMER_LAG, OUTBOX_PENDING
from rastro_kit.outbox import enqueue_record
from rastro_kit.settings import KitSettings
from rastro_kit.testing import free_port, wait_until

pytestmark = pytest.mark.integration


def lag(service: str, topic: str, partition: int) -> float | None:
    return REGISTRY.get_sample_value(
        "rastro_consumer_lag", {"service": service, "topic": topic, "partition": str(partition)}
    )


async def commit(consumer: AIOKafkaConsumer, topic: str, upto: dict[int, int]) -> None:
    """Read each partition up to ``upto[p]`` (the records must be there), then commit those offsets."""
    tps = [TopicPartition(topic, p) for p in upto]
    consumer.assign(tps)
    await consumer.seek_to_beginning(*tps)
    seen: dict[int, int] = {}

    async def read_enough() -> bool:
        for tp, records in (await consumer.getmany(timeout_ms=200)).items():
            seen[tp.partition] = max(seen.get(tp.partition, 0), records[-1].offset + 1)
        return all(seen.get(p, 0) >= n for p, n in upto.items())

    await wait_until(read_enough, timeout=20, message=f"records of {topic}")
    await consumer.commit({TopicPartition(topic, p): n for p, n in upto.items()})


async def test_lag_per_partition_is_the_groups_true_remainder(
    kafka_bootstrap: str, kafka_idempotence: bool
) -> None:
    service = f"lag{secrets.token_hex(3)}"
    source, replay = f"rastro.{service}.source", replay_topic(service)
    settings = KitSettings(
        service_name=service,
        KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap,
        RASTRO_KAFKA_IDEMPOTENCE=kafka_idempotence,
    )
    await apply_topics(kafka_bootstrap, [TopicSpec(source, 3), TopicSpec(replay, 1)])
    producer = make_producer(settings)
    await producer.start()
    try:
        # Partition 0 gets one batch of 7: Tansu's ListOffsets would say its end is 1.
        acks = [await producer.send(source, b"r", partition=0) for _ in range(7)]
        await asyncio.gather(*acks)
        for partition, count in ((1, 5), (2, 4)):
            for _ in range(count):
                await producer.send_and_wait(source, b"r", partition=partition)
        await asyncio.gather(*[await producer.send(replay, b"r", partition=0) for _ in range(2)])
    finally:
        await producer.stop()

    group = make_consumer(settings, group_id=service)
    await group.start()
    monitor = BacklogMonitor(settings, [WatchedGroup(service, (source,))], interval_s=0.2)
    try:
        await commit(group, source, {0: 3, 2: 4})  # partition 1: nothing committed yet
        expected = {(source, 0): 4.0, (source, 1): 5.0, (source, 2): 0.0, (replay, 0): 2.0}

        async def exported() -> bool:
            await monitor.refresh()
            return all(lag(service, t, p) == n for (t, p), n in expected.items())

        await wait_until(exported, timeout=30, interval=0.2, message=f"lag {expected}")

        await commit(group, source, {1: 5, 0: 7})  # the group catches up
        expected = {(source, 0): 0.0, (source, 1): 0.0, (source, 2): 0.0, (replay, 0): 2.0}
        await wait_until(exported, timeout=30, interval=0.2, message=f"lag {expected}")
    finally:
        await group.stop()
        await monitor.close()


async def test_outbox_backlog_counts_unpublished_rows(database_url: str) -> None:
    service = f"obx{secrets.token_hex(3)}"
    settings = KitSettings(service_name=service, DATABASE_URL=database_url)
    pool = await create_pool(database_url, settings.schema)
    try:
        await apply_migrations(pool, settings.schema, ())
        async with pool.acquire() as conn:
            for i in range(3):
                await enqueue_record(conn, f"rastro.{service}.out", b"k", f"v{i}".encode())
        monitor = BacklogMonitor(settings, [], pool)
        await monitor.refresh()
        assert REGISTRY.get_sample_value("rastro_outbox_pending", {"service": service}) == 3
        await pool.execute("DELETE FROM outbox")
        await monitor.refresh()
        assert REGISTRY.get_sample_value("rastro_outbox_pending", {"service": service}) == 0
    finally:
        await pool.close()


async def test_an_unreachable_broker_keeps_the_last_value_and_warns_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    service = f"down{secrets.token_hex(3)}"
    settings = KitSettings(service_name=service, KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{free_port()}")
    CONSUMER_LAG.labels(service, "t", "0").set(42)
    OUTBOX_PENDING.labels(service).set(7)
    monitor = BacklogMonitor(settings, [WatchedGroup(service, ("t",))], _BrokenPool(), interval_s=0.05)
    logs = _Recorder()
    monkeypatch.setattr(consumer_lag, "log", logs)
    task = asyncio.create_task(monitor.run())
    await wait_until(lambda: monitor.rounds >= 3, timeout=20, message="three rounds")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    warnings = [e for e in logs.events if e["event"] == "backlog_metrics_failed"]
    assert sorted(e["part"] for e in warnings) == ["consumer_lag", "outbox_pending"], warnings
    assert lag(service, "t", 0) == 42
    assert REGISTRY.get_sample_value("rastro_outbox_pending", {"service": service}) == 7


class _Recorder:
    """Stands in for the module's structlog logger, whatever structlog's configuration is."""

    def __init__(self) -> None:
        self.events: list[dict[str, object]] = []

    def warning(self, event: str, **fields: object) -> None:
        self.events.append({"event": event, **fields})

    info = warning


class _BrokenPool:
    """A pool whose database is down: ``acquire`` fails as asyncpg's does when it cannot connect."""

    def acquire(self) -> _BrokenPool:
        return self

    async def __aenter__(self) -> None:
        raise ConnectionRefusedError("database down")

    async def __aexit__(self, *_: object) -> None:
        return None
