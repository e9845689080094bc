"""The dispatcher's durability and caps against a real Postgres and a real receiver (no broker needed).

Each test has its own schema (the ``pool`` fixture); messages are queued with the same repository call
the consumer uses.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from rastro_kit.db import create_pool
from rastro_kit.testing import wait_until
from rastro_notification.adapters import delivery_queue as dq
from rastro_notification.adapters import repository as repo
from rastro_notification.adapters.delivery_queue import _HEALTH
from rastro_notification.dispatcher import Dispatcher
from rastro_notification.domain.signing import generate_secret
from rastro_notification.settings import NotificationSettings

pytestmark = pytest.mark.integration

Settings = Callable[..., NotificationSettings]  # the ``settings`` fixture (conftest)


async def queue(pool: Any, endpoint: Any, count: int = 1) -> str:
    endpoint.secret = generate_secret()
    sub = await repo.insert_subscription(
        pool,
        tenant_id="acme",
        url=endpoint.url,
        event_types=["*"],
        description=None,
        secret=endpoint.secret,
        enabled=True,
    )
    async with pool.acquire() as conn, conn.transaction():
        for i in range(count):
            body = (
                b'{"type":"tracking.delivered","timestamp":"2026-11-23T14:05:11-03:00","data":{"n":%d}}' % i
            )
            await repo.insert_messages(
                conn,
                [sub.id],
                tenant_id="acme",
                event_id=f"evt{i}",
                event_type="tracking.delivered",
                ordering_key=f"acme/T{i}",
                body=body,
            )
    return sub.id


async def statuses(pool: Any) -> list[str]:
    return [r["status"] for r in await pool.fetch("SELECT status FROM messages ORDER BY seq")]


async def test_a_claim_in_flight_when_the_process_died_is_sent_again(
    pool: tuple[Any, str], settings: Settings, receiver: Any
) -> None:
    db = pool[0]
    endpoint = receiver.endpoint("hang")
    await queue(db, endpoint)
    lease = 1.5
    first = Dispatcher(
        settings(RASTRO_NOTIFICATION_REQUEST_TIMEOUT_S=1, RASTRO_NOTIFICATION_CLAIM_LEASE_S=lease)
    )
    dying = asyncio.create_task(first.serve(db))
    await wait_until(lambda: endpoint.requests, message="first attempt in flight")
    dying.cancel()  # the process dies mid-send: nothing is recorded, nothing released
    await asyncio.gather(dying, return_exceptions=True)

    second = Dispatcher(settings())
    task = asyncio.create_task(second.serve(db))
    try:
        await wait_until(
            lambda: len(endpoint.requests) == 2, timeout=10, message="sent again after the lease"
        )
        await wait_until(lambda: _delivered(db), message="delivered")
    finally:
        await second.stop()
        await task
    first_try, second_try = endpoint.requests
    assert first_try.webhook_id == second_try.webhook_id and second_try.verified
    assert second_try.at - first_try.at >= lease * 0.9  # not before the dead claim's lease ran out
    rows = await db.fetch("SELECT attempt_number, outcome FROM attempts")
    assert [(r["attempt_number"], r["outcome"]) for r in rows] == [(1, "delivered")]


async def _delivered(db: Any) -> bool:
    return await statuses(db) == ["delivered"]


async def test_a_clean_stop_gives_unfinished_claims_back_at_once(
    pool: tuple[Any, str], settings: Settings, receiver: Any
) -> None:
    db = pool[0]
    endpoint = receiver.endpoint("hang")
    await queue(db, endpoint)
    first = Dispatcher(settings(RASTRO_NOTIFICATION_CLAIM_LEASE_S=300), grace_s=0.1)
    task = asyncio.create_task(first.serve(db))
    await wait_until(lambda: endpoint.requests, message="first attempt in flight")
    await first.stop()
    await task
    assert (await db.fetchrow("SELECT leased_until, claim_id FROM messages")) == (None, None)

    started = time.monotonic()
    second = Dispatcher(settings())
    task = asyncio.create_task(second.serve(db))
    try:
        await wait_until(lambda: _delivered(db), timeout=10, message="delivered by the next instance")
    finally:
        await second.stop()
        await task
    assert time.monotonic() - started < 10  # far sooner than the 300 s lease
    assert len(endpoint.requests) == 2


async def test_the_per_endpoint_cap_holds_across_instances(
    pool: tuple[Any, str], settings: Settings, receiver: Any
) -> None:
    db = pool[0]
    endpoint = receiver.endpoint(then="hang")
    await queue(db, endpoint, count=10)
    dispatchers = [Dispatcher(settings(RASTRO_NOTIFICATION_PER_ENDPOINT_CONCURRENCY=3)) for _ in range(2)]
    tasks = [asyncio.create_task(d.serve(db)) for d in dispatchers]
    try:
        await wait_until(lambda: len(endpoint.requests) >= 3, message="cap reached")
        # Both instances keep looking (they poll every 0.2 s); none may go past the cap.
        rounds = [d.claim_rounds for d in dispatchers]
        await wait_until(
            lambda: all(d.claim_rounds >= r + 3 for d, r in zip(dispatchers, rounds, strict=True)),
            message="several more claim rounds",
        )
        assert len(endpoint.requests) == 3
        endpoint.open_gate()
        await wait_until(lambda: len(endpoint.requests) == 10, message="the rest")
        await wait_until(lambda: _all_delivered(db, 10), message="all delivered")
    finally:
        endpoint.open_gate()
        for d in dispatchers:
            await d.stop()
        await asyncio.gather(*tasks)
    assert len({r.webhook_id for r in endpoint.requests}) == 10


async def _all_delivered(db: Any, count: int) -> bool:
    return await statuses(db) == ["delivered"] * count


async def test_the_dispatcher_rides_out_lost_database_connections(
    pool: tuple[Any, str], settings: Settings, receiver: Any, database_url: str
) -> None:
    db, service = pool
    own = await create_pool(database_url, service, application_name=f"{service}-dispatcher")
    dispatcher = Dispatcher(settings())
    task = asyncio.create_task(dispatcher.serve(own))
    try:
        first = receiver.endpoint()
        await queue(db, first)
        await wait_until(lambda: first.requests, message="delivery before the outage")
        # Recorded before the outage: an attempt whose record the outage cuts off is only sent again
        # when its lease runs out (test_a_claim_in_flight_when_the_process_died_is_sent_again).
        await wait_until(lambda: _all_delivered(db, 1), message="first delivery recorded")
        killed = await db.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1",
            f"{service}-dispatcher",
        )
        assert killed >= 1
        second = receiver.endpoint()
        await queue(db, second)  # its NOTIFY may be lost with the LISTEN connection: polling finds it
        await wait_until(lambda: second.requests, timeout=15, message="delivery after the outage")
        await wait_until(lambda: _all_delivered(db, 2), message="both recorded")
    finally:
        await dispatcher.stop()
        await task
        await own.close()


async def test_recording_attempts_never_blocks_the_consumer_queueing_messages(pool: tuple[Any, str]) -> None:
    """The recorder locks the endpoints' rows for their health while the consumer inserts messages that
    reference them (a foreign key: KEY SHARE locks, in its own order). FOR UPDATE there deadlocked the two
    under load; the recorder's lock must not conflict with the foreign key's at all."""
    db = pool[0]
    sub = await repo.insert_subscription(
        db,
        tenant_id="acme",
        url="https://hooks.example.com/in",
        event_types=["*"],
        description=None,
        secret=generate_secret(),
        enabled=True,
    )
    async with db.acquire() as recorder, recorder.transaction():
        assert [r["id"] for r in await recorder.fetch(_HEALTH, [sub.id])] == [sub.id]
        async with db.acquire() as consumer, consumer.transaction():
            await consumer.execute("SET LOCAL lock_timeout = '2s'")  # blocked would fail here, not hang
            queued = await repo.insert_messages(
                consumer,
                [sub.id],
                tenant_id="acme",
                event_id="evt-lock",
                event_type="tracking.delivered",
                ordering_key="acme/T-lock",
                body=b"{}",
            )
    assert queued == 1


@pytest.mark.parametrize("statistics", ["quiet queue", "none"])
async def test_a_claim_reads_what_it_can_claim_not_the_backlog_whatever_the_statistics(
    pool: tuple[Any, str], receiver: Any, statistics: str
) -> None:
    """A backlog of 10,000 messages builds up (an outage) on statistics taken while nothing was pending
    (autovacuum on a healthy system), or on none yet (a fresh queue). Plans made on them — generic ones,
    as the services' cached statements use — must still claim by index per subscription: a claim reads
    about what it can claim (8 heads for each of 100 subscriptions), not the backlog. With the index
    notification's migration 0007 dropped, the same claim read 14.5 million buffers (43 s). (With bitmap
    scans allowed, ``bench/dispatcher_bench.py``'s fresh queue had claims read 18,000; not reproduced
    here.)"""
    p, _ = pool
    subs = [await queue(p, receiver.endpoint()) for _ in range(100)]
    backlog = (
        "INSERT INTO messages (id, subscription_id, tenant_id, event_id, event_type, ordering_key, body,"
        " status) SELECT 'msg_' || $2 || s.n || '_' || g, s.id, 'acme', $2 || g, 'tracking.delivered',"
        " 'acme/B' || (g % 20), repeat('x', 900), $3"
        " FROM unnest($1::text[]) WITH ORDINALITY AS s(id, n), generate_series(1, $4) AS g"
    )
    if statistics == "quiet queue":
        await p.execute("UPDATE messages SET status = 'delivered'")
        await p.execute(backlog, subs, "done", "delivered", 50)  # history
        await p.execute("ANALYZE messages")
    await p.execute(backlog, subs, "late", "pending", 100)  # 10,000 waiting, ~1,300 pages
    async with p.acquire() as conn:
        await conn.execute("SET plan_cache_mode = force_generic_plan")
        async with conn.transaction():
            await conn.execute(dq._CLAIM_TRANSACTION)  # as claim_due runs them
            candidates = await _plan(
                conn, dq._CANDIDATES, "int, int, int, text[], int[]", "64, 8, 2147483647, '{}', '{}'"
            )
            ids = [r["id"] for r in await conn.fetch(dq._CANDIDATES, 64, 8, 2**31 - 1, [], [])]
            assert len(ids) == 64
            lease = await _plan(conn, dq._LEASE, "text[], float8, text", f"ARRAY{ids!r}, 30, 'clm_t'")
        next_due = await _plan(conn, dq._NEXT_DUE, "", "")
    assert _buffers(candidates) < 10_000, candidates  # one scan of the backlog per subscription: 130,000
    assert 0 <= _buffers(lease, "LockRows") < 500, lease  # finding the 64 rows, not updating their indexes
    assert _buffers(next_due) < 1_000, next_due  # ~2 per subscription


async def _plan(conn: Any, sql: str, types: str, args: str) -> dict[str, Any]:
    """The executed plan of ``sql``'s generic plan (``plan_cache_mode`` set by the caller)."""
    await conn.execute(f"PREPARE probe{f'({types})' if types else ''} AS {sql}")
    try:
        plan = await conn.fetchval(
            f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) EXECUTE probe{f'({args})' if args else ''}"
        )
    finally:
        await conn.execute("DEALLOCATE probe")
    return dict(json.loads(plan)[0]["Plan"])


def _buffers(node: dict[str, Any], node_type: str | None = None) -> int:
    """Shared buffers a plan node read (the first node of ``node_type``, else the whole plan)."""
    if node_type is None or node["Node Type"] == node_type:
        return int(node["Shared Hit Blocks"]) + int(node["Shared Read Blocks"])
    for child in node.get("Plans", []):
        found = _buffers(child, node_type)
        if found >= 0:
            return found
    return -1
