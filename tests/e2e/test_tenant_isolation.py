"""Cross-tenant isolation on every route of every service, as each service's OpenAPI lists them.

Tenant A gets one of each resource (a shipment, a subscription with its messages, a dead letter, an ETA
lane, an API key). Then, for every operation of every service, tenant B's key asks for A's resources
(path parameters filled with A's ids, ``?tenant=A``): the answer is 403/404 where a path names A's
resource, and never a 2xx carrying A's data. A's own key gets 200 on the same reads, so the 404s are
isolation and not wrong ids; and A's resources are intact afterwards.
"""

from __future__ import annotations

import secrets
from typing import Any

import httpx
import pytest

from rastro_kit.testing import wait_until
from tests.e2e.stack import Stack, until_known_everywhere

pytestmark = pytest.mark.e2e
OPS_PATHS = {"/healthz", "/readyz", "/metrics"}
UPSERTS_BY_NATURAL_KEY = {"/v1/notifications/recipients/{tracking_number}"}


def event(number: str, code: str, at: str) -> dict[str, Any]:
    return {
        "type": "tracking.event",
        "carrier": "correios",
        "tracking_number": number,
        "status_code": code,
        "occurred_at": at,
        "location": {"city": "Campinas", "state": "SP", "country": "BR"},
    }


async def first_item(client: httpx.AsyncClient, path: str, auth: dict[str, str], **params: Any) -> Any:
    async def probe() -> Any:
        r = await client.get(path, params=params, headers=auth)
        return r.json()["items"][0] if r.status_code == 200 and r.json()["items"] else None

    return await wait_until(probe, timeout=45, interval=0.5, message=f"an item at {path}")


async def tenant_a_resources(
    stack: Stack, client: httpx.AsyncClient, tenant: str, key: str
) -> dict[str, str]:
    auth = {"Authorization": f"Bearer {key}"}
    number = f"IA{secrets.token_hex(4).upper()}BR"
    sub = await client.post(
        "/v1/subscriptions", json={"url": "http://127.0.0.1:9/hooks", "event_types": ["*"]}, headers=auth
    )
    assert sub.status_code == 201, sub.text
    shipped = {
        "type": "order.shipped",
        "order_id": f"O-{number}",
        "tracking_number": number,
        "carrier": "correios",
        "service": "SEDEX",
        "occurred_at": "2026-11-19T09:00:00-03:00",
        "origin": {"city": "Campinas", "state": "SP", "country": "BR"},
        "destination": {"city": "Recife", "state": "PE", "country": "BR"},
    }
    events = [
        shipped,
        event(number, "PO-01", "2026-11-20T09:00:00-03:00"),
        event(number, "BDE-01", "2026-11-23T14:05:11-03:00"),
        event(f"Z{number}", "ZZZ-99", "2026-11-23T10:00:00-03:00"),
    ]
    r = await client.post("/v1/events", json={"events": events}, headers=auth)
    assert r.status_code == 202, r.text
    admin = {"Authorization": f"Bearer {stack.admin_key}"}
    key_id = (await client.get(f"/v1/tenants/{tenant}/keys", headers=admin)).json()["items"][0]["id"]
    sub_id = sub.json()["id"]
    await first_item(client, "/v1/shipments", auth, status="delivered")
    lane = await first_item(client, "/v1/eta/lanes", auth)
    dead = await first_item(client, "/v1/dead-letters", auth, reason="unmapped_carrier_code")
    message = await first_item(client, f"/v1/subscriptions/{sub_id}/messages", auth)
    email = f"a{secrets.token_hex(4)}@example.com"
    r = await client.put(f"/v1/notifications/recipients/{number}", json={"email": email}, headers=auth)
    assert r.status_code in (200, 201), r.text
    return {
        "recipient_email": email,
        "tenant_id": tenant,
        "tracking_number": number,
        "sub_id": sub_id,
        "message_id": message["id"],
        "dead_letter_id": str(dead["id"]),
        "key_id": key_id,
        "lane": str(lane.get("lane") or lane),
    }


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (m.upper(), p, op) for p, ops in spec["paths"].items() if p not in OPS_PATHS for m, op in ops.items()
    ]


