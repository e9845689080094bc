"""The operators' console in a real browser: Debian's chromium, headless, driven by Playwright, against
the whole stack (five services as processes, real broker and Postgres, the gateway that serves the
console). Sign in, search a shipment and open its timeline, replay a dead letter from the console
(dry run, then for real, with a reason) and watch the already-open shipment page change by itself;
then the health signals and the KPI charts.

Screenshots of every page (1280×800) go to ``$RASTRO_TEST_ARTIFACTS/console`` or, by default,
``tests/artifacts/console`` (git-ignored). Without chromium at /usr/bin/chromium the test tries
``apt-get install chromium`` once (as root, time-limited) and otherwise skips, saying why.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from rastro_kit.testing import wait_until
from tests import chromium_install
from tests.chromium_install import CHROMIUM
from tests.e2e.stack import Receiver, Stack, until_known_everywhere

pytestmark = pytest.mark.e2e

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
INSTALL_TIMEOUT_S = 300
ROOT = Path(__file__).resolve().parents[2]
SCREEN = {"width": 1280, "height": 800}
LIVE_MS = 30_000  # the deadline for anything the pages must show by themselves
SCOPES = ["events:write", "shipments:read", "mappings:manage", "subscriptions:manage", "dead-letters:manage"]
SHIPPED, STUCK = "CS100000001BR", "CS200000002BR"
UNKNOWN_CODE = "ZZZ-77"


@pytest.fixture(scope="session")
def chromium() -> str:
    """Skips (once for the session: pytest caches a fixture's skip) when no chromium can be had."""
    pytest.importorskip("playwright.async_api", reason="the playwright package is not installed")
    if not CHROMIUM.exists():
        why = chromium_install.wait(INSTALL_TIMEOUT_S)
        if not CHROMIUM.exists():
            pytest.skip(f"browser tests skipped: no chromium at {CHROMIUM}: {why}")
    return str(CHROMIUM)


@pytest.fixture(scope="module")
def artifacts() -> Path:
    root = Path(os.environ.get("RASTRO_TEST_ARTIFACTS") or ROOT / "tests" / "artifacts")
    folder = root / "console"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


@pytest.fixture(scope="module")
async def browser(chromium: str) -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


def event(number: str, code: str, at: datetime) -> dict[str, Any]:
    return {
        "type": "tracking.event",
        "carrier": "correios",
        "tracking_number": number,
        "status_code": code,
        "occurred_at": at.isoformat(),
        "location": {"city": "Curitiba", "state": "PR", "country": "BR"},
    }


@pytest.fixture(scope="module")
async def tenant(e2e_stack: Stack, gateway: str, receiver: tuple[Receiver, str]) -> dict[str, Any]:
    """A tenant whose key may also change mappings, a webhook subscription (so there are delivery
    attempts to show), a delivered shipment, and one stuck behind a carrier code nobody knows."""
    hook, hook_url = receiver
    name = f"console{secrets.token_hex(3)}"
    admin = {"Authorization": f"Bearer {e2e_stack.admin_key}"}
    async with httpx.AsyncClient(base_url=gateway, timeout=30) as client:
        r = await client.post("/v1/tenants", json={"id": name, "name": name}, headers=admin)
        assert r.status_code == 201, r.text
        r = await client.post(
            f"/v1/tenants/{name}/keys", json={"name": "console", "scopes": SCOPES}, headers=admin
        )
        assert r.status_code == 201, r.text
        key = str(r.json()["key"])
        auth = {"Authorization": f"Bearer {key}"}
        await until_known_everywhere(client, key)
        r = await client.post(
            "/v1/subscriptions", json={"url": hook_url, "description": "console e2e"}, headers=auth
        )
        assert r.status_code == 201, r.text
        hook.secrets.append(r.json()["secret"])
        now = datetime.now(UTC)
        events = [
            event(SHIPPED, "PO-01", now - timedelta(days=2)),
            event(SHIPPED, "BDE-01", now - timedelta(hours=3)),
            event(STUCK, "PO-01", now - timedelta(days=1)),
            event(STUCK, UNKNOWN_CODE, now - timedelta(hours=2)),
        ]
        r = await client.post("/v1/events", json={"events": events}, headers=auth)
        assert r.status_code == 202, r.text

        async def settled() -> bool:
            stuck = await client.get(f"/v1/shipments/{STUCK}", headers=auth)
            shipped = await client.get(f"/v1/shipments/{SHIPPED}", headers=auth)
            letters = await client.get(
                "/v1/dead-letters", params={"reason": "unmapped_carrier_code"}, headers=auth
            )
            return (
                stuck.status_code == 200
                and shipped.status_code == 200
                and shipped.json()["status"] == "delivered"
                and len(letters.json()["items"]) == 1
            )

        await wait_until(
            settled, timeout=30, interval=0.3, message="shipments read and the dead letter stored"
        )
    return {"name": name, "key": key, "auth": auth}


async def shoot(page: Any, folder: Path, name: str) -> None:
    path = folder / f"{name}.png"
    await page.screenshot(path=str(path))
    print(f"screenshot: {path}")


async def test_search_timeline_and_a_replay_from_the_console_show_live(
    browser: Any, gateway: str, tenant: dict[str, Any], artifacts: Path
) -> None:
    from playwright.async_api import expect

    context = await browser.new_context(viewport=SCREEN)
    page = await context.new_page()
    await page.goto(gateway + "/")
    await expect(page.locator("#api_key")).to_be_visible()
    await shoot(page, artifacts, "01-sign-in")
    await page.fill("#api_key", tenant["key"])
    await page.click("button[type=submit]")
    await expect(page.locator("header .key")).to_contain_text(f"{tenant['name']} key")

    await page.fill("input[name=q]", STUCK[:6])
    await page.click("form[role=search] button")
    await expect(page.locator("#shipments tbody tr")).to_have_count(1)
    await shoot(page, artifacts, "02-shipment-search")
    await page.get_by_role("link", name=STUCK).click()
    live = page.locator("#shipment-live")
    await expect(live.locator("h1 .pill")).to_have_text("in transit")
    await expect(live.locator("#timeline tbody tr")).to_have_count(1)
    await expect(live.locator("#timeline")).to_contain_text("correios:PO-01")
    await page.evaluate("window.rastroNotReloaded = true")  # gone if the page reloads
    await shoot(page, artifacts, "03-shipment-timeline")

    # The operator learns what ZZZ-77 means and teaches it to the tenant's mapping, then replays.
    async with httpx.AsyncClient(base_url=gateway, timeout=30) as client:
        r = await client.put(
            f"/v1/mappings/statuses/correios/{UNKNOWN_CODE}",
            json={"status": "delivered", "substatus": "delivered.signed"},
            headers=tenant["auth"],
        )
        assert r.status_code in (200, 201), r.text

    console = await context.new_page()
    await console.goto(gateway + "/console/dead-letters?reason=unmapped_carrier_code")
    await expect(console.locator("#dead-letters tbody tr[data-id]")).to_have_count(1)
    await expect(console.locator("table[data-group=reason] [data-total]")).to_have_text("1")
    await shoot(console, artifacts, "04-dead-letters")
    await console.click("#dead-letters tbody tr[data-id] a")
    await expect(console.locator("#dead-letter-live h1")).to_contain_text("unmapped_carrier_code")
    await console.fill("input[name=reason]", f"mapping for {UNKNOWN_CODE} added")
    await console.click("button[value=dry-run]")
    await expect(console.locator("#replay-result [data-outcome=dry-run]")).to_contain_text(
        "1 would be replayed"
    )
    await shoot(console, artifacts, "05-dead-letter-dry-run")
    await console.click("button[value=replay]")
    await expect(console.locator("#replay-result [data-outcome=replayed]")).to_contain_text("Replayed 1")
    await expect(console.locator("#letter-status")).to_have_text("replayed", timeout=LIVE_MS)
    await shoot(console, artifacts, "06-dead-letter-replayed")

    # The shipment page, open all along and never reloaded, has moved on by itself.
    await expect(live.locator("h1 .pill")).to_have_text("delivered", timeout=LIVE_MS)
    await expect(live.locator("#timeline tbody tr")).to_have_count(2)
    await expect(live.locator("#timeline")).to_contain_text(f"correios:{UNKNOWN_CODE}")
    assert await page.evaluate("window.rastroNotReloaded === true")
    await page.bring_to_front()
    await shoot(page, artifacts, "07-shipment-after-replay")
    await context.close()


async def test_health_signals_kpi_charts_and_subscriptions(
    browser: Any, gateway: str, tenant: dict[str, Any], artifacts: Path
) -> None:
    from playwright.async_api import expect

    context = await browser.new_context(viewport=SCREEN)
    page = await context.new_page()
    await page.goto(gateway + "/console/login")
    await page.fill("#api_key", tenant["key"])
    await page.click("button[type=submit]")
    await expect(page.locator("header .key")).to_be_visible()

    await page.goto(gateway + "/console/health")
    signals = page.locator(".signal[data-signal]")
    await expect(signals).to_have_count(4)

    async def numbers() -> dict[str, float] | None:
        pairs = await signals.evaluate_all("els => els.map(e => [e.dataset.signal, e.dataset.value])")
        values = {name: float(value) for name, value in pairs if value}
        return values if len(values) == 4 else None

    values = await wait_until(
        numbers, timeout=LIVE_MS / 1000, interval=0.5, message="four signals with numbers"
    )
    assert values is not None
    assert 0 <= values["availability"] <= 1 and 0 <= values["webhooks"] <= 1
    assert values["queue"] >= 0 and values["dlq"] >= 0
    await shoot(page, artifacts, "08-health")

    await page.goto(gateway + "/console/kpis?period=day")
    trend = page.locator("figure[data-chart=trend]")
    await expect(trend.locator("svg")).to_be_visible(timeout=LIVE_MS)
    assert int(await trend.get_attribute("data-points") or 0) > 0
    box = await trend.locator("svg").bounding_box()
    assert box is not None and box["width"] > 300 and box["height"] > 150
    await expect(page.locator("figure.chart")).to_have_count(4)
    await shoot(page, artifacts, "09-kpis")

    await page.goto(gateway + "/console/subscriptions")
    await page.click("#subscriptions a")
    await expect(page.locator("#attempts tbody tr .pill").first).to_be_visible(timeout=LIVE_MS)
    await shoot(page, artifacts, "10-subscription-attempts")
    await context.close()
