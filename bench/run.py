"""``make bench``: each Rastro figure beside a ceiling measured in the same run (DESIGN §12).

    uv run python bench/run.py [--broker-events 50000] [--ingest-events 30000] [--service-events 20000]

Writes ``bench/results/latest.json`` and ``bench/results/<date>.md`` and prints the table.
See ``bench/README.md`` for what each scenario measures and how to read it.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import secrets
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from backing import Backing, create_topics, delete_topics, started_backing
from ceilings import broker_produce, passthrough
from diagnostics import profiled, statement_timing
from machine import machine_info
from results import Result, write_results
from scenarios import ingest_http_batch, normalization
from workload import Record, envelope_records, tracking_events

from rastro_kit.logs import configure_logging
from rastro_kit.settings import KitSettings

HERE = Path(__file__).resolve().parent
SCENARIOS = ("broker_produce", "ingest_http_batch", "passthrough", "normalization")
CEILING_OF = {"ingest_http_batch": "broker_produce", "normalization": "passthrough"}
Scenario = Callable[[], Awaitable[Result]]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add = p.add_argument
    add("--broker-events", type=int, default=50_000, help="records for the ceilings (produce, pass-through)")
    add("--ingest-events", type=int, default=30_000, help="events posted in ingest_http_batch")
    add("--service-events", type=int, default=20_000, help="raw events the normalization service consumes")
    add("--batch", type=int, default=1000, help="events per POST, and records per produce batch")
    add("--concurrency", type=int, default=4, help="POST requests in flight")
    add("--partitions", type=int, default=12, help="partitions of the topics this run creates")
    add(
        "--max-records",
        type=int,
        default=KitSettings().max_poll_records,
        help="getmany max_records, for the service and its pass-through alike",
    )
    add("--timeout", type=float, default=300.0, help="seconds a scenario may take")
    add(
        "--only", nargs="+", choices=SCENARIOS, help="run only these (a figure needs its ceiling for a ratio)"
    )
    add("--sql-timing", action="store_true", help="count and time Postgres statements per scenario")
    add("--profile", type=Path, help="write a cProfile of each scenario there (slows everything down)")
    add("--results", type=Path, default=HERE / "results", help="where latest.json and <date>.md go")
    return p.parse_args(argv)


@dataclass(frozen=True)
class Workload:
    """Every scenario's input, built before anything is timed."""

    events: list[dict[str, Any]]  # as clients post them
    produce_records: list[Record]  # broker_produce
    ceiling_records: list[Record]  # passthrough: the normalization records, and more of them
    service_records: list[Record]  # normalization
    service_tenant: str


def build_workload(args: argparse.Namespace, run_id: str) -> Workload:
    events = tracking_events(max(args.broker_events, args.ingest_events, args.service_events))
    service_tenant = f"bench-{run_id}-n"
    # The pass-through moves the very records normalization gets (same bytes), only more of them: at
    # ~30,000 records/s a service-sized run is over too soon to be a steady figure.
    ceiling = envelope_records(events[: max(args.broker_events, args.service_events)], service_tenant)
    workload = Workload(
        events=events,
        produce_records=envelope_records(events[: args.broker_events], f"bench-{run_id}-p"),
        ceiling_records=ceiling[: args.broker_events],
        service_records=ceiling[: args.service_events],
        service_tenant=service_tenant,
    )
    # ~1M long-lived objects of the benchmark's own: left to the collector, every full collection would
    # walk them and bill the services for it.
    gc.collect()
    gc.freeze()
    return workload


def plan(
    args: argparse.Namespace, backing: Backing, work: Workload, run_id: str, scratch: list[str]
) -> dict[str, Scenario]:
    return {
        "broker_produce": lambda: broker_produce(backing, work.produce_records, scratch[0], args.batch),
        "ingest_http_batch": lambda: ingest_http_batch(
            backing,
            work.events[: args.ingest_events],
            run_id,
            batch=args.batch,
            concurrency=args.concurrency,
            timeout_s=args.timeout,
        ),
        "passthrough": lambda: passthrough(
            backing,
            work.ceiling_records,
            (scratch[1], scratch[2]),
            f"bench-{run_id}-passthrough",
            args.max_records,
            args.timeout,
        ),
        "normalization": lambda: normalization(
            backing,
            work.service_records,
            work.service_tenant,
            run_id,
            max_records=args.max_records,
            timeout_s=args.timeout,
        ),
    }


async def run_one(name: str, scenario: Scenario, args: argparse.Namespace) -> Result:
    print(f"[bench] {name} …", flush=True)
    started = time.monotonic()
    done: list[Result] = []
    with (
        profiled(args.profile, name),
        statement_timing(args.sql_timing, lambda: done[0].events if done else 0),
    ):
        done.append(await scenario())
    r = done[0]
    print(
        f"[bench] {name}: {r.events_per_s:,.0f} events/s ({r.events:,} in {r.seconds:.2f} s; "
        f"scenario took {time.monotonic() - started:.0f} s)",
        flush=True,
    )
    return r


async def run(args: argparse.Namespace) -> tuple[dict[str, Any], list[Result]]:
    run_id = secrets.token_hex(3)
    work = build_workload(args, run_id)
    results: dict[str, Result] = {}
    async with started_backing(args.partitions) as backing:
        print(
            f"[bench] broker {backing.broker} at {backing.bootstrap}, postgres {backing.postgres}", flush=True
        )
        scratch = [f"bench.{run_id}.{t}" for t in ("produce", "passthrough.in", "passthrough.out")]
        await create_topics(backing.bootstrap, scratch, args.partitions)
        try:
            for name, scenario in plan(args, backing, work, run_id, scratch).items():
                if name in (args.only or SCENARIOS):
                    results[name] = await run_one(name, scenario, args)
        finally:
            await delete_topics(backing.bootstrap, scratch)
        machine = machine_info(backing, args, work.service_records)
    for name, ceiling in CEILING_OF.items():
        if name in results:
            results[name].ceiling = results.get(ceiling)
            if ceiling not in results:
                results[name].note += f" (no ratio: {ceiling} did not run)"
    return machine, list(results.values())


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    configure_logging("bench", os.environ.get("RASTRO_LOG_LEVEL", "WARNING"))
    # The services run on uvloop in production (uvicorn picks it when installed): so do they here.
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # Windows: the default loop
        pass
    machine, results = asyncio.run(run(args))
    today = date.today()
    table = write_results(args.results, machine, results, today)
    print(f"\n{table}\nwritten: {args.results / 'latest.json'}, {args.results / f'{today.isoformat()}.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
