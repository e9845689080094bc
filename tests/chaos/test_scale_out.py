"""Scale out, shown: a second instance of every consumer service joins its consumer groups under load,
the partitions are shared, and a SIGTERM of the second instances mid-stream loses nothing and applies
nothing twice (the checker from ``rastro_cli.checker`` proves it).

SIGTERM is the graceful path: each instance finishes the batch it holds, commits it (database, then
offsets) and exits 0; its partitions go back to the first instance (on Tansu only after the session
timeout: it ignores LeaveGroup), which goes on from the committed offsets.
"""

from __future__ import annotations

import asyncio
import secrets
import signal
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from rastro_cli.checker import check_run, check_webhooks
from rastro_cli.loadgen import lifecycles, post_plan, read_manifest, send_plan, write_manifest
from rastro_kit.testing import free_port, wait_until
from tests.e2e.stack import SERVICES, Receiver, ServiceProcess, Stack, until_known_everywhere

pytestmark = pytest.mark.e2e

SHIPMENTS = 60
RATE = 300.0


async def _metric(client: httpx.AsyncClient, url: str, name: str) -> float:
    """The sum of a metric's samples on one instance (0 when it has none yet)."""
    text = (await client.get(url + "/metrics")).text
    return sum(
        s.value for family in text_string_to_metric_families(text) for s in family.samples if s.name == name
    )


def _rss_mib(process: ServiceProcess) -> float:
    assert process.process is not None
    for line in Path(f"/proc/{process.process.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def test_two_instances_share_the_partitions_and_a_sigterm_loses_nothing(
    e2e_stack: Stack,
    gateway: str,
    receiver: tuple[Receiver, str],
    database_url: str,
    kafka_bootstrap: str,
    tmp_path: Path,
) -> None:
    firsts = e2e_stack.services
    seconds = {
        name: ServiceProcess(
            name,
            port,
            {**firsts[name].env, "RASTRO_HTTP_PORT": str(port)},
            tmp_path / f"{name}-2.log",
        )
        for name, port in ((n, free_port()) for n in SERVICES)
    }
    for second in seconds.values():
        second.start()
    try:
        await _run(e2e_stack, seconds, gateway, receiver, database_url, kafka_bootstrap, tmp_path)
    finally:
        for second in seconds.values():
            second.stop()


async def _run(
    stack: Stack,
    seconds: dict[str, ServiceProcess],
    gateway: str,
    receiver: tuple[Receiver, str],
    database_url: str,
    kafka_bootstrap: str,
    tmp_path: Path,
) -> None:
    firsts = stack.services
    async with httpx.AsyncClient(timeout=5) as probe:
        for second in seconds.values():
            await wait_until(
                lambda s=second: _ready(probe, s), timeout=90, interval=0.25, message=f"{second.name}-2 ready"
            )

        # The rebalance: every service's two instances each hold some of its groups' partitions.
        async def shared() -> bool:
            held = [
                await _metric(probe, p.url, "rastro_consumer_assigned_partitions")
                for name in SERVICES
                for p in (firsts[name], seconds[name])
            ]
            return all(h > 0 for h in held)

        await wait_until(shared, timeout=90, interval=0.5, message="partitions shared by both instances")

        hook, hook_url = receiver
        run = f"so{secrets.token_hex(3)}"
        tenants = [f"{run}-a", f"{run}-b"]
        keys = {t: await stack.create_tenant(t) for t in tenants}
        async with httpx.AsyncClient(base_url=gateway, timeout=30) as client:
            for key in keys.values():
                await until_known_everywhere(client, key)
                r = await client.post(
                    "/v1/subscriptions",
                    headers={"Authorization": f"Bearer {key}"},
                    json={"url": hook_url, "event_types": ["tracking.*"], "description": "scale-out"},
                )
                assert r.status_code == 201, r.text
                hook.secrets.append(r.json()["secret"])

        plan = send_plan(lifecycles(tenants=tenants, shipments=SHIPMENTS, seed=23, run=run), seed=23)
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
        # The shared load: the second normalization instance handles part of this run's events.
        consumed = "rastro_events_consumed_total"
        before = await _metric(probe, seconds["normalization"].url, consumed)
        half = len(plan.sends) // 2
        await wait_until(lambda: sent[0] >= half or sending.done(), timeout=60, message="half the feed in")
        await wait_until(
            lambda: _grew(probe, seconds["normalization"].url, consumed, before),
            timeout=30,
            message="the second normalization instance handles part of the load",
        )
        rss = {
            f"{name}-{i}": round(_rss_mib(p))
            for name in SERVICES
            for i, p in ((1, firsts[name]), (2, seconds[name]))
        }

        for second in seconds.values():  # mid-stream, all at once
            assert second.process is not None
            second.process.send_signal(signal.SIGTERM)
        for second in seconds.values():
            assert second.process is not None
            code = await asyncio.to_thread(second.process.wait, 40)
            # uvicorn shuts down gracefully, then re-raises the signal: "killed by SIGTERM" is the norm.
            assert code in (0, -signal.SIGTERM), f"{second.name}-2 exited {code}:\n{second.tail()}"
            log = second.log_path.read_text()
            assert '"consumer_stopped"' in log and "Application shutdown complete" in log, second.tail()

        report = await sending
        assert report.events_sent == len(plan.sends)

    lines = read_manifest(manifest)
    result = await check_run(lines, database_url, kafka_bootstrap, timeout=150)
    check_webhooks([(m, b) for m, b in hook.raw if any(t.encode() in b for t in tenants)], result)
    assert result.ok, result.summary() + "\n" + "\n".join(result.violations[:20])
    assert result.handled + result.dead_lettered == result.events_in > 0
    print(f"\nscale-out: {result.summary()}; RSS MiB under load: {rss}")


async def _ready(client: httpx.AsyncClient, s: ServiceProcess) -> bool:
    if s.process is not None and s.process.poll() is not None:
        raise AssertionError(f"{s.name}-2 exited:\n{s.tail()}")
    try:
        return (await client.get(s.url + "/readyz")).status_code == 200
    except httpx.TransportError:
        return False


async def _grew(client: httpx.AsyncClient, url: str, name: str, before: float) -> bool:
    return await _metric(client, url, name) > before
