"""The console's server side over HTTP, against stand-in services (in memory, no browser): sign-in,
sessions, CSRF, scopes left to the services, and the health panel's numbers."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from rich.console import Console
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from rastro_cli.console import build_console
from rastro_cli.console.settings import ConsoleSettings
from rastro_cli.devstack.ready_panel import ReadyInfo, print_ready

pytestmark = pytest.mark.integration

TENANT_KEY, OPERATOR_KEY = "rk_test_tenant_key_acme_0001", "rk_admin_operator_key_0002"
VIEWER_KEY, ADMIN_KEY = "rk_test_viewer_key_acme_0003", "rk_test_admin_key_acme_0004"
THREE_PL_KEY = "rk_test_3pl_key_acme_0005"  # acme's key that also acts for globex (docs/roles.md)
SELF = {  # what ingest's GET /v1/keys/self answers them (the two keys above meet an "older" ingest: 404)
    key: {
        "id": f"key_{role}",
        "tenant_id": "acme",
        "operator": False,
        "role": role,
        "tenants": tenants,
        "scopes": s,
    }
    for key, role, s, tenants in (
        (VIEWER_KEY, "viewer", ["shipments:read", "subscriptions:read"], []),
        (ADMIN_KEY, "admin", ["admin", "dead-letters:manage", "shipments:read"], []),
        (THREE_PL_KEY, "sre", ["shipments:read", "dead-letters:read"], ["globex"]),
    )
}
SERVICES = ("ingest", "normalization", "eta", "notification", "dlq-replay")
METRICS = """\
# TYPE rastro_http_requests_total counter
rastro_http_requests_total{code="200",route="/v1/events",service="ingest"} 9.0
rastro_http_requests_total{code="503",route="/v1/events",service="ingest"} 1.0
# TYPE rastro_webhook_attempts_total counter
rastro_webhook_attempts_total{outcome="delivered"} 3.0
rastro_webhook_attempts_total{outcome="retry"} 1.0
# TYPE rastro_consumer_lag gauge
rastro_consumer_lag{partition="0",service="x",topic="t"} 2.0
# TYPE rastro_outbox_pending gauge
rastro_outbox_pending{service="x"} 1.0
"""


JOB = {
    "id": "J1",
    "status": "pending",
    "reason": "codes mapped",
    "total": 3,
    "replayed": 0,
    "skipped": 0,
    "failed": 0,
    "progress": 0.0,
    "rate_per_second": 50.0,
}


ARRIVED = {
    "event_id": "E2",
    "occurred_at": "2026-11-30T10:41:00-03:00",
    "status": "out_for_delivery",
    "substatus": "out_for_delivery.nearby",
    "carrier": "frota-propria",
    "status_code": "GEOFENCE-ARRIVED",
    "description": "412 m from the destination",
    "carrier_description": "412 m from the destination",
    "location": {"city": None, "state": None, "country": None},
    "withdrawn": False,
}
FLEET_SHIPMENT = {
    "tracking_number": "FLEET1",
    "status": "out_for_delivery",
    "substatus": "out_for_delivery.nearby",
    "carrier": "frota-propria",
    "timeline": [ARRIVED],
    "position": {
        "vehicle_id": "VAN-7",
        "route_id": "R-12",
        "last": {
            "recorded_at": "2026-11-30T10:42:00-03:00",
            "latitude": -23.561684,
            "longitude": -46.655981,
            "speed_kmh": 12.0,
            "recent_speed_kmh": 21.4,
            "remaining_m": 380,
            "route_remaining_m": 450,
            "arrived": True,
            "off_route": False,
        },
    },
}
FLEET_ETA = {
    "predicted_at": "2026-11-30T10:42:05-03:00",
    "milestone": "out_for_delivery",
    "expected_date": "2026-11-30",
    "promise_date": "2026-11-30",
    "expected_at": "2026-11-30T10:47:00-03:00",
    "basis": {"lane_key": "last mile", "level": "last_mile", "sample_size": 0, "confidence": "high"},
}


class Services:
    """Every service at once, told apart by Host; it records what the console asked."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str, dict[str, str], Any]] = []

    async def handle(self, request: Request) -> Response:
        service, path = request.url.hostname or "", request.url.path
        auth = request.headers.get("authorization", "").removeprefix("Bearer ")
        body: Any = await request.json() if request.method == "POST" else None
        self.calls.append((service, request.method + " " + path, auth, dict(request.query_params), body))
        if path == "/metrics":
            return PlainTextResponse(METRICS)
        if path == "/readyz":
            return JSONResponse({"status": "ready", "checks": {"database": True}})
        if auth not in (TENANT_KEY, OPERATOR_KEY, *SELF):
            return JSONResponse({"type": "about:blank", "detail": "A valid API key is required."}, 401)
        operator = auth == OPERATOR_KEY
        if path == "/v1/keys/self" and auth in SELF:
            return JSONResponse(SELF[auth])
        if path == "/v1/mappings":
            if operator:
                return JSONResponse({"type": "https://rastro.dev/problems/tenant-required"}, 422)
            return JSONResponse({"tenant": "acme", "version": 1})
        if path == "/v1/tenants":
            return JSONResponse(
                {"items": [{"id": "acme"}, {"id": "demo"}]} if operator else {}, 200 if operator else 403
            )
        if path == "/v1/shipments":
            return JSONResponse(
                {"items": [{"tracking_number": "AA123456785BR", "status": "delivered"}], "next_cursor": None}
            )
        if path == "/v1/shipments/FLEET1":
            return JSONResponse(FLEET_SHIPMENT)
        if path == "/v1/shipments/FLEET1/eta/history":
            return JSONResponse({"items": [FLEET_ETA]})
        if path == "/v1/dead-letters/stats":
            return JSONResponse({"total": 3, "groups": [{"key": "unmapped_carrier_code", "count": 3}]})
        if path == "/v1/dead-letters/DL1":
            return JSONResponse(
                {"id": "DL1", "reason": "unmapped_carrier_code", "status": "new", "value": {}}
            )
        if path == "/v1/dead-letters/replay" and "filter" in body:
            if body["dry_run"]:
                groups = [{"service": "normalization", "reason": "unmapped_carrier_code", "count": 3}]
                return JSONResponse(
                    {"dry_run": True, "total": 3, "replayable": 3, "groups": groups, "filter": {}}
                )
            return JSONResponse(JOB, 202)
        if path == "/v1/replay-jobs/J1":
            return JSONResponse({**JOB, "status": "completed", "replayed": 3, "progress": 1.0})
        if path == "/v1/dead-letters/replay":
            replays = [{"id": "DL1", "replay_id": "R1", "topic": "rastro.normalization.replay"}]
            return JSONResponse(
                {
                    "replayed": 1,
                    "skipped": [],
                    "dry_run": body["dry_run"],
                    "replay_ids": ["R1"],
                    "replays": replays,
                }
            )
        return JSONResponse({"detail": "Not Found"}, 404)

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/{path:path}", self.handle, methods=["GET", "POST"])])

    def replays(self) -> list[tuple[str, Any]]:
        return [
            (auth, body) for _, what, auth, _, body in self.calls if what == "POST /v1/dead-letters/replay"
        ]


