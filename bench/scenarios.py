"""The services under load, each in-process through its own composition root (``build_app``).

- ``ingest_http_batch``: real HTTP (uvicorn + httpx) ``POST /v1/events`` batches, timed from the first
  request to the last event's record on ``rastro.tracking.raw.v1`` (the outbox relay's publish).
- ``normalization``: pre-produced raw events consumed by the service until every one has its
  ``rastro.tracking.normalized.v1`` record, timed from the moment the group has its partitions.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Sequence
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from backing import Backing, create_topics, delete_topics
from ceilings import kit_settings, produce_all
from pydantic import SecretStr
from readback import Seen, TopicTail, true_end_offsets
from results import Result
from workload import Record, http_bodies

from rastro_events.topics import ETA, ORDERS, TRACKING_NORMALIZED, TRACKING_RAW, replay_topic, retry_topic
from rastro_ingest.app import build_app as build_ingest
from rastro_ingest.settings import IngestSettings
from rastro_kit.kafka import make_producer
from rastro_kit.testing import serve_app, wait_until
from rastro_normalization.app import build_app as build_normalization
from rastro_normalization.settings import NormalizationSettings

__all__ = ["ingest_http_batch", "normalization"]

_JSON = {"Content-Type": "application/json"}


# -- ingest ---------------------------------------------------------------------------------------------


async def _tenant(client: httpx.AsyncClient, admin: dict[str, str], tenant: str, key: bool) -> str | None:
    r = await client.post("/v1/tenants", json={"id": tenant, "name": "Benchmark shop"}, headers=admin)
    r.raise_for_status()
    if not key:
        return None
    r = await client.post(
        f"/v1/tenants/{tenant}/keys",
        headers=admin,
        json={"name": "bench", "scopes": ["events:write"], "environment": "sandbox"},
    )
    r.raise_for_status()
    return str(r.json()["key"])


async def _post_all(
    client: httpx.AsyncClient,
    bodies: Sequence[bytes],
    headers: dict[str, str],
    concurrency: int,
    params: dict[str, str] | None = None,
) -> list[float]:
    queue = list(reversed(bodies))
    latencies: list[float] = []

    async def worker() -> None:
        while queue:
            body = queue.pop()
            started = time.perf_counter()
            r = await client.post("/v1/events", content=body, headers=headers, params=params)
            latencies.append((time.perf_counter() - started) * 1000)
            if r.status_code != 202:
                raise RuntimeError(f"POST /v1/events answered {r.status_code}: {r.text[:300]}")

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies


async def _warm_up(
    client: httpx.AsyncClient, app: Any, admin: dict[str, str], tenant: str, bodies: Sequence[bytes]
) -> None:
    """Not timed: first requests pay for pydantic schemas, pool connections and topic metadata."""
    relay = app.state.runtime.relay
    before = relay.published
    await _post_all(client, bodies, admin | _JSON, len(bodies), params={"tenant": tenant})
    count = sum(len(json.loads(b)["events"]) for b in bodies)
    await wait_until(lambda: relay.published >= before + count, timeout=60, message="warm-up published")


async def ingest_http_batch(
    backing: Backing,
    events: list[dict[str, Any]],
    run_id: str,
    *,
    batch: int,
    concurrency: int,
    timeout_s: float,
) -> Result:
    admin_key = f"rk_admin_{secrets.token_hex(12)}"
    settings = IngestSettings(
        kafka_bootstrap_servers=backing.bootstrap,
        database_url=backing.database_url,
        kafka_idempotence=backing.idempotence,
        admin_api_key=SecretStr(admin_key),
    )
    tenant, warm = f"bench-{run_id}-i", f"bench-{run_id}-w"
    bodies = http_bodies(events, batch)
    app = build_ingest(settings)
    limits = httpx.Limits(max_connections=concurrency + 2)
    async with serve_app(app) as url, httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:
        admin = {"Authorization": f"Bearer {admin_key}"}
        key = await _tenant(client, admin, tenant, key=True)
        await _tenant(client, admin, warm, key=False)
        await _warm_up(client, app, admin, warm, bodies[:2])
        tail = TopicTail(backing.bootstrap, TRACKING_RAW, f"{tenant}/".encode())
        await tail.start()
        try:
            started, cpu = time.time(), time.process_time()
            headers = {"Authorization": f"Bearer {key}"} | _JSON
            latencies = await _post_all(client, bodies, headers, concurrency)
            accepted_s = time.time() - started
            seen = await tail.wait_for(len(events), timeout_s)
            cpu = time.process_time() - cpu
        finally:
            await tail.stop()
    seconds = max(s.timestamp_ms for s in seen) / 1000 - started
    return Result(
        "ingest_http_batch",
        len(events),
        seconds,
        latencies,
        note=f"{len(bodies)} requests of {batch} events, {concurrency} in flight; "
        "latency = one request (202 after the outbox insert); "
        f"all accepted after {accepted_s:.2f} s, all published after {seconds:.2f} s",
        cpu_s=cpu,
    )


# -- normalization --------------------------------------------------------------------------------------


async def _pin_group_at_end(bootstrap: str, group: str, topics: Sequence[str]) -> dict[TopicPartition, int]:
    """Commit the group's offsets at the topics' ends, so it reads only what this run produces next."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer.topics()
        tps = [TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or ())]
        consumer.assign(tps)
        ends = await true_end_offsets(consumer, tps)
        await consumer.commit(ends)
        return ends
    finally:
        await consumer.stop()


