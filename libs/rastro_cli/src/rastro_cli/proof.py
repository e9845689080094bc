"""``rastro loadgen`` and ``rastro check``: drive a running stack with realistic load, then prove it.

    uv run rastro loadgen --tenants 3 --shipments 2000 --rate 1000      # against make run's gateway
    uv run rastro check .rastro/loadgen/<run>.jsonl

``loadgen`` creates its tenants through the admin API (operator key: ``RASTRO_ADMIN_API_KEY`` or
``.rastro/demo.env``), posts the lifecycles (or publishes them to the upstream topic with ``--via
kafka``) and writes a manifest; ``check`` reads it and verifies the invariants of
``rastro_cli.checker`` against the database and the broker (``DATABASE_URL`` /
``KAFKA_BOOTSTRAP_SERVERS``, else ``make run``'s, from ``.rastro/demo.env``).
"""

from __future__ import annotations

import asyncio
import os
import secrets
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from rastro_cli.local_env import admin_api_key, demo_env
from rastro_cli.tenants import DEFAULT_URL, ApiKey, BaseUrl

__all__ = ["check_command", "loadgen_command"]

console = Console()


class Via(StrEnum):
    http = "http"
    kafka = "kafka"


async def create_tenants(base_url: str, admin_key: str, names: list[str]) -> dict[str, str]:
    """Create each tenant with an events:write + shipments:read key; returns tenant → key."""
    keys: dict[str, str] = {}
    headers = {"Authorization": f"Bearer {admin_key}"}
    async with httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=30) as client:
        for name in names:
            r = await client.post("/v1/tenants", json={"id": name, "name": name}, headers=headers)
            if r.status_code not in (201, 409):
                raise RuntimeError(f"cannot create tenant {name}: {r.status_code} {r.text[:300]}")
            r = await client.post(
                f"/v1/tenants/{name}/keys",
                headers=headers,
                json={
                    "name": "loadgen",
                    "environment": "sandbox",
                    "scopes": ["events:write", "shipments:read"],
                },
            )
            if r.status_code != 201:
                raise RuntimeError(f"cannot create a key for {name}: {r.status_code} {r.text[:300]}")
            keys[name] = str(r.json()["key"])
    return keys


async def wait_keys_known(base_url: str, keys: dict[str, str], timeout: float = 30.0) -> None:
    """A new key reaches the other services through a topic: wait until ingest takes it."""
    from rastro_kit.testing import wait_until

    async with httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=10) as client:
        for key in keys.values():

            async def known(k: str = key) -> bool:
                r = await client.get("/v1/shipments/none", headers={"Authorization": f"Bearer {k}"})
                return r.status_code != 401

            await wait_until(known, timeout=timeout, message="loadgen keys known")