@pytest.fixture
def services() -> Services:
    return Services()


@pytest.fixture
async def console_app(services: Services) -> AsyncIterator[ASGIApp]:
    """The console as the gateway runs it: its host's lifespan state holds the upstream client."""
    settings = ConsoleSettings(secret=SecretStr("test-secret-of-at-least-16-bytes"), poll_seconds=3)
    console = build_console({s: f"http://{s}" for s in SERVICES}, settings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=services.app())) as upstream:

        async def host(scope: Scope, receive: Receive, send: Send) -> None:
            scope["state"] = {"client": upstream}
            await console(scope, receive, send)

        yield host


def browser(app: ASGIApp) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://console.test")


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, html
    return match.group(1)


async def sign_in(client: httpx.AsyncClient, key: str) -> str:
    form = await client.get("/login")
    response = await client.post("/login", data={"csrf": csrf_of(form.text), "api_key": key})
    assert response.status_code == 303, response.text
    return csrf_of((await client.get("/shipments")).text)


async def test_pages_send_a_stranger_to_the_sign_in_form(console_app: ASGIApp) -> None:
    async with browser(console_app) as client:
        page = await client.get("/shipments")
        assert (page.status_code, page.headers["location"]) == (303, "/login")
        poll = await client.get("/health/panel", headers={"HX-Request": "true"})
        assert (poll.status_code, poll.headers["hx-redirect"]) == (204, "/login")
        form = await client.get("/login")
        assert form.status_code == 200 and 'name="api_key"' in form.text
        assert "script-src" not in form.headers["content-security-policy"]  # default-src 'self' covers it
        assert "frame-ancestors 'none'" in form.headers["content-security-policy"]
        assert form.headers["cache-control"] == "no-store"


