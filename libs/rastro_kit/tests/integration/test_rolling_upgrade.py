"""A rolling upgrade rehearsed against a real broker and a real Postgres (docs/upgrades.md).

A test-only event, ``rehearsal.parcel``, has its ``weight`` retyped: kilograms as a decimal string in v1,
grams as an integer in v2, on a topic of its own. Inside the migration window ``rehearsal.parcel:1->2``,
all at once:

- a producer on new code (a consumer group turning scans into parcels) emits v2, dual-published;
- producers on old code keep sending plain v1 (some of it stored before any consumer started);
- a consumer group on old code knows v1 only; v2 twins also reach it through its replay topic, as they
  would from newer instances of its own group;
- a consumer group on new code handles v2 and reads v1 through the upcaster.

Every event has one effect per group, nothing is dead-lettered, and after the window an unknown major is
a dead letter again (``unsupported_type``).
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, ClassVar

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from pydantic import Field

from rastro_events import Payload, RawTrackingEvent, new_event
from rastro_events.encoding import HEADER_NAMES, EncodedEvent, encode_new_event
from rastro_events.migrations import EventMigrations
from rastro_events.registry import register, register_downcaster, register_upcaster, unregister
from rastro_events.topics import TopicSpec, dlq_topic, replay_topic, retry_topic
from rastro_kit.consumer import ConsumerRunner, HandlerContext
from rastro_kit.db import apply_migrations, create_pool
from rastro_kit.kafka import apply_topics, make_consumer, make_producer
from rastro_kit.metrics import DLQ_MESSAGES, EVENTS_CONSUMED
from rastro_kit.outbox import OutboxRelay
from rastro_kit.settings import KitSettings
from rastro_kit.testing import TopicReader, send_event, wait_until

pytestmark = pytest.mark.integration

RUN = secrets.token_hex(3)
PREFIX = f"ru{RUN}"
NAME = "rehearsal.parcel"
WINDOW = EventMigrations.parse(f"{NAME}:1->2")


class ParcelV1(Payload):
    event_name: ClassVar[str] = NAME
    major: ClassVar[int] = 1
    topic: ClassVar[str] = f"rastro.{PREFIX}.parcel.v1"
    parcel_id: str
    weight: str = Field(pattern=r"^\d+(\.\d{1,3})?$", description="kilograms")

    def shipment_key(self) -> str:
        return self.parcel_id


class ParcelV2(Payload):
    event_name: ClassVar[str] = NAME
    major: ClassVar[int] = 2
    topic: ClassVar[str] = f"rastro.{PREFIX}.parcel.v2"
    parcel_id: str
    weight: int = Field(ge=0, description="grams")

    def shipment_key(self) -> str:
        return self.parcel_id


class ParcelV3(ParcelV2):
    """A major nobody here knows (never registered); a misbehaving producer puts it on the v2 topic."""

    major: ClassVar[int] = 3


def kg_to_grams(data: dict[str, Any]) -> dict[str, Any]:
    return {**data, "weight": int(Decimal(data["weight"]) * 1000)}


def grams_to_kg(data: dict[str, Any]) -> dict[str, Any]:
    return {**data, "weight": format(Decimal(data["weight"]) / 1000, "f")}


class Rehearsal:
    def __init__(self, bootstrap: str, database_url: str, idempotence: bool) -> None:
        self.settings = KitSettings(
            service_name=PREFIX,
            KAFKA_BOOTSTRAP_SERVERS=bootstrap,
            DATABASE_URL=database_url,
            RASTRO_KAFKA_IDEMPOTENCE=idempotence,
            RASTRO_RETRY_DELAYS="0.3",
            RASTRO_EVENT_MIGRATIONS=str(WINDOW),
        )
        self.scans = f"rastro.{PREFIX}.scans"
        self.services = {"prod": f"{PREFIX}prod", "old": f"{PREFIX}old", "new": f"{PREFIX}new"}
        self.pool: Any = None
        self.producer: AIOKafkaProducer | None = None
        self.runners: dict[str, ConsumerRunner] = {}
        self.tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        topics = [self.scans, ParcelV1.topic, ParcelV2.topic]
        for service in self.services.values():
            topics += [dlq_topic(service), replay_topic(service), retry_topic(service, 1)]
        await apply_topics(self.settings.kafka_bootstrap_servers, [TopicSpec(t, 3) for t in topics])
        self.pool = await create_pool(self.settings.database_url, self.settings.schema)
        await apply_migrations(self.pool, self.settings.schema, ())
        async with self.pool.acquire() as conn:
            await conn.execute(
                "CREATE TABLE effects (grp text, parcel_id text, event_id text, grams int, topic text)"
            )
        self.producer = make_producer(self.settings)
        await self.producer.start()
        relay = OutboxRelay(self.pool, self.producer, self.settings.schema, PREFIX, poll_interval_s=0.2)
        self.tasks.append(asyncio.create_task(relay.run()))

    def start_consumers(self) -> None:
        """Three groups at once (a group join on Tansu takes up to ~5 s; they overlap)."""
        plan = self.settings.migrations
        wiring = {
            # new code that produces: scans in, parcels out, in v2 (dual-published in the window)
            "prod": ([self.scans], {RawTrackingEvent.ce_type(): self.on_scan}),
            # old code: v1 only
            "old": ([ParcelV1.topic], {ParcelV1.ce_type(): self.on_parcel_v1}),
            # new code: v2; v1 (its topic added by the runner) read through the upcaster
            "new": ([ParcelV2.topic], {ParcelV2.ce_type(): self.on_parcel_v2}),
        }
        for role, (topics, handlers) in wiring.items():
            runner = ConsumerRunner(
                service=self.services[role],
                group_id=self.services[role],
                topics=topics,
                pool=self.pool,
                consumer_factory=lambda group_id: make_consumer(self.settings, group_id=group_id),
                handlers=handlers,
                retry_delays_s=self.settings.retry_delays_s,
                migrations=plan,
            )
            self.runners[role] = runner
            self.tasks.append(asyncio.create_task(runner.run()))

    async def on_scan(self, ctx: HandlerContext, envelope: Any, scan: RawTrackingEvent) -> None:
        assert scan.raw is not None
        await ctx.emit(ParcelV2(parcel_id=scan.tracking_number, weight=scan.raw["grams"]))

    async def on_parcel_v1(self, ctx: HandlerContext, envelope: Any, parcel: ParcelV1) -> None:
        await self._effect(ctx, "old", parcel.parcel_id, int(Decimal(parcel.weight) * 1000))

    async def on_parcel_v2(self, ctx: HandlerContext, envelope: Any, parcel: ParcelV2) -> None:
        assert isinstance(parcel, ParcelV2) and envelope.type == ParcelV2.ce_type()  # upcast if it was v1
        await self._effect(ctx, "new", parcel.parcel_id, parcel.weight)

    async def _effect(self, ctx: HandlerContext, group: str, parcel_id: str, grams: int) -> None:
        assert ctx.envelope is not None
        await ctx.conn.execute(
            "INSERT INTO effects VALUES ($1, $2, $3, $4, $5)",
            group,
            parcel_id,
            ctx.envelope.id,
            grams,
            ctx.record.topic,
        )

    async def send_plain_v1(self, parcel_id: str, grams: int, times: int = 1) -> None:
        """Old code producing: v1 only, straight to its topic (``times`` > 1: redelivered)."""
        assert self.producer is not None
        kg = format(Decimal(grams) / 1000, "f")
        encoded = encode_new_event(ParcelV1(parcel_id=parcel_id, weight=kg), tenant_id="acme", source="/old")
        for _ in range(times):
            await self.send(encoded.topic, encoded)

    async def send(self, topic: str, encoded: EncodedEvent, key: bytes | None = None) -> None:
        assert self.producer is not None
        headers = list(zip(HEADER_NAMES, encoded.header_values, strict=True))
        await self.producer.send_and_wait(topic, encoded.value, key=key or encoded.key, headers=headers)

    async def send_scan(self, parcel_id: str, grams: int) -> None:
        assert self.producer is not None
        scan = RawTrackingEvent(
            tracking_number=parcel_id,
            status_code="WEIGHED",
            occurred_at=datetime.now(UTC),
            raw={"grams": grams},
        )
        await send_event(self.producer, new_event(scan, tenant_id="acme", source="/scale"), topic=self.scans)

    async def effects(self, group: str) -> dict[str, list[tuple[str, int, str]]]:
        rows = await self.pool.fetch(
            "SELECT parcel_id, event_id, grams, topic FROM effects WHERE grp = $1", group
        )
        found: dict[str, list[tuple[str, int, str]]] = {}
        for r in rows:
            found.setdefault(r["parcel_id"], []).append((r["event_id"], r["grams"], r["topic"]))
        return found

    async def end_offset(self, topic: str) -> int:
        consumer = AIOKafkaConsumer(bootstrap_servers=self.settings.kafka_bootstrap_servers)
        await consumer.start()
        try:
            parts = [TopicPartition(topic, p) for p in await _partitions(consumer, topic)]
            return sum((await consumer.end_offsets(parts)).values())
        finally:
            await consumer.stop()

    async def stop(self) -> None:
        for runner in self.runners.values():
            runner.stop()  # each finishes its batch
        self.tasks[0].cancel()  # the outbox relay
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.producer:
            await self.producer.stop()
        await self.pool.close()


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    await consumer.topics()
    return consumer.partitions_for_topic(topic) or set()


def consumed(service: str, *, topic: str | None = None, outcome: str | None = None) -> float:
    total = 0.0
    for sample in EVENTS_CONSUMED.collect()[0].samples:
        labels = sample.labels
        if (
            sample.name.endswith("_total")
            and labels["service"] == service
            and topic in (None, labels["topic"])
            and outcome in (None, labels["outcome"])
        ):
            total += sample.value
    return total


def dead_lettered(service: str) -> float:
    return sum(
        s.value
        for s in DLQ_MESSAGES.collect()[0].samples
        if s.name.endswith("_total") and s.labels["service"] == service
    )


@pytest.fixture(scope="module")
async def rehearsal(
    kafka_bootstrap: str, database_url: str, kafka_idempotence: bool
) -> AsyncIterator[Rehearsal]:
    register(ParcelV1)
    register(ParcelV2)
    register_upcaster(NAME, 1, kg_to_grams)
    register_downcaster(NAME, 2, grams_to_kg)
    r = Rehearsal(kafka_bootstrap, database_url, kafka_idempotence)
    try:
        await r.start()
        yield r
        await r.stop()
    finally:
        unregister(ParcelV1, ParcelV2)


async def test_producers_on_v2_and_consumers_on_v1_at_once_lose_nothing(rehearsal: Rehearsal) -> None:
    r = rehearsal
    expected: dict[str, int] = {}  # parcel id -> grams
    # Stored before any consumer of the window starts: v1 records of old producers.
    for i in range(5):
        expected[f"S{i}"] = 1000 + i
        await r.send_plain_v1(f"S{i}", expected[f"S{i}"])
    r.start_consumers()
    assert r.runners["new"].topics == (ParcelV2.topic, ParcelV1.topic)  # v1 read for its upcaster
    assert r.runners["old"].topics == (ParcelV1.topic,)  # old code never reads v2's topic

    async def new_producer() -> None:
        for i in range(20):
            expected[f"D{i}"] = 250 * i + 5
            await r.send_scan(f"D{i}", expected[f"D{i}"])

    async def old_producer() -> None:
        for i in range(10):
            expected[f"P{i}"] = 2000 + 7 * i
            await r.send_plain_v1(f"P{i}", expected[f"P{i}"], times=2 if i % 4 == 0 else 1)

    await asyncio.gather(new_producer(), old_producer())
    dual, plain_dups = 20, 3

    # v2 twins reach the v1-only group through its replay topic, as from newer instances of its group.
    async with TopicReader(r.settings.kafka_bootstrap_servers, ParcelV2.topic) as v2_topic:
        twins = (await v2_topic.wait_for(lambda _: True, count=5))[:5]
    assert r.producer is not None
    for twin in twins:
        await r.producer.send_and_wait(replay_topic(r.services["old"]), twin.value, key=b"from-a-new-sibling")

    v1_records = 5 + 10 + plain_dups + dual
    await wait_until(
        lambda: (
            consumed(r.services["old"], topic=ParcelV1.topic) >= v1_records
            and consumed(r.services["old"], topic=replay_topic(r.services["old"])) >= len(twins)
            and consumed(r.services["new"]) >= v1_records + dual
        ),
        timeout=30,
        message="every record read by both groups",
    )

    for group, service in (("old", r.services["old"]), ("new", r.services["new"])):
        effects = await r.effects(group)
        assert sorted(effects) == sorted(expected), group
        once = {p: rows for p, rows in effects.items() if len(rows) != 1}
        assert not once, f"{group}: events handled more than once: {once}"
        assert {p: rows[0][1] for p, rows in effects.items()} == expected, f"{group}: weights"
        assert consumed(service, outcome="processed") == len(expected)
    # The new group got each dual-published event twice (once per major) and handled it once.
    assert consumed(r.services["new"], outcome="duplicate") == dual + plain_dups
    assert consumed(r.services["old"], outcome="duplicate") == plain_dups
    new_effects = await r.effects("new")
    assert all(new_effects[p][0][2] == ParcelV1.topic for p in expected if p[0] in "SP")  # upcast
    ids = {p: rows[0][0] for p, rows in new_effects.items()}
    assert ids == {p: rows[0][0] for p, rows in (await r.effects("old")).items()}  # one id per event

    # Nothing dead-lettered: not by the counters, not on the dead-letter topics.
    assert {role: dead_lettered(s) for role, s in r.services.items()} == dict.fromkeys(r.services, 0.0)
    assert consumed(r.services["old"], outcome="twin_skipped") == len(twins)
    await wait_until(lambda: r.pool.fetchval("SELECT count(*) = 0 FROM outbox"), message="outbox drained")
    for service in r.services.values():
        assert await r.end_offset(dlq_topic(service)) == 0, service


async def test_after_the_window_an_unknown_major_is_a_dead_letter(rehearsal: Rehearsal) -> None:
    r = rehearsal
    if not r.runners:  # run alone
        r.start_consumers()
    for runner in r.runners.values():  # stands for the redeploy without RASTRO_EVENT_MIGRATIONS
        runner.migrations = None
    before_v1 = await r.end_offset(ParcelV1.topic)

    await r.send_scan("AFTER-1", 4321)  # producers stopped v1: only v2 now
    # a v3 record on a topic the new group reads, a v2 one reaching the v1-only group
    v3 = encode_new_event(ParcelV3(parcel_id="V3-1", weight=1), tenant_id="acme", source="/future")
    await r.send(ParcelV2.topic, v3)
    v2 = encode_new_event(ParcelV2(parcel_id="V2-1", weight=1), tenant_id="acme", source="/new")
    await r.send(replay_topic(r.services["old"]), v2)

    await wait_until(lambda: _has(r, "new", "AFTER-1"), timeout=30, message="the v2-only event handled")
    assert await r.end_offset(ParcelV1.topic) == before_v1
    for role, ce_type in (("new", ParcelV3.ce_type()), ("old", ParcelV2.ce_type())):
        async with TopicReader(r.settings.kafka_bootstrap_servers, dlq_topic(r.services[role])) as dlq:
            [dead] = await dlq.wait_for(lambda rec: True, timeout=30)
        headers = {k: v.decode() for k, v in dead.headers}
        assert headers["rastro-dlq-error-class"] == "unsupported_type", role
        assert headers["ce_type"] == ce_type
        assert dead.value == (v3 if role == "new" else v2).value  # byte for byte, as received
    assert "AFTER-1" not in await r.effects("old")


async def _has(r: Rehearsal, group: str, parcel_id: str) -> bool:
    return parcel_id in await r.effects(group)