def loadgen_command(
    shipments: Annotated[int, typer.Option(help="Shipments (lifecycles) to generate.")] = 1000,
    tenants: Annotated[int, typer.Option(help="Tenants to spread them over (created for the run).")] = 2,
    rate: Annotated[float, typer.Option(help="Target events per second (0: as fast as it goes).")] = 0,
    batch: Annotated[int, typer.Option(help="Events per POST.")] = 500,
    concurrency: Annotated[int, typer.Option(help="Requests in flight.")] = 4,
    via: Annotated[Via, typer.Option(help="http: POST /v1/events; kafka: the upstream topic.")] = Via.http,
    seed: Annotated[int, typer.Option(help="Same seed, same feed.")] = 1,
    run: Annotated[str | None, typer.Option(help="Run id (tenant names and event ids).")] = None,
    manifest: Annotated[Path | None, typer.Option(help="Where to write the manifest.")] = None,
    base_url: BaseUrl = DEFAULT_URL,
    api_key: ApiKey = None,
    bootstrap: Annotated[
        str | None, typer.Option(envvar="KAFKA_BOOTSTRAP_SERVERS", help="Broker, for --via kafka.")
    ] = None,
) -> None:
    """Generate shipment lifecycles and send them; write the manifest `rastro check` reads."""
    from rastro_cli.loadgen import lifecycles, post_plan, send_plan, write_manifest

    run = run or f"lg{secrets.token_hex(3)}"
    names = [f"{run}-t{i}" for i in range(tenants)]
    admin = admin_api_key(api_key)
    keys = asyncio.run(create_tenants(base_url, admin, names))
    asyncio.run(wait_keys_known(base_url, keys))
    plan = send_plan(lifecycles(tenants=names, shipments=shipments, seed=seed, run=run), seed=seed)
    path = manifest or Path(".rastro") / "loadgen" / f"{run}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_manifest(path, plan)
    console.print(f"run {run}: {shipments} shipments, {len(plan.sends)} events for {tenants} tenants")
    columns = (TextColumn("sending"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("send", total=len(plan.sends))
        if via is Via.http:
            report = asyncio.run(
                post_plan(
                    plan,
                    base_url,
                    keys,
                    rate=rate,
                    batch=batch,
                    concurrency=concurrency,
                    on_progress=lambda n: progress.advance(task, n),
                )
            )
        else:
            servers = bootstrap or demo_env().get("KAFKA_BOOTSTRAP_SERVERS")
            if not servers:
                console.print("[red]--via kafka needs --bootstrap or KAFKA_BOOTSTRAP_SERVERS")
                raise typer.Exit(2)
            # make run's embedded Tansu has no idempotent producer; a real Kafka does
            default = "true" if bootstrap else "false"
            idempotence = os.environ.get("RASTRO_KAFKA_IDEMPOTENCE", default).lower() in {"1", "true", "yes"}
            report = asyncio.run(_produce(plan, servers, rate, idempotence))
            progress.advance(task, report.events_sent)
    console.print(
        f"sent {report.events_sent} events in {report.seconds:.1f} s ({report.rate:,.0f}/s),"
        f" {report.retried_requests} requests retried (429/503)"
    )
    console.print(f"manifest: {path}\ncheck it:  uv run rastro check {path}")


async def _produce(plan: Any, bootstrap: str, rate: float, idempotence: bool) -> Any:
    from rastro_cli.loadgen import produce_plan
    from rastro_events.topics import INGEST_UPSTREAM
    from rastro_kit.kafka import make_producer
    from rastro_kit.settings import KitSettings

    producer = make_producer(
        KitSettings(
            KAFKA_BOOTSTRAP_SERVERS=bootstrap, RASTRO_KAFKA_IDEMPOTENCE=idempotence, service_name="loadgen"
        )
    )
    await producer.start()
    try:
        return await produce_plan(plan, producer, INGEST_UPSTREAM, rate=rate)
    finally:
        await producer.stop()


def check_command(
    manifest: Annotated[Path, typer.Argument(help="The manifest `rastro loadgen` wrote.")],
    database_url: Annotated[
        str | None, typer.Option(envvar="DATABASE_URL", help="The services' database.")
    ] = None,
    bootstrap: Annotated[
        str | None, typer.Option(envvar="KAFKA_BOOTSTRAP_SERVERS", help="The broker.")
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the pipeline to drain.")] = 120.0,
) -> None:
    """Prove the run: every event handled or dead-lettered, right states, no duplicates, never backwards."""
    from rastro_cli.checker import check_run
    from rastro_cli.loadgen import read_manifest

    database_url = database_url or demo_env().get("DATABASE_URL")
    bootstrap = bootstrap or demo_env().get("KAFKA_BOOTSTRAP_SERVERS")
    if not database_url or not bootstrap:
        console.print("[red]needs DATABASE_URL and KAFKA_BOOTSTRAP_SERVERS (or make run's .rastro/demo.env)")
        raise typer.Exit(2)
    report = asyncio.run(check_run(read_manifest(manifest), database_url, bootstrap, timeout=timeout))
    for violation in report.violations[:50]:
        console.print(f"[red]✗ {violation}")
    if len(report.violations) > 50:
        console.print(f"[red]… and {len(report.violations) - 50} more")
    console.print(("[green]✓ " if report.ok else "[red]✗ ") + report.summary())
    raise typer.Exit(0 if report.ok else 1)