async def test_sign_in_needs_the_form_token_and_a_key_the_services_know(console_app: ASGIApp) -> None:
    async with browser(console_app) as client:
        forged = await client.post("/login", data={"csrf": "x", "api_key": TENANT_KEY})
        assert forged.status_code == 403 and "rastro_console=" not in forged.headers.get("set-cookie", "")
        form = await client.get("/login")
        refused = await client.post(
            "/login", data={"csrf": csrf_of(form.text), "api_key": "rk_live_nobody_knows_me"}
        )
        assert refused.status_code == 401 and "not valid" in refused.text
        assert "rastro_console=" not in refused.headers.get("set-cookie", "")


async def test_a_session_keeps_the_key_on_the_server(console_app: ASGIApp, services: Services) -> None:
    async with browser(console_app) as client:
        form = await client.get("/login")
        response = await client.post("/login", data={"csrf": csrf_of(form.text), "api_key": TENANT_KEY})
        cookie = next(c for c in response.headers.get_list("set-cookie") if c.startswith("rastro_console="))
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
        assert TENANT_KEY not in cookie and TENANT_KEY[-8:] not in cookie
        page = await client.get("/shipments", params={"q": "aa123"})
        assert page.status_code == 200 and "acme key …0001" in page.text and "AA123456785BR" in page.text
        assert TENANT_KEY not in page.text
        listed = [c for c in services.calls if c[1] == "GET /v1/shipments"][-1]
        assert listed[2] == TENANT_KEY and listed[3]["q"] == "AA123" and "tenant" not in listed[3]


async def test_a_replay_needs_this_sessions_csrf_token_and_this_origin(
    console_app: ASGIApp, services: Services
) -> None:
    async with browser(console_app) as client, browser(console_app) as other:
        token = await sign_in(client, TENANT_KEY)
        others_token = await sign_in(other, TENANT_KEY)
        form = {"reason": "mapping added", "action": "dry-run"}
        assert (await client.post("/dead-letters/DL1/replay", data=form)).status_code == 403
        assert (
            await client.post("/dead-letters/DL1/replay", data={**form, "csrf": others_token})
        ).status_code == 403
        cross = await client.post(
            "/dead-letters/DL1/replay", data={**form, "csrf": token}, headers={"Origin": "http://evil.test"}
        )
        assert cross.status_code == 403
        assert services.replays() == []
        done = await client.post(
            "/dead-letters/DL1/replay",
            data=form,
            headers={"X-CSRF-Token": token, "HX-Request": "true", "Origin": "http://console.test"},
        )
        assert done.status_code == 200 and 'data-outcome="dry-run"' in done.text
        assert services.replays() == [
            (TENANT_KEY, {"ids": ["DL1"], "reason": "mapping added", "dry_run": True})
        ]
        blank = await client.post(
            "/dead-letters/DL1/replay", data={"csrf": token, "reason": " ", "action": "replay"}
        )
        assert "Give a reason" in blank.text and len(services.replays()) == 1


