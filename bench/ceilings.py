"""Ceilings (DESIGN §12): what the bare client does on the same broker, records and partitions.

- ``broker_produce``: raw produce rate with the kit's producer settings (``linger_ms=5``, acks=all),
  ``send`` per record and the futures of each batch awaited together — the ceiling of HTTP ingest.
- ``passthrough``: a consumer group that reads the records with ``getmany`` and produces one record
  each to another topic, then commits — no decoding, no database — the ceiling of one service.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaProducer, ConsumerRebalanceListener
from backing import Backing
from results import Result
from workload import Record

from rastro_kit.kafka import make_consumer, make_producer
from rastro_kit.settings import KitSettings

__all__ = ["broker_produce", "kit_settings", "passthrough", "produce_all"]


def kit_settings(backing: Backing, **extra: Any) -> KitSettings:
    return KitSettings(
        kafka_bootstrap_servers=backing.bootstrap,
        kafka_idempotence=backing.idempotence,
        service_name="bench",
        **extra,
    )


async def produce_all(
    producer: AIOKafkaProducer,
    topic: str,
    records: Sequence[Record],
    batch: int = 1000,
    latencies_ms: list[float] | None = None,
) -> dict[str, int]:
    """Send ``records`` batch by batch (each batch's futures awaited together).

    Returns each event id's record timestamp (the producer's create time, in ms)."""
    stamps: dict[str, int] = {}
    for start in range(0, len(records), batch):
        chunk = records[start : start + batch]
        futures = []
        for r in chunk:
            sent_at = time.perf_counter()
            future = await producer.send(topic, r.value, key=r.key, headers=r.headers)
            if latencies_ms is not None:
                future.add_done_callback(
                    lambda _f, t=sent_at: latencies_ms.append((time.perf_counter() - t) * 1000)
                )
            futures.append(future)
        for r, meta in zip(chunk, await asyncio.gather(*futures), strict=True):
            stamps[r.event_id] = meta.timestamp
    return stamps


async def broker_produce(backing: Backing, records: Sequence[Record], topic: str, batch: int) -> Result:
    producer = make_producer(kit_settings(backing))
    await producer.start()
    try:
        await produce_all(producer, topic, records[: min(len(records), batch)], batch)  # metadata, warm-up
        latencies: list[float] = []
        started, cpu = time.perf_counter(), time.process_time()
        await produce_all(producer, topic, records, batch, latencies)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    finally:
        await producer.stop()
    return Result(
        "broker_produce",
        len(records),
        seconds,
        latencies,
        note=f"aiokafka send per record, futures awaited per {batch}; latency = send → ack",
        is_ceiling=True,
        cpu_s=cpu,
    )


class _Assigned(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self) -> None:
        self.at: float | None = None
        self.event = asyncio.Event()

    async def on_partitions_revoked(self, revoked: Any) -> None:
        return None

    async def on_partitions_assigned(self, assigned: Any) -> None:
        if assigned and self.at is None:
            self.at = time.time()
            self.event.set()


async def passthrough(
    backing: Backing,
    records: Sequence[Record],
    topics: tuple[str, str],
    group: str,
    max_records: int,
    timeout_s: float,
) -> Result:
    source, sink = topics
    settings = kit_settings(backing, max_poll_records=max_records)
    producer = make_producer(settings)
    await producer.start()
    consumer = make_consumer(settings, group_id=group)
    listener = _Assigned()
    try:
        await produce_all(producer, source, records)
        consumer.subscribe(topics=[source], listener=listener)
        await consumer.start()
        out: list[tuple[int, int]] = []  # (input timestamp, output timestamp)
        give_up = time.monotonic() + timeout_s
        cpu = time.process_time()
        while len(out) < len(records):
            if time.monotonic() > give_up:
                raise TimeoutError(f"passthrough moved {len(out)} of {len(records)} records")
            batches = await consumer.getmany(timeout_ms=500, max_records=max_records)
            if not batches:
                continue
            sent = []
            for recs in batches.values():
                for r in recs:
                    sent.append(
                        (r.timestamp, await producer.send(sink, r.value, key=r.key, headers=list(r.headers)))
                    )
            metas = await asyncio.gather(*(f for _, f in sent))
            await consumer.commit({tp: recs[-1].offset + 1 for tp, recs in batches.items()})
            out.extend((ts, m.timestamp) for (ts, _), m in zip(sent, metas, strict=True))
        cpu = time.process_time() - cpu
    finally:
        await consumer.stop()
        await producer.stop()
    assert listener.at is not None
    t0_ms = listener.at * 1000
    end_ms = max(o for _, o in out)
    latencies = [o - max(i, t0_ms) for i, o in out]
    return Result(
        "passthrough",
        len(records),
        (end_ms - t0_ms) / 1000,
        latencies,
        note="records pre-produced; clock starts when the group has its partitions; "
        "latency = max(produce, start) → output record",
        is_ceiling=True,
        cpu_s=cpu,
    )
