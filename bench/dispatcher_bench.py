"""The webhook dispatcher alone: deliveries/s from a queued backlog to local endpoints (issue 7).

    uv run python bench/dispatcher_bench.py [--messages 10000] [--endpoints 100] [--per-shipment 4]

Queues ``--messages`` pending messages (``--per-shipment`` events per shipment, so per-shipment ordering
is exercised) for ``--endpoints`` subscriptions in a fresh schema on ``DATABASE_URL`` (else an embedded
Postgres), then runs one ``Dispatcher`` in this process until every message is delivered. The receiver
runs in a child process (uvicorn, answers 204), so its CPU is not the dispatcher's. No broker is needed.

Figures: deliveries/s over the drain and CPU µs per delivery of this process, beside a ceiling measured
in the same run — the same number of bare POSTs (same bodies, same concurrency, no database, no
signing) to the same receiver with the same HTTP client —, and a second, live run where messages are
queued at ``--rate`` per second while the dispatcher runs, giving the queue → delivered latency
(p50/p99). Results: ``bench/results/dispatcher-<date>.md`` / ``.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import subprocess
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

from backing import started_database
from results import percentile

from rastro_kit.db import apply_migrations, create_pool
from rastro_kit.logs import configure_logging
from rastro_kit.testing import free_port, wait_until
from rastro_notification.adapters import repository as repo
from rastro_notification.adapters.webhook_sender import new_webhook_session
from rastro_notification.dispatcher import Dispatcher
from rastro_notification.domain.signing import generate_secret
from rastro_notification.settings import NotificationSettings

HERE = Path(__file__).resolve().parent

RECEIVER = """
import sys, uvicorn
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False,
            http="httptools", loop="uvloop", backlog=4096)
"""


async def queue_messages(
    pool: Any, subs: list[str], count: int, per_shipment: int, run: str, start: int = 0
) -> dict[str, float]:
    """Insert ``count`` messages (round-robin over ``subs``); returns id → queued time."""
    queued: dict[str, float] = {}
    ids, sub_ids, keys, bodies = [], [], [], []
    for n in range(start, start + count):
        shipment = n // per_shipment
        sub = subs[shipment % len(subs)]
        mid = repo.new_id("msg")
        ids.append(mid)
        sub_ids.append(sub)
        keys.append(f"t/{run}{shipment}")
        bodies.append(json.dumps({"type": "tracking.in_transit", "data": {"n": n, "pad": "x" * 400}}))
    now = time.time()
    await pool.execute(
        "INSERT INTO messages (id, subscription_id, tenant_id, event_id, event_type, ordering_key, body)"
        " SELECT i, s, 'bench', i, 'tracking.in_transit', k, b"
        " FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS m(i, s, k, b)",
        ids,
        sub_ids,
        keys,
        bodies,
    )
    await pool.execute("SELECT pg_notify(current_schema() || '_messages', '')")
    for mid in ids:
        queued[mid] = now
    return queued


async def bare_posts(port: int, count: int, endpoints: int, concurrency: int) -> tuple[float, float]:
    """The ceiling: ``count`` POSTs of a message-sized body, ``concurrency`` in flight, through the
    dispatcher's own HTTP session; (posts/s, CPU µs per post)."""
    body = json.dumps({"type": "tracking.in_transit", "data": {"n": 0, "pad": "x" * 400}}).encode()
    async with new_webhook_session(concurrency, user_agent="bench") as session:
        slots = asyncio.Semaphore(concurrency)

        async def post(n: int) -> None:
            async with (
                slots,
                session.post(
                    f"http://127.0.0.1:{port}/hooks/{n % endpoints}",
                    data=body,
                    headers={"content-type": "application/json"},
                ) as r,
            ):
                await r.read()

        cpu0, t0 = time.process_time(), time.perf_counter()
        await asyncio.gather(*(post(n) for n in range(count)))
        return count / (time.perf_counter() - t0), (time.process_time() - cpu0) / count * 1e6


async def delivered_times(pool: Any, ids: list[str]) -> dict[str, float]:
    rows = await pool.fetch(
        "SELECT id, extract(epoch FROM delivered_at)::float8 AS t FROM messages"
        " WHERE id = ANY($1::text[]) AND status = 'delivered'",
        ids,
    )
    return {r["id"]: r["t"] for r in rows}