def request_body(op: dict[str, Any]) -> Any:
    content = op.get("requestBody", {}).get("content", {}).get("application/json")
    if content is None:
        return None
    if "example" in content:
        return content["example"]
    examples = content.get("examples") or {}
    return next(iter(examples.values()))["value"] if examples else {}


def fill(path: str, ids: dict[str, str]) -> str:
    for name, value in ids.items():
        path = path.replace("{" + name + "}", value)
    return path.replace("{", "unknown-").replace("}", "") if "{" in path else path


@pytest.fixture(scope="module")
async def tenants(e2e_stack: Stack, gateway: str) -> dict[str, Any]:
    a, b = f"isoa{secrets.token_hex(3)}", f"isob{secrets.token_hex(3)}"
    key_a, key_b = await e2e_stack.create_tenant(a), await e2e_stack.create_tenant(b)
    async with httpx.AsyncClient(base_url=gateway, timeout=30) as client:
        await until_known_everywhere(client, key_a)
        await until_known_everywhere(client, key_b)
        ids = await tenant_a_resources(e2e_stack, client, a, key_a)
    return {"a": a, "key_a": key_a, "key_b": key_b, "ids": ids}


async def test_tenant_b_never_reaches_tenant_a(e2e_stack: Stack, tenants: dict[str, Any]) -> None:
    ids, secrets_of_a = tenants["ids"], set(tenants["ids"].values())
    as_a = {"Authorization": f"Bearer {tenants['key_a']}"}
    as_b = {"Authorization": f"Bearer {tenants['key_b']}"}
    operator = {"Authorization": f"Bearer {e2e_stack.admin_key}"}
    checked, leaks = 0, []
    async with httpx.AsyncClient(timeout=30) as client:
        for service in e2e_stack.services.values():
            spec = (await client.get(service.url + "/openapi.json")).json()
            for method, template, op in operations(spec):
                url, body = service.url + fill(template, ids), request_body(op)
                r = await client.request(
                    method, url, params={"tenant": ids["tenant_id"]}, json=body, headers=as_b
                )
                checked += 1
                names_a = "{" in template
                leaked = r.is_success and any(s in r.text for s in secrets_of_a)
                refused = r.status_code in (403, 404) or (r.status_code == 422 and body is not None)
                # A tracking number is a natural key, not a secret: B may register a recipient for a
                # shipment of its own with the same number. Fine, as long as A's stays A's (checked below).
                refused = refused or (method == "PUT" and template in UPSERTS_BY_NATURAL_KEY)
                if leaked or (names_a and not refused) or r.status_code >= 500:
                    leaks.append(f"{method} {template} ({service.name}) -> {r.status_code}: {r.text[:200]}")
                if method == "GET" and names_a and "unknown-" not in url:
                    mine = await client.get(url, headers=as_a)
                    if mine.status_code == 403:  # A's key lacks the scope (admin): the operator checks the id
                        mine = await client.get(url, headers=operator)
                    assert mine.status_code == 200, (
                        f"A's own GET {template}: {mine.status_code} {mine.text[:200]}"
                    )
        assert not leaks, "tenant B reached tenant A:\n" + "\n".join(leaks)
        assert checked >= 20
        ingest, notification = e2e_stack.services["ingest"].url, e2e_stack.services["notification"].url
        sub = await client.get(f"{notification}/v1/subscriptions/{ids['sub_id']}", headers=as_a)
        assert sub.status_code == 200  # B's DELETE and PATCH left it alone
        mine = await client.get(
            f"{notification}/v1/notifications/recipients/{ids['tracking_number']}", headers=as_a
        )
        assert mine.status_code == 200 and "@example.com" in mine.text  # B's PUT and DELETE left it alone
        r = await client.post(
            f"{ingest}/v1/events",
            json=event(ids["tracking_number"], "PO-01", "2026-11-20T09:00:00-03:00"),
            headers=as_a,
        )
        assert r.status_code == 202  # B's revoke did not touch A's key
