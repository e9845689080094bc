"""Proof under fire: load through the whole stack while a service is SIGKILLed, then the checker.

The five services run as processes (the e2e stack). A realistic feed (``rastro_cli.loadgen``: order
events, failed attempts, returns, losses, client retries, carrier repeats, shuffled shipments, poison
events) is posted at a fixed rate; midway a service is killed with SIGKILL and started again. When the
feed is in, ``rastro_cli.checker`` must find every event handled or dead-lettered (exact counts), every
shipment in the state its lifecycle implies with one timeline entry per distinct event, no shipment
ever going backwards on ``rastro.shipments.v1``, and no webhook-id delivered with two bodies.

`make test` runs small sizes; `make chaos` sets ``RASTRO_CHAOS_SHIPMENTS`` (and kills every service
in turn) for the issue's ≥ 20,000 events per scenario.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from pathlib import Path

import httpx
import pytest

from rastro_cli.checker import check_run, check_webhooks
from rastro_cli.loadgen import lifecycles, post_plan, read_manifest, send_plan, write_manifest
from rastro_kit.testing import wait_until
from tests.e2e.stack import Receiver, Stack, until_known_everywhere

pytestmark = pytest.mark.e2e

SHIPMENTS = int(os.environ.get("RASTRO_CHAOS_SHIPMENTS", "150"))
RATE = float(os.environ.get("RASTRO_CHAOS_RATE", "400"))
VICTIMS = tuple(os.environ.get("RASTRO_CHAOS_VICTIMS", "normalization").split(","))


@pytest.mark.parametrize("victim", VICTIMS)
async def test_sigkill_mid_stream_loses_nothing_and_applies_nothing_twice(
    victim: str,
    e2e_stack: Stack,
    gateway: str,
    receiver: tuple[Receiver, str],
    database_url: str,
    kafka_bootstrap: str,
    tmp_path: Path,
) -> None:
    hook, hook_url = receiver
    run = f"ch{secrets.token_hex(3)}"
    tenants = [f"{run}-a", f"{run}-b"]
    keys = {t: await e2e_stack.create_tenant(t) for t in tenants}
    async with httpx.AsyncClient(base_url=gateway, timeout=30) as client:
        for key in keys.values():
            await until_known_everywhere(client, key)
            r = await client.post(
                "/v1/subscriptions",
                headers={"Authorization": f"Bearer {key}"},
                json={"url": hook_url, "event_types": ["tracking.*"], "description": "chaos receiver"},
            )
            assert r.status_code == 201, r.text
            hook.secrets.append(r.json()["secret"])

    plan = send_plan(lifecycles(tenants=tenants, shipments=SHIPMENTS, seed=11, run=run), seed=11)
    manifest = tmp_path / "manifest.jsonl"
    write_manifest(manifest, plan)
    sent = [0]
    sending = asyncio.create_task(
        post_plan(
            plan,
            gateway,
            keys,
            rate=RATE,
            batch=50,
            concurrency=2,
            on_progress=lambda n: sent.__setitem__(0, sent[0] + n),
        )
    )
    # Kill once a third of the feed is in: the victim is busy, with work in flight.
    third = len(plan.sends) // 3
    await wait_until(lambda: sent[0] >= third or sending.done(), timeout=60, message="a third of the feed in")
    service = e2e_stack.services[victim]
    service.kill()
    service.start()  # the feed never paused: while the victim is down, its work waits (or is retried)
    report = await sending
    await e2e_stack.wait_ready(victim)
    assert report.events_sent == len(plan.sends)

    lines = read_manifest(manifest)
    result = await check_run(lines, database_url, kafka_bootstrap, timeout=120)
    check_webhooks([(m, b) for m, b in hook.raw if any(t.encode() in b for t in tenants)], result)
    assert result.ok, result.summary() + "\n" + "\n".join(result.violations[:20])
    assert result.handled + result.dead_lettered == result.events_in > 0
    assert result.dead_lettered == sum(len(line["event_ids"]) for line in lines if line["kind"] == "poison")