async def test_sign_out_ends_the_session_for_good(console_app: ASGIApp) -> None:
    async with browser(console_app) as client:
        token = await sign_in(client, TENANT_KEY)
        old_cookie = client.cookies["rastro_console"]
        out = await client.post("/logout", data={"csrf": token})
        assert (out.status_code, out.headers["location"]) == (303, "/login")
        client.cookies.set("rastro_console", old_cookie)
        assert (await client.get("/shipments")).headers["location"] == "/login"


async def test_an_operator_chooses_the_tenant_the_services_are_asked_about(
    console_app: ASGIApp, services: Services
) -> None:
    async with browser(console_app) as client:
        token = await sign_in(client, OPERATOR_KEY)
        page = await client.get("/shipments")
        assert "operator key" in page.text and '<option value="acme"' in page.text
        await client.post("/tenant", data={"csrf": token, "tenant": "acme", "back": "/shipments"})
        await client.get("/shipments")
        assert [c for c in services.calls if c[1] == "GET /v1/shipments"][-1][3]["tenant"] == "acme"
        await client.post("/tenant", data={"csrf": token, "tenant": "someone-else"})  # not a tenant: ignored
        await client.get("/shipments")
        assert [c for c in services.calls if c[1] == "GET /v1/shipments"][-1][3]["tenant"] == "acme"


async def test_a_3pl_key_switches_between_its_own_tenant_and_those_it_acts_for(
    console_app: ASGIApp, services: Services
) -> None:
    def asked() -> dict[str, str]:
        return [c for c in services.calls if c[1] == "GET /v1/shipments"][-1][3]

    async with browser(console_app) as client:
        token = await sign_in(client, THREE_PL_KEY)
        page = (await client.get("/shipments")).text
        assert '<option value="acme" selected>' in page and '<option value="globex">' in page
        assert "all tenants" not in page  # only an operator key sees every tenant
        assert "tenant" not in asked()  # its own tenant: the key says which
        await client.post("/tenant", data={"csrf": token, "tenant": "globex", "back": "/shipments"})
        await client.get("/shipments")
        assert asked()["tenant"] == "globex"
        await client.post("/tenant", data={"csrf": token, "tenant": "initech"})  # not listed: ignored
        await client.get("/shipments")
        assert asked()["tenant"] == "globex"
        await client.post("/tenant", data={"csrf": token, "tenant": "acme"})
        await client.get("/shipments")
        assert "tenant" not in asked()
    async with browser(console_app) as plain:
        await sign_in(plain, VIEWER_KEY)
        assert 'action="/console/tenant"' not in (await plain.get("/shipments")).text
        assert 'class="tenant"' not in (await plain.get("/shipments")).text


async def test_a_fleet_shipment_shows_its_vehicle_last_position_and_geofence_events(
    console_app: ASGIApp,
) -> None:
    async with browser(console_app) as client:
        await sign_in(client, TENANT_KEY)
        page = (await client.get("/shipments/FLEET1")).text
        assert 'id="position"' in page and "VAN-7" in page and "route R-12" in page
        assert '<code id="last-position">-23.56168, -46.65598</code>' in page
        assert "0.4 km (0.5 km along the route)" in page and "in the destination area" in page
        assert 'class="geofence"' in page and "GEOFENCE-ARRIVED" in page  # marked on the timeline
        assert "2026-11-30T10:47:00-03:00" in page or "10:47" in page  # the last-mile time
    async with browser(console_app) as client:
        await sign_in(client, TENANT_KEY)
        assert 'id="position"' not in (await client.get("/shipments/AA123456785BR")).text


