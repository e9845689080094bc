"""The demo tenant, its key, and the demo feed: warnings, never failures, when any of it goes wrong."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
from rich.console import Console

from rastro_cli.devstack.catalog import SERVICES, service_url
from rastro_cli.devstack.credentials import DemoTenantError, create_demo_key
from rastro_cli.devstack.demo_feed import demo_events, post_demo_events, s10_tracking_number
from rastro_cli.devstack.demo_fleet import demo_fleet, post_demo_fleet
from rastro_cli.devstack.gateway import DEMO_WEBHOOKS_PATH

__all__ = ["set_up_demo"]


async def set_up_demo(
    console: Console, base_url: str, admin_key: str, *, seed: int | None, fake_carrier_url: str = ""
) -> tuple[str | None, str | None]:
    """The demo tenant's new key and one fed tracking number; ``seed=None`` skips the feed and the
    polling of the fake carrier."""
    ingest = next(s for s in SERVICES if s.name == "ingest")
    async with httpx.AsyncClient(trust_env=False, timeout=15.0) as client:
        try:
            demo_key = await create_demo_key(client, service_url(ingest), admin_key)
        except (DemoTenantError, httpx.HTTPError) as exc:
            console.print(f"[yellow]! demo tenant not created: {exc}[/]")
            return None, None
        if seed is None:
            return demo_key, None
        await _subscribe_demo_webhooks(console, client, base_url, admin_key)
        try:
            feed = await post_demo_events(client, base_url, demo_key, demo_events(seed, datetime.now(UTC)))
        except httpx.HTTPStatusError as exc:
            answer = f"{exc.response.status_code} {exc.response.text[:300]}"
            console.print(f"[yellow]! demo feed refused: {answer}[/]")
            return demo_key, None
        except httpx.HTTPError as exc:
            console.print(f"[yellow]! demo feed failed: {type(exc).__name__}: {exc}[/]")
            return demo_key, None
    console.print(
        f"[green]✓[/] demo: {feed.events} Correios events for {len(feed.tracking_numbers)} "
        "shipments of tenant demo"
    )
    await _drive_demo_van(console, base_url, demo_key, seed)
    if fake_carrier_url:
        await _poll_fake_carrier(console, base_url, admin_key, demo_key, fake_carrier_url, seed)
    return demo_key, feed.tracking_numbers[0]


async def _drive_demo_van(console: Console, base_url: str, demo_key: str, seed: int) -> None:
    """An own-fleet van two thirds of the way to its delivery (docs/fleet.md)."""
    fleet = demo_fleet(seed, datetime.now(UTC))
    try:
        async with httpx.AsyncClient(trust_env=False, timeout=15.0) as client:
            followed = await post_demo_fleet(client, base_url, demo_key, fleet)
    except httpx.HTTPError as exc:
        console.print(f"[yellow]! own-fleet demo not set up: {type(exc).__name__}: {exc}[/]")
        return
    if not followed:
        console.print("[yellow]! own-fleet demo: the van's shipment was not assigned in time[/]")
        return
    console.print(
        f"[green]✓[/] demo: van {fleet.order['vehicle_id']} on its way with {fleet.tracking_number} "
        f"({len(fleet.positions)} GPS positions): /console/shipments/{fleet.tracking_number}"
    )


async def _subscribe_demo_webhooks(
    console: Console, client: httpx.AsyncClient, base_url: str, admin_key: str
) -> None:
    """Tenant demo's webhooks go to the gateway's sink, so the console's webhook success rate (and
    its subscriptions page) have deliveries to show. Once: a restart finds the subscription there."""
    url, admin = base_url + DEMO_WEBHOOKS_PATH, {"Authorization": f"Bearer {admin_key}"}
    try:
        r = await client.get(f"{base_url}/v1/subscriptions", params={"tenant": "demo"}, headers=admin)
        r.raise_for_status()
        if any(s.get("url") == url for s in r.json()["items"]):
            return
        body = {"url": url, "event_types": ["*"], "description": "demo: the gateway's webhook sink"}
        r = await client.post(
            f"{base_url}/v1/subscriptions", params={"tenant": "demo"}, json=body, headers=admin
        )
        r.raise_for_status()
    except httpx.HTTPError as exc:
        console.print(f"[yellow]! demo webhook subscription not created: {type(exc).__name__}: {exc}[/]")


async def _poll_fake_carrier(
    console: Console, base_url: str, admin_key: str, demo_key: str, fake_url: str, seed: int
) -> None:
    """A Correios connection for tenant demo, pointed at the local fake, polling a few shipments."""
    numbers = [s10_tracking_number("PL", seed * 1000 + i) for i in range(5)]
    connection = {
        "carrier": "correios",
        "name": "demo (fake Correios)",
        "base_url": fake_url,
        "credentials": {"username": "demo", "access_code": "demo"},
        "polling": {"interval_s": 30, "delivered_interval_s": 300, "batch_size": 50},
    }
    try:
        async with httpx.AsyncClient(base_url=base_url, trust_env=False, timeout=15.0) as client:
            admin = {"Authorization": f"Bearer {admin_key}"}
            r = await client.post(
                "/v1/carriers/connections", params={"tenant": "demo"}, json=connection, headers=admin
            )
            r.raise_for_status()
            r = await client.post(
                f"/v1/carriers/connections/{r.json()['id']}/shipments",
                json={"tracking_numbers": numbers},
                headers={"Authorization": f"Bearer {demo_key}"},
            )
            r.raise_for_status()
    except httpx.HTTPError as exc:
        console.print(f"[yellow]! carrier polling demo not set up: {type(exc).__name__}: {exc}[/]")
        return
    console.print(
        f"[green]✓[/] demo: polling the fake Correios at {fake_url} for {', '.join(numbers[:2])}, …"
    )
