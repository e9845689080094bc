"""The consumer runner against a real broker and a real Postgres: inbox, savepoints, DLQ, retry, crash."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from rastro_events import RawTrackingEvent, decode_event, encode_event, headers_for, new_event
from rastro_events.topics import TopicSpec, dlq_topic, replay_topic, retry_topic
from rastro_kit.consumer import ConsumerRunner, HandlerContext
from rastro_kit.db import apply_migrations, create_pool
from rastro_kit.errors import PermanentError, Reason, TransientError
from rastro_kit.kafka import apply_topics, make_consumer, make_producer
from rastro_kit.outbox import OutboxRelay, enqueue_record
from rastro_kit.settings import KitSettings
from rastro_kit.testing import TopicReader, wait_until

pytestmark = pytest.mark.integration


SIBLING_TYPE = "rastro.sibling.v1"


class Harness:
    def __init__(self, bootstrap: str, database_url: str, idempotence: bool) -> None:
        self.service = f"kit{secrets.token_hex(3)}"
        self.source = f"rastro.{self.service}.source"
        self.out = f"rastro.{self.service}.out"
        self.settings = KitSettings(
            service_name=self.service,
            KAFKA_BOOTSTRAP_SERVERS=bootstrap,
            DATABASE_URL=database_url,
            RASTRO_KAFKA_IDEMPOTENCE=idempotence,
            RASTRO_RETRY_DELAYS="0.3,0.3",
        )
        self.pool: Any = None
        self.producer: AIOKafkaProducer | None = None
        self.relay_task: asyncio.Task[None] | None = None
        self.runner: ConsumerRunner | None = None
        self.runner_task: asyncio.Task[None] | None = None
        self.attempts: dict[str, int] = {}

    async def start(self) -> None:
        topics = [
            self.source,
            self.out,
            dlq_topic(self.service),
            replay_topic(self.service),
            retry_topic(self.service, 1),
            retry_topic(self.service, 2),
        ]
        await apply_topics(self.settings.kafka_bootstrap_servers, [TopicSpec(t, 3) for t in topics])
        self.pool = await create_pool(self.settings.database_url, self.settings.schema)
        await apply_migrations(self.pool, self.settings.schema, ())
        async with self.pool.acquire() as conn:
            await conn.execute("CREATE TABLE effects (event_id text, code text)")
        self.producer = make_producer(self.settings)
        await self.producer.start()
        relay = OutboxRelay(self.pool, self.producer, self.settings.schema, self.service, poll_interval_s=0.2)
        self.relay_task = asyncio.create_task(relay.run())
        await self.start_runner()

    async def start_runner(self) -> None:
        self.runner = ConsumerRunner(
            service=self.service,
            group_id=self.service,
            topics=[self.source],
            pool=self.pool,
            consumer_factory=lambda group_id: make_consumer(self.settings, group_id=group_id),
            handlers={RawTrackingEvent.ce_type(): self.handle},
            retry_delays_s=self.settings.retry_delays_s,
            sibling_types={SIBLING_TYPE},  # as if another group of the service handled it
        )
        self.runner_task = asyncio.create_task(self.runner.run())
        await wait_until(self.runner.assigned.is_set, timeout=60, message="group join")

    async def handle(self, ctx: HandlerContext, envelope: Any, event: RawTrackingEvent) -> None:
        code = event.status_code
        # counted outside the transaction: a failed attempt rolls back its own writes
        self.attempts[code] = self.attempts.get(code, 0) + 1
        if code.startswith("PERM"):
            raise PermanentError(Reason.UNMAPPED_CARRIER_CODE, f"no mapping for {code}")
        if code.startswith("FLAKY") and not ctx.record.topic.startswith(f"rastro.{self.service}.retry."):
            raise TransientError("downstream timed out")  # until it comes back through a retry tier
        if code.startswith("ALWAYSDOWN"):
            raise TransientError("downstream still down")
        if code.startswith("BUG"):
            raise KeyError("oops")
        await ctx.conn.execute("INSERT INTO effects VALUES ($1, $2)", envelope.id, code)
        seen = event.model_copy(update={"description": "seen"})
        envelope = new_event(seen, tenant_id=ctx.tenant_id, source="/test")
        await enqueue_record(ctx.conn, self.out, envelope.subject.encode(), encode_event(envelope))

    async def send(self, values: list[bytes | Any], key: bytes = b"t/1") -> None:
        assert self.producer is not None
        for v in values:
            if isinstance(v, bytes):
                await self.producer.send_and_wait(self.source, v, key=key, headers=[("x-original", b"1")])
            else:
                await self.producer.send_and_wait(
                    self.source, encode_event(v), key=key, headers=headers_for(v)
                )

    async def effects(self, prefix: str) -> list[tuple[str, str]]:
        rows = await self.pool.fetch(
            "SELECT event_id, code FROM effects WHERE code LIKE $1 ORDER BY code", prefix + "%"
        )
        return [(r["event_id"], r["code"]) for r in rows]

    async def stop(self) -> None:
        if self.runner and self.runner_task:
            self.runner.stop()
            await self.runner_task
        if self.relay_task:
            self.relay_task.cancel()
        if self.producer:
            await self.producer.stop()
        await self.pool.close()


def event(code: str, tracking: str = "T1", event_id: str | None = None) -> Any:
    payload = RawTrackingEvent(
        tracking_number=tracking, carrier="correios", status_code=code, occurred_at=datetime.now(UTC)
    )
    return new_event(payload, tenant_id="acme", source="/test", event_id=event_id)


@pytest.fixture(scope="module")
async def harness(kafka_bootstrap: str, database_url: str, kafka_idempotence: bool) -> AsyncIterator[Harness]:
    h = Harness(kafka_bootstrap, database_url, kafka_idempotence)
    await h.start()
    yield h
    await h.stop()


async def read_topic(bootstrap: str, topic: str, count: int, timeout: float = 20) -> list[Any]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
    await consumer.start()
    try:
        parts = [
            TopicPartition(topic, p)
            for p in consumer.partitions_for_topic(topic) or (await _parts(consumer, topic))
        ]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        found: list[Any] = []

        async def enough() -> bool:
            batch = await consumer.getmany(timeout_ms=200)
            for records in batch.values():
                found.extend(records)
            return len(found) >= count

        await wait_until(enough, timeout=timeout, message=f"{count} records on {topic}")
        return found
    finally:
        await consumer.stop()


async def _parts(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    await consumer.topics()
    return consumer.partitions_for_topic(topic) or set()


async def test_duplicate_delivery_has_one_effect(harness: Harness) -> None:
    e = event("DUP-01")
    await harness.send([e, e, e])
    await wait_until(lambda: harness.effects("DUP-01"), message="effect")
    await harness.send([event("DUP-02")])  # a later record proves the duplicates were consumed
    await wait_until(lambda: harness.effects("DUP-02"), message="marker")
    assert await harness.effects("DUP-01") == [(e.id, "DUP-01")]


async def test_poison_records_dead_letter_with_headers_and_neighbours_commit(harness: Harness) -> None:
    good_before, good_after = event("NB-01"), event("NB-02")
    wrong_schema = (
        b'{"specversion":"1.0","id":"x1","source":"/t","type":"rastro.tracking.raw.v1",'
        b'"subject":"acme/T","time":"2026-01-01T00:00:00Z","tenantid":"acme","data":{"carrier":1}}'
    )
    unknown_type = (
        b'{"specversion":"1.0","id":"x2","source":"/t","type":"rastro.nope.v9",'
        b'"subject":"acme/T","time":"2026-01-01T00:00:00Z","tenantid":"acme","data":{}}'
    )
    not_utf8 = b"\xff\xfe{broken"
    await harness.send(
        [
            good_before,
            b"{not json",
            wrong_schema,
            unknown_type,
            not_utf8,
            event("PERM-01"),
            event("BUG-01"),
            good_after,
        ],
        key=b"acme/T-poison",
    )
    await wait_until(lambda: harness.effects("NB-02"), message="neighbour after the poison")
    assert [c for _, c in await harness.effects("NB-")] == ["NB-01", "NB-02"]

    dead = await read_topic(harness.settings.kafka_bootstrap_servers, dlq_topic(harness.service), 6)
    reasons = {}
    for rec in dead:
        h = {k: v.decode("utf-8", "replace") for k, v in rec.headers}
        reasons[rec.value] = h["rastro-dlq-error-class"]
        assert h["rastro-dlq-original-topic"] == harness.source
        assert h["rastro-dlq-consumer-group"] == harness.service
        assert int(h["rastro-dlq-original-offset"]) >= 0
        assert h["rastro-dlq-attempts"] == "1"
        assert h["rastro-dlq-error-message"]
        assert rec.key == b"acme/T-poison"
    assert reasons[b"{not json"] == "invalid_json"
    assert reasons[not_utf8] == "invalid_json"  # byte for byte, even when not UTF-8
    assert reasons[wrong_schema] == "schema_violation"
    assert reasons[unknown_type] == "unsupported_type"
    assert sorted(reasons.values()).count("unmapped_carrier_code") == 1
    assert sorted(reasons.values()).count("handler_error") == 1


def raw_envelope(event_id: str, ce_type: str) -> bytes:
    return (
        f'{{"specversion":"1.0","id":"{event_id}","source":"/t","type":"{ce_type}",'
        '"subject":"acme/T","time":"2026-01-01T00:00:00Z","tenantid":"acme","data":{}}'
    ).encode()


async def test_a_sibling_groups_record_on_the_shared_replay_topic_is_left_to_it(harness: Harness) -> None:
    assert harness.producer is not None
    replay = replay_topic(harness.service)
    sibling, stranger = raw_envelope("sib-1", SIBLING_TYPE), raw_envelope("str-1", "rastro.nope.v9")
    on_main = raw_envelope("sib-main", SIBLING_TYPE)  # on the group's own topic it is still a dead letter
    for topic, value in ((replay, sibling), (replay, stranger), (harness.source, on_main)):
        await harness.producer.send_and_wait(topic, value, key=b"acme/T-sibling")
    async with TopicReader(harness.settings.kafka_bootstrap_servers, dlq_topic(harness.service)) as dlq:
        await dlq.wait_for(lambda rec: rec.value == on_main)
        await dlq.wait_for(lambda rec: rec.value == stranger)  # same key after the sibling: it came first
        assert sibling not in [r.value for r in dlq.records]


async def test_transient_failure_is_retried_through_a_tier(harness: Harness) -> None:
    flaky = event("FLAKY-01")
    await harness.send([flaky])
    await wait_until(lambda: harness.effects("FLAKY-01"), timeout=30, message="retried effect")
    assert await harness.effects("FLAKY-01") == [(flaky.id, "FLAKY-01")]
    retried = await read_topic(harness.settings.kafka_bootstrap_servers, retry_topic(harness.service, 1), 1)
    assert any(r.value == encode_event(flaky) for r in retried)


async def test_retries_exhausted_goes_to_dlq(harness: Harness) -> None:
    down = event("ALWAYSDOWN-01")
    await harness.send([down])

    async def exhausted() -> bool:
        dead = await read_topic(harness.settings.kafka_bootstrap_servers, dlq_topic(harness.service), 1)
        return any(
            r.value == encode_event(down)
            and dict(r.headers)["rastro-dlq-error-class"] == b"retries_exhausted"
            and dict(r.headers)["rastro-dlq-attempts"] == b"3"
            for r in dead
        )

    await wait_until(exhausted, timeout=40, interval=0.5, message="retries_exhausted dead letter")


async def test_emitted_events_reach_the_topic_through_the_outbox(harness: Harness) -> None:
    e = event("OUT-01", tracking="OUT")
    await harness.send([e])
    await wait_until(lambda: harness.effects("OUT-01"), message="effect")
    records = await read_topic(harness.settings.kafka_bootstrap_servers, harness.out, 1)
    decoded = [decode_event(r.value)[1] for r in records]
    assert any(p.status_code == "OUT-01" and p.description == "seen" for p in decoded)


async def test_crash_between_db_commit_and_offset_commit_loses_and_duplicates_nothing(
    harness: Harness,
) -> None:
    assert harness.runner is not None and harness.runner_task is not None

    class SimulatedCrash(Exception):
        pass

    async def crash() -> None:
        raise SimulatedCrash("after the DB commit, before the offset commit")

    harness.runner.after_db_commit = crash
    events = [event(f"CRASH-{i:02d}", tracking=f"C{i}") for i in range(5)]
    await harness.send(events, key=b"acme/crash")
    with pytest.raises(SimulatedCrash):
        await harness.runner_task
    committed = await harness.effects("CRASH-")
    assert committed, "the DB commit happened before the crash"

    await harness.start_runner()  # a new instance of the same group re-reads the uncommitted offsets
    await harness.send([event("CRASH-99")], key=b"acme/crash")
    await wait_until(lambda: harness.effects("CRASH-99"), timeout=30, message="post-restart marker")
    effects = await harness.effects("CRASH-")
    assert sorted(c for _, c in effects) == sorted([f"CRASH-{i:02d}" for i in range(5)] + ["CRASH-99"])