async def _check_committed(bootstrap: str, group: str, starts: dict[TopicPartition, int], count: int) -> None:
    """The group's offsets on the raw topic moved past every record this run produced."""
    raw = [tp for tp in starts if tp.topic == TRACKING_RAW]
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        moved = 0
        for tp in raw:
            moved += (await consumer.committed(tp) or 0) - starts[tp]
    finally:
        await consumer.stop()
    if moved < count:
        raise RuntimeError(f"normalization committed offsets for {moved} of {count} records")


def _latencies(seen: Sequence[Seen], produced_ms: dict[str, int], t0_ms: float) -> list[float]:
    out = []
    for s in seen:
        raw_id = json.loads(s.value)["data"]["raw_event_id"]
        out.append(s.timestamp_ms - max(produced_ms[raw_id], t0_ms))
    return out


async def _run_normalization(
    backing: Backing, settings: NormalizationSettings, tenant: str, count: int, timeout_s: float
) -> tuple[float, float, list[Seen]]:
    """Start the service, wait for ``count`` normalized records of ``tenant``; (start, CPU s, records)."""
    tail = TopicTail(backing.bootstrap, TRACKING_NORMALIZED, f"{tenant}/".encode())
    await tail.start()
    app = build_normalization(settings)
    try:
        async with serve_app(app):
            await asyncio.wait_for(app.state.runtime.runners[0].assigned.wait(), 60)
            t0, cpu = time.time(), time.process_time()
            seen = await tail.wait_for(count, timeout_s)
            return t0, time.process_time() - cpu, seen
    finally:
        await tail.stop()


async def normalization(
    backing: Backing, records: list[Record], tenant: str, run_id: str, *, max_records: int, timeout_s: float
) -> Result:
    # A service name of its own: its consumer group, schema and retry tiers are this run's alone, so a
    # shared broker's history (or a running normalization service) never mixes in.
    service = f"normalization-bench-{run_id}"
    own_topics = [replay_topic(service), *(retry_topic(service, n) for n in (1, 2, 3))]
    settings = NormalizationSettings(
        kafka_bootstrap_servers=backing.bootstrap,
        database_url=backing.database_url,
        kafka_idempotence=backing.idempotence,
        admin_api_key=SecretStr(f"rk_admin_{secrets.token_hex(12)}"),
        max_poll_records=max_records,
        service_name=service,
    )
    await create_topics(backing.bootstrap, own_topics, backing.partitions)
    try:
        starts = await _pin_group_at_end(backing.bootstrap, service, [TRACKING_RAW, ORDERS, ETA, *own_topics])
        producer = make_producer(kit_settings(backing))
        await producer.start()
        try:
            produced_ms = await produce_all(producer, TRACKING_RAW, records)
        finally:
            await producer.stop()
        t0, cpu, seen = await _run_normalization(backing, settings, tenant, len(records), timeout_s)
        await _check_committed(backing.bootstrap, service, starts, len(records))
    finally:
        await delete_topics(backing.bootstrap, own_topics)
    return Result(
        "normalization",
        len(records),
        max(s.timestamp_ms for s in seen) / 1000 - t0,
        _latencies(seen, produced_ms, t0 * 1000),
        note="records pre-produced; clock starts when the group has its partitions; "
        "latency = max(produce, start) → normalized record",
        cpu_s=cpu,
    )
