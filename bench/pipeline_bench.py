"""The whole pipeline under a fixed rate: ingest → normalization → notification → 100 webhook endpoints.

    uv run python bench/pipeline_bench.py [--rates 250 500 1000] [--seconds 20] [--endpoints 100]

Ingest, normalization and notification run as separate processes (as in production and ``make run``)
on the broker and Postgres of ``bench/backing.py``; a webhook receiver with ``--endpoints`` endpoints
runs in a process of its own (raw ASGI on uvicorn, as light as a receiver gets). Each endpoint belongs
to its own tenant and subscribes to ``tracking.*``; events are spread evenly over the tenants and
posted at each ``--rates`` value (events/s, in requests of ``--batch`` events) for ``--seconds``. Every
event makes exactly one webhook. Before the first rate, ``--warmup-seconds`` of traffic at the lowest
rate and an ``ANALYZE`` (see ``warm_up``).

Figures per rate: events/s offered and webhooks/s delivered over the window, and the latency from the
moment the event's POST was sent to the moment its webhook reached the receiver (p50/p99), read from
the ``raw_event_id`` in each delivered body. A broker produce ceiling, measured in the same run on the
same broker, gives the ratio. Results go to ``bench/results/pipeline-<date>.md`` and ``.json``.
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
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from backing import Backing, started_backing
from ceilings import broker_produce
from results import percentile
from workload import envelope_records, tracking_events

from rastro_kit.testing import free_port, wait_until

HERE = Path(__file__).resolve().parent
SERVICES = ("ingest", "normalization", "notification")


RECEIVER = """
import json, sys, time, uvicorn
arrived, deliveries = {}, 0

async def app(scope, receive, send):
    global deliveries
    if scope["type"] != "http":
        return
    body, more = b"", True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    status, out = 204, b""
    if scope["method"] == "POST":
        now = time.time()
        deliveries += 1
        raw = json.loads(body).get("data", {}).get("raw_event_id")
        if raw:
            arrived.setdefault(raw, now)
    elif scope["path"] == "/count":
        status, out = 200, json.dumps({"deliveries": deliveries, "arrived": len(arrived)}).encode()
    elif scope["path"] == "/arrivals":
        status, out = 200, json.dumps(arrived).encode()
    await send({"type": "http.response.start", "status": status, "headers": []})
    await send({"type": "http.response.body", "body": out})

uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False,
            http="httptools", loop="uvloop", backlog=4096)