async def main(args: argparse.Namespace, port: int) -> dict[str, Any]:
    schema = f"dispbench{secrets.token_hex(3)}"
    try:
        async with started_database() as (database_url, postgres):
            pool = await create_pool(database_url, schema, max_size=args.pool)
            try:
                await apply_migrations(pool, schema, ("rastro_notification.migrations",))
                subs = []
                for n in range(args.endpoints):
                    sub = await repo.insert_subscription(
                        pool,
                        tenant_id="bench",
                        url=f"http://127.0.0.1:{port}/hooks/{n}",
                        event_types=["*"],
                        description=None,
                        secret=generate_secret(),
                        enabled=True,
                    )
                    subs.append(sub.id)

                async def up() -> bool:
                    try:
                        _r, w = await asyncio.open_connection("127.0.0.1", port)
                        w.close()
                        return True
                    except OSError:
                        return False

                await wait_until(up, timeout=30, message="receiver")
                settings = NotificationSettings(
                    service_name=schema,
                    DATABASE_URL=database_url,
                    RASTRO_MODE="development",
                    RASTRO_LOG_LEVEL="WARNING",
                )
                ceiling, ceiling_cpu = await bare_posts(port, args.messages, args.endpoints, 64)
                run = secrets.token_hex(2)
                await queue_messages(pool, subs, args.messages, args.per_shipment, run)
                await pool.execute("ANALYZE messages")
                dispatcher = Dispatcher(settings)
                cpu0, t0 = time.process_time(), time.perf_counter()
                task = asyncio.create_task(dispatcher.serve(pool))

                async def drained() -> bool:
                    return not await pool.fetchval("SELECT count(*) FROM messages WHERE status = 'pending'")

                await wait_until(drained, timeout=args.timeout, interval=0.05, message="drain")
                drain_s, cpu = time.perf_counter() - t0, time.process_time() - cpu0
                drain_rounds, drain_batches = dispatcher.claim_rounds, dispatcher.record_batches
                # Live: queue at a fixed rate while it runs; latency = queued → delivered_at.
                queued: dict[str, float] = {}
                per_tick = max(int(args.rate / 20), 1)
                start = args.messages
                live_t0 = time.monotonic()
                for tick in range(int(args.live_s * 20)):
                    due = live_t0 + tick / 20
                    await asyncio.sleep(max(due - time.monotonic(), 0))
                    queued |= await queue_messages(pool, subs, per_tick, args.per_shipment, run, start)
                    start += per_tick
                ids = list(queued)

                async def all_delivered() -> bool:
                    return len(await delivered_times(pool, ids)) == len(ids)

                await wait_until(all_delivered, timeout=args.timeout, interval=0.1, message="live drain")
                done = await delivered_times(pool, ids)
                latencies = [(done[i] - queued[i]) * 1000 for i in ids]
                await dispatcher.stop()
                await asyncio.gather(task, return_exceptions=True)
            finally:
                await pool.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
                await pool.close()
    finally:
        pass
    return {
        "machine": {"cores": os.cpu_count(), "postgres": postgres},
        "endpoints": args.endpoints,
        "messages": args.messages,
        "per_shipment": args.per_shipment,
        "ceiling_posts_per_s": round(ceiling, 1),
        "ceiling_cpu_us_per_post": round(ceiling_cpu, 1),
        "drain_deliveries_per_s": round(args.messages / drain_s, 1),
        "ratio_to_ceiling": round(args.messages / drain_s / ceiling, 2),
        "drain_cpu_us_per_delivery": round(cpu / args.messages * 1e6, 1),
        "drain_claim_rounds": drain_rounds,
        "drain_record_transactions": drain_batches,
        "live_rate": args.rate,
        "live_messages": len(ids),
        "live_p50_ms": round(percentile(latencies, 50) or 0, 1),
        "live_p99_ms": round(percentile(latencies, 99) or 0, 1),
    }


def markdown(r: dict[str, Any]) -> str:
    m = r["machine"]
    return "\n".join(
        [
            f"# Webhook dispatcher benchmark, {date.today().isoformat()}",
            "",
            f"{m['cores']} cores, Postgres {m['postgres']}; {r['messages']:,} queued messages,"
            f" {r['endpoints']} endpoints on one local receiver (another process),"
            f" {r['per_shipment']} messages per shipment.",
            "",
            "| figure | value |",
            "|---|---:|",
            f"| bare POSTs/s, same client and receiver (ceiling) | {r['ceiling_posts_per_s']:,.0f} |",
            f"| deliveries/s, queue drained | {r['drain_deliveries_per_s']:,.0f} |",
            f"| ratio to the ceiling | {r['ratio_to_ceiling']:.2f} |",
            f"| CPU µs per delivery (per bare POST) | {r['drain_cpu_us_per_delivery']:,.0f}"
            f" ({r['ceiling_cpu_us_per_post']:,.0f}) |",
            f"| live: {r['live_rate']:,.0f} messages/s queued, p50 / p99 queued → delivered ms"
            f" | {r['live_p50_ms']:,.0f} / {r['live_p99_ms']:,.0f} |",
            "",
        ]
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--endpoints", type=int, default=100)
    parser.add_argument("--per-shipment", type=int, default=4)
    parser.add_argument("--rate", type=float, default=1000, help="messages/s queued in the live run")
    parser.add_argument("--live-s", type=float, default=10)
    parser.add_argument("--pool", type=int, default=10, help="Postgres pool size (the service's default)")
    parser.add_argument("--timeout", type=float, default=300)
    # As the service logs (JSON, one line per attempt at INFO): the cost counts, the lines go nowhere
    # (the loggers keep the stream they were configured with).
    real_stdout, sys.stdout = sys.stdout, open(os.devnull, "w")
    configure_logging("notification", os.environ.get("RASTRO_LOG_LEVEL", "INFO"))
    sys.stdout = real_stdout
    port = free_port()
    receiver = subprocess.Popen([sys.executable, "-c", RECEIVER, str(port)])
    try:
        result = asyncio.run(main(parser.parse_args(), port))
    finally:
        receiver.terminate()
        receiver.wait(10)
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / f"dispatcher-{date.today().isoformat()}.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / f"dispatcher-{date.today().isoformat()}.md").write_text(markdown(result))
    print(markdown(result))
