"""Fleet telemetry ingest: ``POST /v1/telemetry`` batches against the raw produce rate of the same records.

    uv run python bench/telemetry_bench.py [--seconds 15] [--batches 500 1000] [--concurrency 4]

Starts what ``bench/run.py`` starts (an embedded Tansu unless ``KAFKA_BOOTSTRAP_SERVERS`` is set, a fresh
database on ``DATABASE_URL`` or an embedded Postgres) and, in this process, the ingest service through its
composition root on a real port. First the ceiling (DESIGN §12): aiokafka with the kit's producer settings
sending the very records ingest publishes for these positions (same envelopes, keys, headers) to a
scratch topic with as many partitions. Then, per batch size, ``--concurrency`` clients post batches for
``--seconds``; figures: positions/s *accepted* (202 answers over the posting window) and positions/s
*published* (from the first request to the last record on ``rastro.telemetry.v1``, read back with a
group-less consumer, i.e. until the outbox relay has drained), each as a ratio to the ceiling, and
p50/p99 request latency. Results: ``bench/results/telemetry.json`` and ``telemetry-<date>.md``.

Positions come from a deterministic generator here: ``--vehicles`` vehicles driving straight lines around
São Paulo, one fix per vehicle per second, ~160-byte JSON each.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import os
import platform
import secrets
import sys
import time
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
from backing import Backing, create_topics, delete_topics, started_backing
from ceilings import broker_produce
from pydantic import SecretStr
from readback import TopicTail
from results import Result, percentile
from workload import Record

from rastro_events import TelemetryPosition
from rastro_events.encoding import HEADER_NAMES, encode_new_event
from rastro_events.topics import TELEMETRY
from rastro_ingest.api_telemetry import position_event_id
from rastro_ingest.app import build_app
from rastro_ingest.settings import IngestSettings
from rastro_kit.logs import configure_logging
from rastro_kit.testing import serve_app, wait_until

HERE = Path(__file__).resolve().parent
_JSON = {"Content-Type": "application/json"}


def positions(count: int, vehicles: int, start: datetime) -> list[dict[str, Any]]:
    """``count`` fixes, one per vehicle per second, vehicles interleaved as a fleet platform sends them."""
    out = []
    for n in range(count):
        v, step = n % vehicles, n // vehicles
        bearing = math.radians(v * 137.5 % 360)  # spread the fleet over every direction
        speed = 20 + (v * 7 + step) % 60
        metres = step * 12.0
        out.append(
            {
                "vehicle_id": f"VAN-{v:04d}",
                "recorded_at": (start + timedelta(seconds=step)).isoformat(timespec="milliseconds"),
                "latitude": round(-23.55 + metres * math.cos(bearing) / 111_320, 6),
                "longitude": round(-46.63 + metres * math.sin(bearing) / 102_000, 6),
                "speed_kmh": float(speed),
                "heading": round(math.degrees(bearing), 1),
                "accuracy_m": float(3 + v % 8),
            }
        )
    return out


def records(items: Sequence[dict[str, Any]], tenant: str) -> list[Record]:
    """The records ingest publishes for ``items`` (same envelope, id, key and headers)."""
    out = []
    for item in items:
        p = TelemetryPosition.model_validate(item)
        e = encode_new_event(
            p,
            tenant_id=tenant,
            source=f"/tenants/{tenant}/api",
            time=p.recorded_at,
            event_id=position_event_id(tenant, p),
        )
        out.append(Record(e.key, e.value, list(zip(HEADER_NAMES, e.header_values, strict=True)), e.id))
    return out


async def new_tenant(client: httpx.AsyncClient, admin: dict[str, str], tenant: str) -> str:
    r = await client.post("/v1/tenants", json={"id": tenant, "name": "Benchmark fleet"}, headers=admin)
    r.raise_for_status()
    r = await client.post(
        f"/v1/tenants/{tenant}/keys",
        headers=admin,
        json={"name": "bench", "scopes": ["events:write"], "environment": "sandbox"},
    )
    r.raise_for_status()
    return str(r.json()["key"])


async def post_for(
    client: httpx.AsyncClient, bodies: list[bytes], headers: dict[str, str], concurrency: int, seconds: float
) -> tuple[int, int, list[float], float]:
    """Post ``bodies`` in order from ``concurrency`` clients until ``seconds`` are up or none is left.
    Returns (positions accepted, requests, latencies ms, seconds until the last answer)."""
    queue = list(reversed(bodies))
    latencies: list[float] = []
    accepted = 0
    started = time.perf_counter()
    deadline = started + seconds

    async def worker() -> None:
        nonlocal accepted
        while queue and time.perf_counter() < deadline:
            body = queue.pop()
            sent = time.perf_counter()
            r = await client.post("/v1/telemetry", content=body, headers=headers)
            latencies.append((time.perf_counter() - sent) * 1000)
            if r.status_code != 202:
                raise RuntimeError(f"POST /v1/telemetry answered {r.status_code}: {r.text[:300]}")
            accepted += orjson.loads(r.content)["accepted"]

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    if not queue:
        print("[bench] warning: ran out of input before the time was up; raise --max-rate", flush=True)
    return accepted, len(latencies), latencies, time.perf_counter() - started


async def one_batch_size(
    client: httpx.AsyncClient, backing: Backing, key: str, tenant: str, bodies: list[bytes], args: Any
) -> dict[str, Any]:
    tail = TopicTail(backing.bootstrap, TELEMETRY, f"{tenant}/".encode())
    await tail.start()
    try:
        started, cpu = time.time(), time.process_time()
        headers = {"Authorization": f"Bearer {key}"} | _JSON
        accepted, requests, latencies, posting_s = await post_for(
            client, bodies, headers, args.concurrency, args.seconds
        )
        seen = await tail.wait_for(accepted, args.timeout)
        cpu = time.process_time() - cpu
    finally:
        await tail.stop()
    published_s = max(s.timestamp_ms for s in seen) / 1000 - started
    return {
        "positions": accepted,
        "requests": requests,
        "posting_s": round(posting_s, 2),
        "published_s": round(published_s, 2),
        "accepted_per_s": accepted / posting_s,
        "published_per_s": accepted / published_s,
        "p50_ms": round(percentile(latencies, 50) or 0, 1),
        "p99_ms": round(percentile(latencies, 99) or 0, 1),
        "cpu_us_per_position": round(cpu / accepted * 1e6, 1),
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    run_id = secrets.token_hex(3)
    start = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)
    wanted = int(args.seconds * args.max_rate)
    items = positions(wanted, args.vehicles, start)
    bodies = {
        b: [orjson.dumps({"positions": items[i : i + b]}) for i in range(0, wanted, b)] for b in args.batches
    }
    ceiling_records = records(items[: args.broker_records], f"bench-{run_id}-p")
    del items
    # Hundreds of thousands of the benchmark's own long-lived objects: left to the collector, every full
    # collection would walk them and bill the service for it (as in run.py).
    gc.collect()
    gc.freeze()
    admin_key = f"rk_admin_{secrets.token_hex(12)}"
    out: dict[str, Any] = {"results": {}}
    async with started_backing(args.partitions) as backing:
        print(
            f"[bench] broker {backing.broker} at {backing.bootstrap}, postgres {backing.postgres}", flush=True
        )
        scratch = f"bench.{run_id}.telemetry"
        await create_topics(backing.bootstrap, [scratch], args.partitions)
        try:
            ceiling = await broker_produce(backing, ceiling_records, scratch, 1000)
        finally:
            await delete_topics(backing.bootstrap, [scratch])
        print(f"[bench] broker_produce: {ceiling.events_per_s:,.0f} records/s", flush=True)
        out["ceiling"] = _ceiling_json(ceiling, ceiling_records)
        settings = IngestSettings(
            kafka_bootstrap_servers=backing.bootstrap,
            database_url=backing.database_url,
            kafka_idempotence=backing.idempotence,
            admin_api_key=SecretStr(admin_key),
            rate_limit_per_s=0,  # a policy, not a cost: 1,000-position batches at full speed exceed 50/s
            polling_enabled=False,
        )
        app = build_app(settings)
        limits = httpx.Limits(max_connections=args.concurrency + 2)
        async with (
            serve_app(app) as url,
            httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client,
        ):
            admin = {"Authorization": f"Bearer {admin_key}"}
            await _warm_up(client, app, admin, f"bench-{run_id}-w", bodies[args.batches[0]][:4])
            for batch in args.batches:
                tenant = f"bench-{run_id}-b{batch}"
                key = await new_tenant(client, admin, tenant)
                print(f"[bench] telemetry_http_{batch} …", flush=True)
                r = await one_batch_size(client, backing, key, tenant, bodies[batch], args)
                r["ratio_accepted"] = round(r["accepted_per_s"] / ceiling.events_per_s, 3)
                r["ratio_published"] = round(r["published_per_s"] / ceiling.events_per_s, 3)
                r["accepted_per_s"], r["published_per_s"] = (
                    round(r["accepted_per_s"], 1),
                    round(r["published_per_s"], 1),
                )
                # DESIGN §12's keys too: the figure is the published rate, as in ingest_http_batch.
                r |= {
                    "events_per_s": r["published_per_s"],
                    "ceiling_events_per_s": round(ceiling.events_per_s, 1),
                    "ratio": r["ratio_published"],
                }
                out["results"][f"telemetry_http_{batch}"] = r
                print(f"[bench] telemetry_http_{batch}: {json.dumps(r)}", flush=True)
    out["machine"] = _machine(backing, args, ceiling_records)
    return out


async def _warm_up(
    client: httpx.AsyncClient, app: Any, admin: dict[str, str], tenant: str, bodies: Sequence[bytes]
) -> None:
    """Not timed: first requests pay for pydantic schemas, pool connections and topic metadata."""
    r = await client.post("/v1/tenants", json={"id": tenant, "name": "Warm-up"}, headers=admin)
    r.raise_for_status()
    relay = app.state.runtime.relay
    before = relay.published
    count = 0
    for body in bodies:
        r = await client.post("/v1/telemetry", params={"tenant": tenant}, content=body, headers=admin | _JSON)
        r.raise_for_status()
        count += r.json()["accepted"]
    await wait_until(lambda: relay.published >= before + count, timeout=60, message="warm-up published")


def _ceiling_json(ceiling: Result, recs: Sequence[Record]) -> dict[str, Any]:
    return {
        "name": "broker_produce",
        "records": ceiling.events,
        "records_per_s": round(ceiling.events_per_s, 1),
        "p50_ms": round(percentile(ceiling.latencies_ms, 50) or 0, 1),
        "p99_ms": round(percentile(ceiling.latencies_ms, 99) or 0, 1),
        "record_bytes": round(sum(len(r.value) for r in recs) / max(len(recs), 1)),
        "note": ceiling.note,
    }


def _machine(backing: Backing, args: argparse.Namespace, recs: Sequence[Record]) -> dict[str, Any]:
    return {
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "broker": backing.broker,
        "postgres": backing.postgres,
        "partitions": backing.partitions,
        "date": date.today().isoformat(),
        "workload": {
            "seconds": args.seconds,
            "batches": args.batches,
            "concurrency": args.concurrency,
            "vehicles": args.vehicles,
            "broker_records": len(recs),
        },
    }


def markdown(r: dict[str, Any]) -> str:
    m, c = r["machine"], r["ceiling"]
    lines = [
        f"# Fleet telemetry ingest benchmark, {m['date']}",
        "",
        f"{m['cores']} cores, Python {m['python']}, broker {m['broker']}, Postgres {m['postgres']}; "
        f"{m['partitions']} partitions, ~{c['record_bytes']}-byte records, {m['workload']['concurrency']} "
        f"clients, {m['workload']['seconds']} s per batch size.",
        "",
        f"Ceiling (raw produce of the same records): **{c['records_per_s']:,.0f} records/s**, "
        f"p50 {c['p50_ms']} ms, p99 {c['p99_ms']} ms.",
        "",
        "| batch | positions | accepted/s | ratio | published/s | ratio | p50 ms | p99 ms"
        " | CPU µs/position |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, x in r["results"].items():
        lines.append(
            f"| {name.rsplit('_', 1)[1]} | {x['positions']:,} | {x['accepted_per_s']:,.0f} | "
            f"{x['ratio_accepted']:.2f} | {x['published_per_s']:,.0f} | {x['ratio_published']:.2f} | "
            f"{x['p50_ms']:,.1f} | {x['p99_ms']:,.1f} | {x['cpu_us_per_position']:,.0f} |"
        )
    return "\n".join([*lines, ""])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add = p.add_argument
    add("--seconds", type=float, default=15.0, help="posting time per batch size")
    add("--batches", type=int, nargs="+", default=[500, 1000], help="positions per request")
    add("--concurrency", type=int, default=4, help="clients posting at once")
    add("--vehicles", type=int, default=500, help="distinct vehicles (record keys)")
    add("--broker-records", type=int, default=50_000, help="records the ceiling produces")
    add("--max-rate", type=float, default=40_000, help="positions/s the prepared input can sustain")
    add("--partitions", type=int, default=12, help="partitions of the scratch topic and the registry's")
    add("--timeout", type=float, default=300.0, help="seconds to wait for the relay to publish")
    add("--results", type=Path, default=HERE / "results", help="where telemetry.json goes")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    configure_logging("bench", os.environ.get("RASTRO_LOG_LEVEL", "WARNING"))
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # Windows: the default loop
        pass
    result = asyncio.run(run(args))
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "telemetry.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    table = markdown(result)
    (args.results / f"telemetry-{date.today().isoformat()}.md").write_text(table, encoding="utf-8")
    print(f"\n{table}\nwritten: {args.results / 'telemetry.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