"""


class Receiver:
    """The webhook receiver, in a process of its own (as a subscriber's server would be): accepts every
    webhook (204) and notes when each event's webhook arrived (``raw_event_id`` in the body)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._child: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._child = subprocess.Popen([sys.executable, "-c", RECEIVER, str(self.port)])

    def stop(self) -> None:
        if self._child is not None:
            self._child.terminate()
            self._child.wait(10)

    async def count(self, client: httpx.AsyncClient) -> dict[str, int]:
        return dict((await client.get(self.base_url + "/count")).json())

    async def arrivals(self, client: httpx.AsyncClient) -> dict[str, float]:
        return dict((await client.get(self.base_url + "/arrivals", timeout=60)).json())


class Processes:
    def __init__(self, backing: Backing, logs: Path) -> None:
        self.admin_key = f"rk_admin_{secrets.token_hex(12)}"
        self.ports = {name: free_port() for name in SERVICES}
        self.logs = logs
        self.children: list[subprocess.Popen[bytes]] = []
        self.env = {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": backing.bootstrap,
            "DATABASE_URL": backing.database_url,
            "RASTRO_KAFKA_IDEMPOTENCE": str(backing.idempotence).lower(),
            "RASTRO_MODE": "development",  # webhooks to 127.0.0.1
            "RASTRO_ADMIN_API_KEY": self.admin_key,
            "RASTRO_LOG_LEVEL": "WARNING",
            "RASTRO_INGEST_RATE_LIMIT_PER_S": "0",
        }

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def start(self) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        for name in SERVICES:
            with (self.logs / f"{name}.log").open("ab") as log:
                env = {**self.env, "RASTRO_HTTP_PORT": str(self.ports[name])}
                self.children.append(
                    subprocess.Popen(
                        [sys.executable, "-m", f"rastro_{name}"],
                        env=env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                )

    async def ready(self) -> None:
        async with httpx.AsyncClient(timeout=5) as client:
            for name in SERVICES:

                async def up(n: str = name) -> bool:
                    try:
                        return (await client.get(self.url(n) + "/readyz")).status_code == 200
                    except httpx.TransportError:
                        return False

                await wait_until(up, timeout=120, interval=0.5, message=f"{name} ready")

    def stop(self) -> None:
        for child in self.children:
            child.terminate()
        for child in self.children:
            try:
                child.wait(20)
            except subprocess.TimeoutExpired:
                child.kill()


async def setup_tenants(procs: Processes, hook_url: str, count: int, run: str) -> list[tuple[str, str]]:
    admin = {"Authorization": f"Bearer {procs.admin_key}"}
    tenants: list[tuple[str, str]] = []
    async with httpx.AsyncClient(timeout=30) as client:
        for n in range(count):
            tenant = f"pl{run}{n:03d}"
            r = await client.post(
                procs.url("ingest") + "/v1/tenants", json={"id": tenant, "name": tenant}, headers=admin
            )
            r.raise_for_status()
            r = await client.post(
                procs.url("ingest") + f"/v1/tenants/{tenant}/keys",
                headers=admin,
                json={
                    "name": "bench",
                    "environment": "sandbox",
                    "scopes": ["events:write", "subscriptions:manage"],
                },
            )
            r.raise_for_status()
            tenants.append((tenant, r.json()["key"]))
        for n, (_tenant, key) in enumerate(tenants):
            auth = {"Authorization": f"Bearer {key}"}

            async def subscribed(k: dict[str, str] = auth, i: int = n) -> bool:
                r = await client.post(
                    procs.url("notification") + "/v1/subscriptions",
                    headers=k,
                    json={"url": f"{hook_url}/{i}", "event_types": ["tracking.*"], "description": "bench"},
                )
                return r.status_code == 201  # 401 until the key reached notification

            await wait_until(subscribed, timeout=60, interval=0.5, message="subscription")
    return tenants


async def offer(
    procs: Processes, tenants: Sequence[tuple[str, str]], rate: float, seconds: float, batch: int, seed: int
) -> dict[str, float]:
    """POST ``rate`` events/s for ``seconds``; returns each accepted event id's send time."""
    total = int(rate * seconds)
    events = tracking_events(total, seed=seed)
    sent_at: dict[str, float] = {}
    requests = [events[i : i + batch] for i in range(0, total, batch)]
    started = time.monotonic()
    limits = httpx.Limits(max_connections=32)
    async with httpx.AsyncClient(base_url=procs.url("ingest"), timeout=60, limits=limits) as client:

        async def post(n: int, chunk: list[dict[str, Any]]) -> None:
            _tenant, key = tenants[n % len(tenants)]
            t = time.time()
            r = await client.post(
                "/v1/events", json={"events": chunk}, headers={"Authorization": f"Bearer {key}"}
            )
            if r.status_code != 202:
                raise RuntimeError(f"ingest answered {r.status_code}: {r.text[:300]}")
            for item in r.json()["events"]:
                sent_at[item["id"]] = t

        tasks = []
        for n, chunk in enumerate(requests):
            due = started + n * batch / rate
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(post(n, chunk)))
        await asyncio.gather(*tasks)
    return sent_at


async def measure(
    procs: Processes,
    receiver: Receiver,
    tenants: Sequence[tuple[str, str]],
    rate: float,
    args: Any,
    seed: int,
) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=10) as client:
        before = await receiver.count(client)
        t0 = time.time()
        sent_at = await offer(procs, tenants, rate, args.seconds, args.batch, seed)
        offered_s = time.time() - t0
        expected = before["arrived"] + len(sent_at)

        async def all_arrived() -> bool:
            return (await receiver.count(client))["arrived"] >= expected

        await wait_until(all_arrived, timeout=args.seconds * 10 + 60, interval=0.2, message="webhooks")
        after, arrived = await receiver.count(client), await receiver.arrivals(client)
    last = max(arrived[i] for i in sent_at)
    latencies = [(arrived[i] - sent_at[i]) * 1000 for i in sent_at]
    return {
        "rate_offered": rate,
        "events": len(sent_at),
        "events_per_s_posted": round(len(sent_at) / offered_s, 1),
        "webhooks_per_s": round((after["deliveries"] - before["deliveries"]) / (last - t0), 1),
        "p50_ms": round(percentile(latencies, 50) or 0, 1),
        "p99_ms": round(percentile(latencies, 99) or 0, 1),
        "max_ms": round(max(latencies), 1),
    }