async def test_the_health_panel_shows_the_four_signals(console_app: ASGIApp) -> None:
    async with browser(console_app) as client:
        await sign_in(client, TENANT_KEY)
        panel = (await client.get("/health/panel", headers={"HX-Request": "true"})).text
    values = dict(re.findall(r'data-signal="(\w+)" data-value="([^"]*)"', panel))
    # Five services expose the same counters: 45 of 50 requests were not 5xx, 15 of 20 attempts delivered.
    assert float(values["availability"]) == pytest.approx(0.9)
    assert float(values["webhooks"]) == pytest.approx(0.75)
    assert float(values["queue"]) == 15  # (2 lag + 1 outbox) x 5
    assert values["dlq"] == "3"
    assert 'class="signal tone-warn" data-signal="dlq"' in panel  # dead letters waiting: amber
    assert "unmapped_carrier_code" in panel and "5 of 5 services ready" in panel


@pytest.mark.unit
def test_the_ready_panel_of_make_run_points_at_the_console() -> None:
    console = Console(record=True, width=160, color_system=None)
    info = ReadyInfo(
        "http://127.0.0.1:8000",
        "rk_admin",
        "rk_demo",
        "b:1",
        "postgresql://x/y",
        "",
        "",
        Path("l"),
        Path("e"),
        None,
    )
    print_ready(console, info)
    assert "http://127.0.0.1:8000/console/" in console.export_text()


async def test_a_replay_by_filter_sends_the_lists_filters_and_follows_the_job(
    console_app: ASGIApp, services: Services
) -> None:
    async with browser(console_app) as client:
        token = await sign_in(client, TENANT_KEY)
        form = {"csrf": token, "reason": "codes mapped", "action": "dry-run"}
        form |= {"filter_service": "", "filter_reason": "unmapped_carrier_code", "filter_status": "new"}
        form["filter_q"] = "ZZZ"
        preview = await client.post("/dead-letters/replay", data=form, headers={"HX-Request": "true"})
        assert 'data-outcome="bulk-dry-run"' in preview.text and "<strong>3</strong>" in preview.text
        started = await client.post("/dead-letters/replay", data={**form, "action": "replay"})
        assert (
            'data-outcome="bulk-pending"' in started.text and 'hx-get="/dead-letters/jobs/J1"' in started.text
        )
        done = await client.get("/dead-letters/jobs/J1", headers={"HX-Request": "true"})
        assert 'data-outcome="bulk-completed"' in done.text and "3 replayed" in done.text
    bodies = [body for _, body in services.replays()]
    chosen = {"reason": "unmapped_carrier_code", "q": "ZZZ", "status": ["new"]}
    assert bodies[0] == {"filter": chosen, "reason": "codes mapped", "dry_run": True}
    assert bodies[1]["dry_run"] is False


async def test_buttons_a_keys_role_would_be_refused_are_disabled(console_app: ASGIApp) -> None:
    replay_buttons = re.compile(r'<button type="submit" name="action" value="(?:dry-run|replay)"[^>]*>')
    async with browser(console_app) as viewer, browser(console_app) as admin:
        await sign_in(viewer, VIEWER_KEY)
        await sign_in(admin, ADMIN_KEY)
        for path in ("/dead-letters/DL1", "/dead-letters"):
            seen = (await viewer.get(path)).text
            buttons = replay_buttons.findall(seen)
            assert len(buttons) == 2 and all("disabled" in b for b in buttons), buttons
            assert all('title="needs scope dead-letters:manage"' in b for b in buttons)
            assert "acme key …0003" in seen and 'data-role="viewer"' in seen and "role viewer" in seen
            shown = (await admin.get(path)).text
            buttons = replay_buttons.findall(shown)
            assert len(buttons) == 2 and not any("disabled" in b for b in buttons), buttons
            assert "role admin" in shown and "scopes: admin, dead-letters:manage" in shown
