"""Retention cleanups at scale: rows/s deleted, and what a running consumer feels meanwhile.

    uv run python bench/cleanup_bench.py [--rows 1000000] [--repeat 3] [--live-seconds 8] [--pause-ms 50]

Postgres only (no broker): a fresh database on ``DATABASE_URL`` (or an embedded Postgres), the kit's
and normalization's migrations in one schema, and three tables filled with ``--rows`` rows each:

- ``inbox``: rows in arrival order, the older half past the 30-day retention; purged by the kit's
  ``purge_inbox`` (batches of 5,000 through the BRIN index);
- ``outbox``: a backlog of ``--rows`` ~700-byte events, as after a broker outage; drained with the
  relay's own statements (``SELECT … ORDER BY id LIMIT 4000`` then ``DELETE … WHERE id = ANY``);
- ``timeline_entries``: ``--rows / 10`` finished shipments of 10 entries each, half of them past the
  365-day retention; purged by normalization's ``purge_read_model``.

The live path is what a consumer does per partition batch: one transaction inserting 500 event ids into
the inbox (the consumer's own statement) and 500 events into the outbox (``enqueue_rows``). It runs
alone for ``--live-seconds`` (the baseline), then beside each cleanup; its batches/s and p50/p99
transaction time show what the cleanup costs it. Every cleanup is also timed alone. Everything runs
``--repeat`` times, alternated; the table shows medians, the JSON every run. Results go to
``bench/results/cleanup-<date>-pause<N>ms.md`` and ``.json``; docs/database.md discusses them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import time
from collections.abc import Awaitable, Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from backing import _admin_sql, _postgres_server, _with_database
from results import percentile

from rastro_kit.db import apply_migrations, create_pool
from rastro_kit.housekeeping import purge_inbox
from rastro_kit.outbox import enqueue_rows
from rastro_normalization.housekeeping import purge_read_model

HERE = Path(__file__).resolve().parent
SCHEMA = "bench_cleanup"
LIVE_BATCH = 500
RELAY_BATCH = 4000
VALUE = b"x" * 700  # the size of a CloudEvents envelope of a tracking event
HEADERS = ["content-type", "ce_type", "ce_id"]

FILL_INBOX = """
INSERT INTO inbox(consumer_group, event_id, processed_at)
SELECT 'normalization', 'old' || lpad(n::text, 23, '0'), now() - interval '60 days' + n * $2::interval
FROM generate_series(1, $1) n
"""
FILL_OUTBOX = """
INSERT INTO outbox(topic, key, value, header_names, header_values)
SELECT 'rastro.tracking.normalized.v1', convert_to('acme/BR' || n, 'UTF8'), $2, $3,
       ARRAY['application/cloudevents+json'::bytea, 'rastro.tracking.normalized.v1',
             convert_to(n::text, 'UTF8')]
FROM generate_series(1, $1) n
"""
FILL_SHIPMENTS = """
INSERT INTO shipments(tenant_id, tracking_number, carrier, status, substatus, updated_at)
SELECT 'acme', 'BR' || lpad(n::text, 9, '0'), 'correios', 'delivered', 'delivered.signed',
       CASE WHEN n % 2 = 0 THEN now() - interval '400 days' ELSE now() - interval '100 days' END
FROM generate_series(1, $1) n
"""
FILL_TIMELINE = """
INSERT INTO timeline_entries(tenant_id, tracking_number, event_id, carrier, status_code, status, substatus,
                             description, descriptions, occurred_at, occurred_at_local, location)
SELECT 'acme', 'BR' || lpad(s::text, 9, '0'), 'e' || s || '-' || e, 'correios', 'RO-01', 'in_transit',
       'in_transit.forwarded', 'Objeto em trânsito - por favor aguarde',
       '{"en": "In transit", "pt-BR": "Objeto em trânsito"}', now(), '2026-11-20T09:00:00-03:00',
       '{"city": "São Paulo", "state": "SP", "country": "BR"}'