async def warm_up(
    procs: Processes, receiver: Receiver, tenants: Sequence[tuple[str, str]], backing: Backing, args: Any
) -> None:
    """Traffic first, then ANALYZE: the figures are those of a running system, whose tables autovacuum
    has analyzed, not of a database's first minute. On empty tables the services' cached generic plans
    scan whole tables (right while they are small, wrong once they have grown), until autovacuum's
    first ANALYZE of them, up to a minute later."""
    warm = argparse.Namespace(seconds=args.warmup_seconds, batch=args.batch)
    await measure(procs, receiver, tenants, min(args.rates), warm, 1)
    conn = await asyncpg.connect(backing.database_url)
    try:
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


async def main(args: argparse.Namespace) -> dict[str, Any]:
    run = secrets.token_hex(2)
    async with started_backing(args.partitions) as backing:
        ceiling_records = envelope_records(tracking_events(20_000, seed=3), f"ceiling{run}")
        ceiling = await broker_produce(backing, ceiling_records, "rastro.tracking.raw.v1", 1000)
        procs = Processes(backing, Path(args.logs))
        receiver = Receiver()
        procs.start()
        receiver.start()
        try:
            await procs.ready()
            tenants = await setup_tenants(procs, receiver.base_url + "/hooks", args.endpoints, run)
            await warm_up(procs, receiver, tenants, backing, args)
            rows = []
            for n, rate in enumerate(args.rates):
                row = await measure(procs, receiver, tenants, rate, args, 10 + n)
                row["ratio_to_broker_produce"] = round(row["webhooks_per_s"] / ceiling.events_per_s, 3)
                rows.append(row)
                print(json.dumps(row))
        finally:
            procs.stop()
            receiver.stop()
    return {
        "machine": {"cores": os.cpu_count(), "broker": backing.broker, "postgres": backing.postgres},
        "endpoints": args.endpoints,
        "batch": args.batch,
        "seconds": args.seconds,
        "broker_produce_events_per_s": round(ceiling.events_per_s, 1),
        "rates": rows,
    }


def markdown(result: dict[str, Any]) -> str:
    m = result["machine"]
    lines = [
        f"# Pipeline benchmark, {date.today().isoformat()}",
        "",
        f"{m['cores']} cores, broker {m['broker']}, Postgres {m['postgres']}; ingest, normalization and"
        f" notification as processes; {result['endpoints']} endpoints (one tenant each, `tracking.*`);"
        f" requests of {result['batch']} events for {result['seconds']} s per rate. Broker produce ceiling"
        f" in the same run: {result['broker_produce_events_per_s']:,.0f} events/s.",
        "",
        "| offered events/s | posted events/s | webhooks/s | ratio to broker produce"
        " | p50 ms | p99 ms | max ms |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["rates"]:
        lines.append(
            f"| {r['rate_offered']:,.0f} | {r['events_per_s_posted']:,.0f} | {r['webhooks_per_s']:,.0f} |"
            f" {r['ratio_to_broker_produce']:.3f} | {r['p50_ms']:,.0f} | {r['p99_ms']:,.0f}"
            f" | {r['max_ms']:,.0f} |"
        )
    lines += ["", "Latency: POST sent → webhook received, per event (`raw_event_id` in the delivered body)."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rates", type=float, nargs="+", default=[250, 500, 1000])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--endpoints", type=int, default=100)
    parser.add_argument("--batch", type=int, default=20, help="events per POST")
    parser.add_argument(
        "--warmup-seconds", type=float, default=10, help="traffic at the lowest rate before measuring"
    )
    parser.add_argument("--partitions", type=int, default=12)
    parser.add_argument("--logs", default="/tmp/rastro-pipeline-bench")
    args = parser.parse_args()
    result = asyncio.run(main(args))
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / f"pipeline-{date.today().isoformat()}.json").write_text(json.dumps(result, indent=2) + "\n")
    text = markdown(result)
    (out / f"pipeline-{date.today().isoformat()}.md").write_text(text)
    print(text)
