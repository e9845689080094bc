"""The consumer runner with a batch handler, against a real broker and a real Postgres: the batch
handler gets a partition batch's new records at once, a failing record sends the batch to the isolated
path (per-record handlers, savepoints, DLQ), and partitions are handled concurrently, each in order."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from rastro_events import RawTrackingEvent, decode_event, encode_event, headers_for, new_event
from rastro_events.topics import TRACKING_RAW, TopicSpec, dlq_topic, replay_topic, retry_topic
from rastro_kit.consumer import ConsumerRunner, HandlerContext, RecordsFailed
from rastro_kit.db import apply_migrations, create_pool
from rastro_kit.errors import PermanentError, Reason
from rastro_kit.kafka import apply_topics, make_consumer, make_producer
from rastro_kit.outbox import OutboxRelay
from rastro_kit.settings import KitSettings
from rastro_kit.testing import TopicReader, wait_until

pytestmark = pytest.mark.integration


class Harness:
    def __init__(self, bootstrap: str, database_url: str, idempotence: bool) -> None:
        self.service = f"kitb{secrets.token_hex(3)}"
        self.source = f"rastro.{self.service}.source"
        self.settings = KitSettings(
            service_name=self.service,
            KAFKA_BOOTSTRAP_SERVERS=bootstrap,
            DATABASE_URL=database_url,
            RASTRO_KAFKA_IDEMPOTENCE=idempotence,
            RASTRO_RETRY_DELAYS="0.3",
        )
        self.pool: Any = None
        self.producer: AIOKafkaProducer | None = None
        self.tasks: list[asyncio.Task[None]] = []
        self.runner: ConsumerRunner | None = None
        self.batches: list[list[str]] = []  # status codes of each batch the batch handler got
        self.per_record: list[str] = []  # status codes the per-record handler got
        self.gates: dict[str, asyncio.Event] = {}  # a batch holding this code waits for the event

    async def start(self) -> None:
        topics = [
            self.source,
            dlq_topic(self.service),
            replay_topic(self.service),
            retry_topic(self.service, 1),
        ]
        await apply_topics(self.settings.kafka_bootstrap_servers, [TopicSpec(t, 3) for t in topics])
        self.pool = await create_pool(self.settings.database_url, self.settings.schema)
        await apply_migrations(self.pool, self.settings.schema, ())
        async with self.pool.acquire() as conn:
            await conn.execute("CREATE TABLE effects (seq bigserial, event_id text, code text)")
        self.producer = make_producer(self.settings)
        await self.producer.start()
        relay = OutboxRelay(self.pool, self.producer, self.settings.schema, self.service, poll_interval_s=0.2)
        self.tasks.append(asyncio.create_task(relay.run()))
        self.runner = ConsumerRunner(
            service=self.service,
            group_id=self.service,
            topics=[self.source],
            pool=self.pool,
            consumer_factory=lambda group_id: make_consumer(self.settings, group_id=group_id),
            handlers={RawTrackingEvent.ce_type(): self.handle},
            batch_handler=self.handle_batch,
            retry_delays_s=self.settings.retry_delays_s,
        )
        self.tasks.append(asyncio.create_task(self.runner.run()))
        await wait_until(self.runner.assigned.is_set, timeout=60, message="group join")

    async def handle(self, ctx: HandlerContext, envelope: Any, event: RawTrackingEvent) -> None:
        self.per_record.append(event.status_code)
        if event.status_code.startswith("PERM"):
            raise PermanentError(Reason.UNMAPPED_CARRIER_CODE, f"no mapping for {event.status_code}")
        await self._effects(ctx.conn, [ctx])

    async def handle_batch(self, conn: Any, contexts: Sequence[HandlerContext]) -> None:
        codes = [ctx.payload.status_code for ctx in contexts]
        self.batches.append(codes)
        for code in codes:
            if code in self.gates:
                await self.gates[code].wait()
        if any(code.startswith("PERM") for code in codes):
            raise PermanentError(Reason.UNMAPPED_CARRIER_CODE, "one of them has no mapping")
        rejected = {
            i: PermanentError(Reason.UNMAPPED_CARRIER_CODE, c) for i, c in enumerate(codes) if "REJ" in c
        }
        if rejected:  # found before writing anything: the runner routes them and runs the rest again
            raise RecordsFailed(rejected)
        await self._effects(conn, contexts)

    async def _effects(self, conn: Any, contexts: Sequence[HandlerContext]) -> None:
        # one statement for the whole batch: what a batch handler is for
        await conn.execute(
            "INSERT INTO effects(event_id, code) SELECT * FROM unnest($1::text[], $2::text[])",
            [ctx.envelope.id for ctx in contexts if ctx.envelope is not None],
            [ctx.payload.status_code for ctx in contexts],
        )
        for ctx in contexts:  # to the payload's own topic (the raw one), through the outbox
            await ctx.emit(ctx.payload.model_copy(update={"description": "seen"}))

    async def send(self, events: list[Any], partition: int) -> None:
        assert self.producer is not None
        for e in events:
            await self.producer.send_and_wait(
                self.source,
                encode_event(e),
                key=e.subject.encode(),
                partition=partition,
                headers=headers_for(e),
            )

    @property
    def queued(self) -> int:
        assert self.runner is not None
        return self.runner.queued

    async def effects(self, prefix: str) -> list[tuple[str, str]]:
        rows = await self.pool.fetch(
            "SELECT event_id, code FROM effects WHERE code LIKE $1 ORDER BY seq", prefix + "%"
        )
        return [(r["event_id"], r["code"]) for r in rows]

    async def stop(self) -> None:
        for gate in self.gates.values():
            gate.set()
        if self.runner is not None:
            self.runner.stop()
        await asyncio.wait_for(self.tasks[-1], 30)
        self.tasks[0].cancel()
        if self.producer is not None:
            await self.producer.stop()
        await self.pool.close()


TENANT = f"t{secrets.token_hex(4)}"


def event(code: str, tracking: str, event_id: str | None = None) -> Any:
    payload = RawTrackingEvent(
        tracking_number=tracking, carrier="correios", status_code=code, occurred_at=datetime.now(UTC)
    )
    return new_event(payload, tenant_id=TENANT, source="/test", event_id=event_id)


@pytest.fixture(scope="module")
async def harness(
    kafka_bootstrap: str, database_url: str, kafka_idempotence: bool, topics: list[str]
) -> AsyncIterator[Harness]:
    h = Harness(kafka_bootstrap, database_url, kafka_idempotence)
    await h.start()
    yield h
    await h.stop()


async def test_the_batch_handler_gets_a_partition_batch_of_new_records_in_order(harness: Harness) -> None:
    harness.gates["B-GATE"] = gate = asyncio.Event()
    await harness.send([event("B-GATE", "B")], partition=0)
    await wait_until(lambda: ["B-GATE"] in harness.batches, message="the gate batch")
    # While the partition's worker is busy, what arrives waits in its queue: the next batch has it all.
    again = event("B-02", "B")
    following = [event("B-01", "B"), again, again, event("B-03", "B")]  # a duplicate inside the batch
    await harness.send(following, partition=0)
    await wait_until(lambda: harness.queued >= 4, message="the records queued behind the gate")
    gate.set()
    await wait_until(lambda: harness.effects("B-03"), message="the batch after the gate")
    assert [c for _, c in await harness.effects("B-")] == ["B-GATE", "B-01", "B-02", "B-03"]
    assert ["B-01", "B-02", "B-03"] in harness.batches  # one batch, in offset order, the duplicate skipped
    assert not [c for c in harness.per_record if c.startswith("B-")]
    async with TopicReader(harness.settings.kafka_bootstrap_servers, TRACKING_RAW) as reader:
        key = f"{TENANT}/B".encode()
        seen = await reader.wait_for(lambda r: r.key == key and b'"seen"' in r.value, count=4)
    emitted = [decode_event(r.value)[1] for r in seen]
    assert [e.status_code for e in emitted] == ["B-GATE", "B-01", "B-02", "B-03"]  # type: ignore[attr-defined]


async def test_a_failing_record_sends_its_batch_to_the_isolated_path(harness: Harness) -> None:
    harness.gates["F-GATE"] = gate = asyncio.Event()
    await harness.send([event("F-GATE", "F")], partition=1)
    await wait_until(lambda: ["F-GATE"] in harness.batches, message="the gate batch")
    poison = event("PERM-F", "F")
    await harness.send([event("F-01", "F"), poison, event("F-02", "F")], partition=1)
    await wait_until(lambda: harness.queued >= 3, message="the records queued behind the gate")
    gate.set()
    await wait_until(lambda: harness.effects("F-02"), message="the neighbour after the poison")
    assert [c for _, c in await harness.effects("F-")] == ["F-GATE", "F-01", "F-02"]
    assert ["F-01", "PERM-F", "F-02"] in harness.batches  # the batch handler failed on it ...
    assert harness.per_record[-3:] == ["F-01", "PERM-F", "F-02"]  # ... and each record went alone
    async with TopicReader(harness.settings.kafka_bootstrap_servers, dlq_topic(harness.service)) as reader:
        [dead] = await reader.wait_for(lambda r: r.value == encode_event(poison))
    assert dict(dead.headers)["rastro-dlq-error-class"] == b"unmapped_carrier_code"


async def test_partitions_are_handled_concurrently(harness: Harness) -> None:
    harness.gates["C-GATE"] = gate = asyncio.Event()
    await harness.send([event("C-GATE", "C1"), event("C-AFTER", "C1")], partition=2)
    await wait_until(lambda: any("C-GATE" in b for b in harness.batches), message="partition 2 held")
    await harness.send([event("C-OTHER", "C0")], partition=0)  # another partition: not held up
    await wait_until(lambda: harness.effects("C-OTHER"), message="the other partition committed")
    assert not await harness.effects("C-GATE") and not await harness.effects("C-AFTER")
    gate.set()
    await wait_until(lambda: harness.effects("C-AFTER"), message="the held partition, in order")
    assert [c for _, c in await harness.effects("C-")] == ["C-OTHER", "C-GATE", "C-AFTER"]


async def test_records_failed_before_any_write_are_routed_and_the_rest_stays_a_batch(
    harness: Harness,
) -> None:
    harness.gates["R-GATE"] = gate = asyncio.Event()
    await harness.send([event("R-GATE", "R")], partition=1)
    await wait_until(lambda: ["R-GATE"] in harness.batches, message="the gate batch")
    rejected = event("R-REJ", "R")
    await harness.send([event("R-01", "R"), rejected, event("R-02", "R")], partition=1)
    await wait_until(lambda: harness.queued >= 3, message="the records queued behind the gate")
    gate.set()
    await wait_until(lambda: harness.effects("R-02"), message="the neighbour after the rejected one")
    assert [c for _, c in await harness.effects("R-")] == ["R-GATE", "R-01", "R-02"]
    assert harness.batches[-2:] == [["R-01", "R-REJ", "R-02"], ["R-01", "R-02"]]
    assert not [c for c in harness.per_record if c.startswith("R-")]  # no record-by-record redo
    async with TopicReader(harness.settings.kafka_bootstrap_servers, dlq_topic(harness.service)) as reader:
        [dead] = await reader.wait_for(lambda r: r.value == encode_event(rejected))
    assert dict(dead.headers)["rastro-dlq-error-class"] == b"unmapped_carrier_code"
    # out of the inbox, as a rolled-back savepoint would leave it: a replay of it is not a duplicate
    claimed = await harness.pool.fetchval("SELECT count(*) FROM inbox WHERE event_id = $1", rejected.id)
    assert claimed == 0