FROM generate_series(1, $1) s, generate_series(1, 10) e
"""


class Live:
    """The consumer's per-batch transaction in a loop, until stopped; what each one took."""

    def __init__(self, pool: Any) -> None:
        self._pool, self._stop = pool, asyncio.Event()
        self.latencies_ms: list[float] = []

    async def run(self) -> None:
        rows = [
            ("rastro.tracking.normalized.v1", b"acme/BR1", VALUE, HEADERS, [b"a", b"b", b"c"])
        ] * LIVE_BATCH
        while not self._stop.is_set():
            ids = [f"live{secrets.token_hex(11)}" for _ in range(LIVE_BATCH)]
            started = time.perf_counter()
            async with self._pool.acquire() as conn, conn.transaction():
                await conn.fetch(
                    "INSERT INTO inbox(consumer_group, event_id) SELECT $1, unnest($2::text[])"
                    " ON CONFLICT DO NOTHING RETURNING event_id",
                    "normalization",
                    ids,
                )
                await enqueue_rows(conn, rows)
            self.latencies_ms.append((time.perf_counter() - started) * 1000)

    def stop(self) -> None:
        self._stop.set()


async def drain_outbox(pool: Any) -> dict[str, int]:
    """The relay's statements, minus Kafka: read a batch in id order, delete it by id. The relay is the
    live path itself, so it never pauses (``--pause-ms`` is for the retention purges)."""
    deleted = 0
    async with pool.acquire() as conn:
        while True:
            rows = await conn.fetch(
                "SELECT id, topic, key, value, header_names, header_values FROM outbox ORDER BY id LIMIT $1",
                RELAY_BATCH,
            )
            await conn.execute("DELETE FROM outbox WHERE id = ANY($1::bigint[])", [r[0] for r in rows])
            deleted += len(rows)
            if len(rows) < RELAY_BATCH:
                return {"outbox": deleted}


