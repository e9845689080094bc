"""The batch path against the per-record path, over a real Postgres.

The same records go through two consumer runners, each on its own schema: one with normalization's
batch handler, all the records in one partition batch (one transaction, set-based), and one with the
per-type handlers only, one record per transaction. Shipments, timelines and the events written to the
outbox (dead letters included) must come out the same. Also: the in-process shipment cache never
serves a write that was rolled back, nor one another writer replaced.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any

import pytest
from aiokafka.structs import ConsumerRecord, TopicPartition

from rastro_events import (
    InvoiceIssued,
    OrderCreated,
    OrderShipped,
    Payload,
    RawTrackingEvent,
    Status,
    encode_event,
    headers_for,
    new_event,
)
from rastro_events.topics import ORDERS, TRACKING_RAW
from rastro_kit.consumer import ConsumerRunner, HandlerContext
from rastro_kit.db import apply_migrations, create_pool
from rastro_normalization.adapters import repository as repo
from rastro_normalization.domain.timeline import TimelineEntry
from rastro_normalization.handlers import BATCH_HANDLER, HANDLERS
from rastro_normalization.settings import NormalizationSettings

pytestmark = pytest.mark.integration
MIGRATIONS = ("rastro_normalization.migrations",)
SHIPMENT_COLUMNS = (
    "tracking_number, status, substatus, carrier, service, order_id, origin, destination, promised_date,"
    " created_at, shipped_at, delivered_at, status_since"
)
ENTRY_COLUMNS = (
    "tracking_number, event_id, carrier, service, status_code, status, substatus, description,"
    " descriptions, occurred_at, occurred_at_local, location, effect"
)


class Path:
    """One consumer runner on its own schema; ``batch`` decides which path it takes."""

    def __init__(self, pool: Any, schema: str, batch: bool) -> None:
        self.pool, self.schema, self.batch = pool, schema, batch
        self.batch_sizes: list[int] = []

        async def counted(conn: Any, contexts: Sequence[HandlerContext]) -> None:
            self.batch_sizes.append(len(contexts))
            await BATCH_HANDLER(conn, contexts)

        self.runner = ConsumerRunner(
            service="normalization",
            group_id="normalization",
            topics=[TRACKING_RAW, ORDERS],
            pool=pool,
            consumer_factory=lambda **_: None,  # never started: batches are fed in directly
            handlers=HANDLERS,
            batch_handler=counted if batch else None,
            retry_delays_s=NormalizationSettings().retry_delays_s,
        )

    async def feed(self, records: list[ConsumerRecord[bytes, bytes]]) -> None:
        """All in one partition batch (batch path), or one record per transaction (per-record path)."""
        tp = TopicPartition(TRACKING_RAW, 0)
        if self.batch:
            assert await self.runner._commit_batch(tp, records) is not None
            return
        for record in records:
            assert await self.runner._commit_batch(tp, [record]) is not None

    async def state(self, tenant: str) -> dict[str, Any]:
        async with self.pool.acquire() as conn:
            shipments = await conn.fetch(
                f"SELECT {SHIPMENT_COLUMNS} FROM shipments WHERE tenant_id = $1 ORDER BY tracking_number",
                tenant,
            )
            entries = await conn.fetch(
                f"SELECT {ENTRY_COLUMNS} FROM timeline_entries WHERE tenant_id = $1"
                " ORDER BY tracking_number, event_id",
                tenant,
            )
            outbox = await conn.fetch(
                "SELECT topic, key, value, header_names, header_values FROM outbox"
                " WHERE key LIKE $1 ORDER BY id",
                f"{tenant}/".encode() + b"%",
            )
        events: dict[tuple[str, bytes], list[Any]] = {}
        for row in outbox:  # the order that counts: per topic and key (per partition)
            events.setdefault((row["topic"], row["key"]), []).append(_comparable(row))
        return {
            "shipments": [dict(r) for r in shipments],
            "timeline": [dict(r) for r in entries],
            "events": events,
        }


def _comparable(row: Any) -> Any:
    """An outbox row without what is new on every run (the emitted event's id and time)."""
    headers = dict(zip(row["header_names"], row["header_values"], strict=True))
    if "rastro-dlq-error-class" in headers:
        return ("dead letter", row["value"], headers["rastro-dlq-error-class"])
    envelope = json.loads(row["value"])
    return (envelope["type"], envelope["subject"], envelope["source"], envelope["data"])


@pytest.fixture(scope="module")
async def paths(database_url: str) -> AsyncIterator[tuple[Path, Path]]:
    suffix = secrets.token_hex(3)
    made = []
    for batch in (True, False):
        schema = f"norm_{'batch' if batch else 'single'}_{suffix}"
        pool = await create_pool(database_url, schema, max_size=2)
        await apply_migrations(pool, schema, MIGRATIONS)
        made.append(Path(pool, schema, batch))
    yield made[0], made[1]
    for path in made:
        await path.pool.close()


class Feed:
    """Records as ingest publishes them, numbered in partition order."""

    def __init__(self, tenant: str) -> None:
        self.tenant, self.offset = tenant, 0

    def __call__(self, payload: Payload, event_id: str | None = None) -> ConsumerRecord[bytes, bytes]:
        envelope = new_event(payload, tenant_id=self.tenant, source="/test", event_id=event_id)
        self.offset += 1
        value = encode_event(envelope)
        key = envelope.subject.encode()
        topic = ORDERS if not isinstance(payload, RawTrackingEvent) else TRACKING_RAW
        return ConsumerRecord(
            topic, 0, self.offset, 0, 0, key, value, None, len(key), len(value), headers_for(envelope)
        )


def raw(number: str, code: str, at: str, **extra: Any) -> RawTrackingEvent:
    return RawTrackingEvent(
        tracking_number=number,
        carrier=extra.pop("carrier", "Correios"),
        service=extra.pop("service", "SEDEX"),
        status_code=code,
        occurred_at=datetime.fromisoformat(at),
        location=extra.pop("location", {"city": "São Paulo", "state": "SP", "country": "BR"}),
        **extra,
    )


async def both(paths: tuple[Path, Path], tenant: str, *batches: list[Any]) -> dict[str, Any]:
    """Feed every batch to both paths; the states must be equal. Returns the batch path's."""
    batched, single = paths
    for records in batches:
        await batched.feed(records)
        await single.feed(records)
    got, want = await batched.state(tenant), await single.state(tenant)
    async with batched.pool.acquire() as conn:  # folded afresh from the stored timeline: the same state
        for row in got["shipments"]:
            loaded = await repo.load_shipment(conn, tenant, row["tracking_number"])
            assert loaded is not None
            shipment = loaded[0]
            assert (shipment.status.value, shipment.substatus) == (row["status"], row["substatus"])
            assert (shipment.shipped_at, shipment.delivered_at) == (row["shipped_at"], row["delivered_at"])
            assert shipment.updated_at == row["status_since"]
    assert got["shipments"] == want["shipments"]
    assert got["timeline"] == want["timeline"]
    assert got["events"] == want["events"]
    return got


def _topic_counts(state: dict[str, Any]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for (topic, _), events in state["events"].items():
        counts[topic] = counts.get(topic, 0) + len(events)
    return counts


async def test_duplicates_and_several_events_of_one_shipment_in_one_batch(paths: tuple[Path, Path]) -> None:
    tenant = f"eq{secrets.token_hex(4)}"
    feed = Feed(tenant)
    posted = feed(raw("AA100000000BR", "PO-01", "2026-11-20T09:00:00-03:00"))
    first = [
        posted,
        feed(raw("AA100000000BR", "RO-01", "2026-11-21T09:00:00-03:00")),
        posted,  # redelivered: the inbox skips it
        feed(raw("AA100000000BR", "RO-01", "2026-11-21T12:00:00Z")),  # the same carrier event, told again
        feed(raw("AB200000000BR", "OEC-01", "2026-11-22T08:00:00-03:00")),
        feed(raw("AB200000000BR", "PO-01", "2026-11-19T10:00:00-03:00")),  # older, arrives later
        feed(raw("AB200000000BR", "BDE-02", "2026-11-22T15:00:00-03:00")),
    ]
    second = [  # a later batch: the shipments are known (the batch path's cache) and move on
        feed(raw("AA100000000BR", "BDE-01", "2026-11-23T14:00:00-03:00")),
        feed(raw("AA100000000BR", "EST-01", "2026-11-23T15:00:00-03:00")),  # withdraws the delivery
        feed(raw("AB200000000BR", "OEC-01", "2026-11-23T08:00:00-03:00")),
        feed(raw("AB200000000BR", "BDE-01", "2026-11-23T11:00:00-03:00")),
        feed(raw("AB200000000BR", "RO-01", "2026-11-21T11:00:00-03:00")),  # late, joins the timeline
    ]
    state = await both(paths, tenant, first, second)
    batched = paths[0]
    assert max(batched.batch_sizes[-2:]) >= len(second)  # it really went through as a batch
    by_number = {s["tracking_number"]: s for s in state["shipments"]}
    assert by_number["AB200000000BR"]["status"] == "delivered"
    assert by_number["AA100000000BR"]["status"] == "in_transit"  # the delivery was withdrawn
    # one normalized event per accepted raw event: 12 records, 1 redelivery, 1 carrier duplicate
    assert _topic_counts(state)["rastro.tracking.normalized.v1"] == 10
    assert len(state["timeline"]) == 10


async def test_order_events_and_their_shipments_raw_events_in_one_batch(paths: tuple[Path, Path]) -> None:
    tenant = f"eq{secrets.token_hex(4)}"
    feed = Feed(tenant)
    at = datetime.fromisoformat
    batch = [
        feed(OrderCreated(order_id="PED-1", occurred_at=at("2026-11-19T08:00:00-03:00"))),
        feed(raw("OB100000000BR", "PO-01", "2026-11-20T09:00:00-03:00", order_id="PED-1")),
        feed(InvoiceIssued(order_id="PED-1", occurred_at=at("2026-11-19T12:00:00-03:00"))),
        feed(
            OrderShipped(
                order_id="PED-1",
                tracking_number="OB100000000BR",
                carrier="Correios",
                service="PAC",
                occurred_at=at("2026-11-19T18:00:00-03:00"),
                destination={"city": "Recife", "state": "PE", "country": "BR"},
            )
        ),
        feed(raw("OB100000000BR", "RO-01", "2026-11-21T09:00:00-03:00")),
        feed(InvoiceIssued(order_id="PED-1", occurred_at=at("2026-11-19T13:00:00-03:00"))),  # after shipping
        feed(raw("OB100000000BR", "OEC-01", "2026-11-22T09:00:00-03:00")),
    ]
    state = await both(paths, tenant, batch)
    [shipment] = state["shipments"]
    assert shipment["order_id"] == "PED-1" and shipment["service"] == "sedex"  # the carrier says last
    assert json.loads(shipment["destination"])["state"] == "PE"
    assert len(state["timeline"]) == 7  # four order milestones joined the three carrier events


async def test_a_failing_record_in_a_batch(paths: tuple[Path, Path]) -> None:
    tenant = f"eq{secrets.token_hex(4)}"
    feed = Feed(tenant)
    batch = [
        feed(raw("AC300000000BR", "PO-01", "2026-11-20T09:00:00-03:00")),
        feed(raw("AC300000000BR", "ZZZ-99", "2026-11-20T10:00:00-03:00")),  # unmapped: dead-lettered
        feed(raw("AD400000000BR", "PO-01", "2026-11-20T11:00:00-03:00", carrier="Pombo Correio")),
        feed(raw("AC300000000BR", "RO-01", "2026-11-21T09:00:00-03:00")),
    ]
    state = await both(paths, tenant, batch)
    assert paths[0].batch_sizes[-2:] == [4, 2]  # the failures were taken out, the rest stayed a batch
    dead = [e for events in state["events"].values() for e in events if e[0] == "dead letter"]
    assert sorted(d[2] for d in dead) == [b"unknown_carrier", b"unmapped_carrier_code"]
    assert [s["tracking_number"] for s in state["shipments"]] == ["AC300000000BR"]
    assert len(state["timeline"]) == 2  # the neighbours of the failures committed


async def test_the_shipment_cache_never_serves_a_rolled_back_or_replaced_write(
    paths: tuple[Path, Path],
) -> None:
    pool, tenant, number = paths[0].pool, f"eq{secrets.token_hex(4)}", "AE500000000BR"

    def entry(event_id: str, code: str, status: str, substatus: str, at: str) -> TimelineEntry:
        return TimelineEntry(
            event_id, "correios", code, Status(status), substatus, None, datetime.fromisoformat(at)
        )

    async def write(*entries: TimelineEntry, fail: bool = False) -> None:
        async with pool.acquire() as conn:
            try:
                async with conn.transaction():
                    batch = repo.ShipmentBatch(conn)
                    await batch.lock([(tenant, number)])
                    for e in entries:
                        batch.fold(tenant, number, e, {}, repo.ShipmentFacts(carrier="correios"))
                    await batch.flush()
                    if fail:
                        raise RuntimeError("rolled back after the write")
            except RuntimeError:
                pass

    async def loaded() -> tuple[str, ...]:
        """The event ids of the timeline a batch locks and folds into (nothing written)."""
        async with pool.acquire() as conn, conn.transaction():
            batch = repo.ShipmentBatch(conn)
            await batch.lock([(tenant, number)])
            probe = entry("probe", "XX-01", "exception", "exception.other", "2030-01-01T00:00:00Z")
            folded = batch.fold(tenant, number, probe, {}, repo.ShipmentFacts())
        assert folded is not None
        return tuple(e.event_id for e in folded.shipment.timeline if e.event_id != "probe")

    posted = entry("e1", "PO-01", "in_transit", "in_transit.picked_up", "2026-11-20T09:00:00-03:00")
    await write(posted)
    assert await loaded() == ("e1",)  # the committed write, from the cache
    moved = entry("e2", "RO-01", "in_transit", "in_transit.in_route", "2026-11-21T09:00:00-03:00")
    await write(moved, fail=True)  # cached, then rolled back
    assert await loaded() == ("e1",)
    async with pool.acquire() as conn:  # another writer: a new entry, and the revision it leaves
        await conn.execute(
            "INSERT INTO timeline_entries(tenant_id, tracking_number, event_id, carrier, status_code, status,"
            " substatus, occurred_at, occurred_at_local) VALUES ($1, $2, 'e3', 'correios', 'RO-01',"
            " 'in_transit', 'in_transit.in_route', '2026-11-22T12:00:00Z', '2026-11-22T09:00:00-03:00')",
            tenant,
            number,
        )
        await conn.execute(
            "UPDATE shipments SET revision = NULL WHERE tenant_id = $1 AND tracking_number = $2",
            tenant,
            number,
        )
    assert await loaded() == ("e1", "e3")