async def fill(pool: Any, name: str, rows: int) -> None:
    async with pool.acquire() as conn:
        await conn.execute("TRUNCATE inbox, outbox, shipments, timeline_entries")
        if name == "inbox":
            await conn.execute(FILL_INBOX, rows, timedelta(days=59) / rows)
        elif name == "outbox":
            await conn.execute(FILL_OUTBOX, rows, VALUE, HEADERS)
        else:
            await conn.execute(FILL_SHIPMENTS, rows // 10)
            await conn.execute(FILL_TIMELINE, rows // 10)
        await conn.execute("VACUUM ANALYZE inbox, outbox, shipments, timeline_entries")  # as autovacuum would


def cleanup_of(name: str, pause_s: float) -> Callable[[Any], Awaitable[dict[str, int]]]:
    async def inbox(pool: Any) -> dict[str, int]:
        return {"inbox": await purge_inbox(pool, timedelta(days=30), pause_s=pause_s)}

    async def outbox(pool: Any) -> dict[str, int]:
        return await drain_outbox(pool)

    async def timeline(pool: Any) -> dict[str, int]:
        return await purge_read_model(pool, timedelta(days=365), pause_s=pause_s)

    return {"inbox": inbox, "outbox": outbox, "timeline": timeline}[name]


def live_figures(live: Live, seconds: float) -> dict[str, Any]:
    lat = live.latencies_ms
    return {
        "batches_per_s": round(len(lat) / seconds, 1) if seconds else 0.0,
        "events_per_s": round(len(lat) * LIVE_BATCH / seconds) if seconds else 0,
        "p50_ms": round(percentile(lat, 50) or 0, 1),
        "p99_ms": round(percentile(lat, 99) or 0, 1),
    }


async def timed_cleanup(pool: Any, name: str, pause_s: float, with_live: bool) -> dict[str, Any]:
    cleanup = cleanup_of(name, pause_s)
    live = Live(pool)
    task = asyncio.create_task(live.run()) if with_live else None
    started = time.perf_counter()
    counts = await cleanup(pool)
    seconds = time.perf_counter() - started
    if task is not None:
        live.stop()
        await task
    deleted = sum(counts.values())
    figures: dict[str, Any] = {"deleted": counts, "seconds": round(seconds, 2)}
    figures["rows_per_s"] = round(deleted / seconds) if seconds else 0
    if with_live:
        figures["live"] = live_figures(live, seconds)
    return figures


async def baseline(pool: Any, seconds: float) -> dict[str, Any]:
    async with pool.acquire() as conn:
        await conn.execute("TRUNCATE inbox, outbox, shipments, timeline_entries")
    live = Live(pool)
    task = asyncio.create_task(live.run())
    await asyncio.sleep(seconds)
    live.stop()
    await task
    return live_figures(live, seconds)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    pause_s = args.pause_ms / 1000
    with _postgres_server() as (server_url, origin):
        database = f"rastro_bench_{secrets.token_hex(4)}"
        version = await _admin_sql(server_url, f'CREATE DATABASE "{database}"')
        try:
            pool = await create_pool(_with_database(server_url, database), SCHEMA, max_size=4)
            await apply_migrations(pool, SCHEMA, ("rastro_normalization.migrations",))
            report: dict[str, Any] = {"postgres": f"{version} ({origin})", "cores": os.cpu_count()}
            report |= {"rows": args.rows, "pause_ms": args.pause_ms, "live_batch": LIVE_BATCH, "runs": []}
            for _ in range(args.repeat):  # alternated, so a busy moment of the machine hits every figure
                run: dict[str, Any] = {"live_alone": await baseline(pool, args.live_seconds)}
                print("live alone", run["live_alone"], flush=True)
                for name in CLEANUPS:
                    for with_live in (False, True):
                        await fill(pool, name, args.rows)
                        run[_key(name, with_live)] = await timed_cleanup(pool, name, pause_s, with_live)
                        print(
                            name,
                            "with live" if with_live else "alone",
                            run[_key(name, with_live)],
                            flush=True,
                        )
                report["runs"].append(run)
            await pool.close()
        finally:
            await _admin_sql(server_url, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    return report


CLEANUPS = ("inbox", "outbox", "timeline")


def _key(name: str, with_live: bool) -> str:
    return f"{name}_with_live" if with_live else name


def _median(report: dict[str, Any], key: str, *path: str) -> float:
    values = []
    for run in report["runs"]:
        value = run[key]
        for step in path:
            value = value[step]
        values.append(value)
    return float(statistics.median(values))


def write(report: dict[str, Any], results: Path) -> Path:
    """The JSON keeps every run; the table shows medians (this machine is shared: runs vary)."""
    results.mkdir(parents=True, exist_ok=True)
    stem = results / f"cleanup-{date.today().isoformat()}-pause{report['pause_ms']:g}ms"
    stem.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    alone = {k: _median(report, "live_alone", k) for k in ("events_per_s", "p50_ms", "p99_ms")}
    lines = [
        f"# Cleanup benchmark {date.today().isoformat()}",
        "",
        f"{report['cores']} cores, Postgres {report['postgres']}, {report['rows']:,} rows per table,"
        f" {report['pause_ms']} ms pause between batches; medians of {len(report['runs'])} runs. Live path"
        f" alone: {alone['events_per_s']:,.0f} events/s (transactions of {LIVE_BATCH}), p50"
        f" {alone['p50_ms']:.1f} ms, p99 {alone['p99_ms']:.1f} ms.",
        "",
        "| cleanup | rows deleted | alone: rows/s | with live: rows/s | live events/s (vs alone)"
        " | live p50 / p99 ms |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name in CLEANUPS:
        deleted = sum(report["runs"][0][name]["deleted"].values())
        live = {k: _median(report, _key(name, True), "live", k) for k in ("events_per_s", "p50_ms", "p99_ms")}
        share = live["events_per_s"] / alone["events_per_s"] if alone["events_per_s"] else 0
        lines.append(
            f"| {name} | {deleted:,} | {_median(report, name, 'rows_per_s'):,.0f} |"
            f" {_median(report, _key(name, True), 'rows_per_s'):,.0f} |"
            f" {live['events_per_s']:,.0f} ({share:.0%}) | {live['p50_ms']:.1f} / {live['p99_ms']:.1f} |"
        )
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    return stem.with_suffix(".md")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows per table (1,000,000)")
    parser.add_argument("--live-seconds", type=float, default=8.0, help="the live path's baseline (8 s)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of everything; medians reported (3)")
    parser.add_argument(
        "--pause-ms",
        type=float,
        default=50.0,
        help="pause between purge batches (50, RASTRO_HOUSEKEEPING_PAUSE_MS)",
    )
    parser.add_argument("--results", type=Path, default=HERE / "results", help="where the files go")
    args = parser.parse_args()
    report = asyncio.run(run(args))
    print(write(report, args.results).read_text())


if __name__ == "__main__":
    main()
