"""Ingest over real HTTP, with the real broker and Postgres."""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from rastro_events import ApiKeyRecord, decode_event
from rastro_events.topics import AUTH_KEYS, ORDERS, TRACKING_RAW
from rastro_ingest.app import build_app
from rastro_ingest.settings import IngestSettings
from rastro_kit.auth import hash_key
from rastro_kit.testing import TopicReader, serve_app, wait_until

pytestmark = pytest.mark.integration
ADMIN = "rk_admin_" + secrets.token_hex(8)


def tracking(code: str = "PO-01", number: str = "AA123456785BR", **extra: Any) -> dict[str, Any]:
    return {
        "type": "tracking.event",
        "carrier": "correios",
        "tracking_number": number,
        "status_code": code,
        "description": "Objeto postado",
        "occurred_at": "2026-11-23T14:05:11-03:00",
        "location": {"city": "São Paulo", "state": "SP", "country": "BR"},
        **extra,
    }


@pytest.fixture(scope="module")
async def ingest(
    kafka_bootstrap: str, database_url: str, kafka_idempotence: bool, topics: list[str]
) -> AsyncIterator[str]:
    settings = IngestSettings(
        KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap,
        DATABASE_URL=database_url,
        RASTRO_KAFKA_IDEMPOTENCE=kafka_idempotence,
        RASTRO_ADMIN_API_KEY=ADMIN,
    )
    async with serve_app(build_app(settings)) as url:
        yield url


@pytest.fixture(scope="module")
async def client(ingest: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=ingest, timeout=30) as c:
        yield c


async def new_tenant(
    client: httpx.AsyncClient, scopes: list[str] | None = None
) -> tuple[str, str, dict[str, Any]]:
    tenant = f"t{secrets.token_hex(4)}"
    admin = {"Authorization": f"Bearer {ADMIN}"}
    r = await client.post("/v1/tenants", json={"id": tenant, "name": "Test shop"}, headers=admin)
    assert r.status_code == 201, r.text
    r = await client.post(
        f"/v1/tenants/{tenant}/keys",
        headers=admin,
        json={"name": "t", "scopes": scopes or ["events:write", "shipments:read"]},
    )
    assert r.status_code == 201, r.text
    return tenant, r.json()["key"], r.json()


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def test_single_event_is_published_with_its_envelope(
    client: httpx.AsyncClient, kafka_bootstrap: str
) -> None:
    tenant, key, _ = await new_tenant(client)
    r = await client.post(
        "/v1/events",
        json=tracking(),
        headers=bearer(key) | {"traceparent": "00-" + "a" * 32 + "-" + "b" * 16 + "-01"},
    )
    assert r.status_code == 202, r.text
    event_id = r.json()["events"][0]["id"]
    async with TopicReader(kafka_bootstrap, TRACKING_RAW) as reader:
        [record] = await reader.wait_for(lambda rec: dict(rec.headers).get("ce_id") == event_id.encode())
    envelope, payload = decode_event(record.value)
    assert record.key == f"{tenant}/AA123456785BR".encode()
    assert envelope.tenantid == tenant and envelope.traceparent and envelope.traceparent.startswith("00-aaaa")
    assert payload.status_code == "PO-01"  # type: ignore[attr-defined]
    assert envelope.time.utcoffset() is not None


async def test_batch_accepts_valid_and_reports_invalid_by_index(
    client: httpx.AsyncClient, kafka_bootstrap: str
) -> None:
    _, key, _ = await new_tenant(client)
    events: list[Any] = [tracking(number=f"BR{i:09d}") for i in range(20)]
    events[3] = tracking(occurred_at="yesterday")
    events[7] = {"type": "order.shipped", "order_id": "P1", "occurred_at": "2026-11-23T10:00:00-03:00"}
    events[11] = {"type": "parcel.teleported"}
    events[12] = tracking(occurred_at="2026-11-23T14:05:11")  # no offset: ambiguous time
    events[15] = {"type": "order.created", "order_id": "P2", "occurred_at": "2026-11-23T10:00:00Z"}
    r = await client.post("/v1/events", json={"events": events}, headers=bearer(key))
    assert r.status_code == 207, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert [e["index"] for e in body["errors"]] == [3, 7, 11, 12]
    fields = {e["index"]: {x["field"] for x in e["errors"]} for e in body["errors"]}
    assert fields[3] == {"occurred_at"} and fields[7] == {"tracking_number", "carrier"}
    assert fields[11] == {"type"} and fields[12] == {"occurred_at"}
    assert len(body["accepted"]) == 16
    ids = {a["id"].encode() for a in body["accepted"]}
    async with (
        TopicReader(kafka_bootstrap, TRACKING_RAW) as raw,
        TopicReader(kafka_bootstrap, ORDERS) as orders,
    ):
        await raw.wait_for(lambda rec: dict(rec.headers).get("ce_id") in ids, count=15)
        await orders.wait_for(lambda rec: dict(rec.headers).get("ce_id") in ids, count=1)


async def test_all_invalid_is_422(client: httpx.AsyncClient) -> None:
    _, key, _ = await new_tenant(client)
    r = await client.post("/v1/events", json={"events": [{"type": "tracking.event"}]}, headers=bearer(key))
    assert r.status_code == 422
    assert r.json()["errors"][0]["index"] == 0


async def test_idempotency_key(client: httpx.AsyncClient, kafka_bootstrap: str) -> None:
    tenant, key, _ = await new_tenant(client)
    body = {"events": [tracking(number="IDEMP1BR"), tracking(code="RO-01", number="IDEMP1BR")]}
    headers = bearer(key) | {"Idempotency-Key": "req-1"}
    first = await client.post("/v1/events", json=body, headers=headers)
    again = await client.post("/v1/events", json=body, headers=headers)
    assert first.status_code == again.status_code == 202
    assert first.json() == again.json() and again.headers.get("idempotent-replayed") == "true"
    other = await client.post("/v1/events", json={"events": [tracking(number="X")]}, headers=headers)
    assert other.status_code == 422 and other.json()["type"].endswith("idempotency-key-reused")
    marker = await client.post(
        "/v1/events", json=tracking(number="IDEMP1BR", status_code="DO-01"), headers=bearer(key)
    )
    marker_id = marker.json()["events"][0]["id"].encode()
    async with TopicReader(kafka_bootstrap, TRACKING_RAW) as reader:
        await reader.wait_for(lambda rec: dict(rec.headers).get("ce_id") == marker_id)
        mine = [r for r in reader.records if r.key == f"{tenant}/IDEMP1BR".encode()]
    assert len(mine) == 3  # two from the first request, none from the replay, one marker


async def test_auth_and_tenant_isolation(client: httpx.AsyncClient) -> None:
    tenant_a, key_a, _ = await new_tenant(client)
    tenant_b, _, _ = await new_tenant(client)
    assert (await client.post("/v1/events", json=tracking())).status_code == 401
    assert (
        await client.post("/v1/events", json=tracking(), headers=bearer("rk_live_nope"))
    ).status_code == 401
    r = await client.post(f"/v1/events?tenant={tenant_b}", json=tracking(), headers=bearer(key_a))
    assert r.status_code == 403
    assert (await client.get(f"/v1/tenants/{tenant_b}/keys", headers=bearer(key_a))).status_code == 403
    _, read_only, _ = await new_tenant(client, scopes=["shipments:read"])
    r = await client.post("/v1/events", json=tracking(), headers=bearer(read_only))
    assert r.status_code == 403 and r.headers["content-type"].startswith("application/problem+json")
    r = await client.post("/v1/events?tenant=nobody", json=tracking(), headers=bearer(ADMIN))
    assert r.status_code == 404 and r.json()["type"].endswith("unknown-tenant")
    r = await client.post(f"/v1/events?tenant={tenant_a}", json=tracking(), headers=bearer(ADMIN))
    assert r.status_code == 202


async def test_bad_bodies_get_specific_errors(client: httpx.AsyncClient) -> None:
    _, key, _ = await new_tenant(client)
    r = await client.post(
        "/v1/events", content=b"{not json", headers=bearer(key) | {"content-type": "application/json"}
    )
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json")
    big = {"events": [tracking(description="x" * 900) for _ in range(1200)]}
    r = await client.post(
        "/v1/events",
        content=json.dumps(big).encode(),
        headers=bearer(key) | {"content-type": "application/json"},
    )
    assert r.status_code == 413
    r = await client.post("/v1/events", json={"events": [tracking()] * 1001}, headers=bearer(key))
    assert r.status_code == 413 and r.json()["type"].endswith("batch-too-large")


async def test_keys_are_published_as_hashes_and_revocation_is_immediate(
    client: httpx.AsyncClient,
    kafka_bootstrap: str,
) -> None:
    tenant, key, info = await new_tenant(client)
    async with TopicReader(kafka_bootstrap, AUTH_KEYS) as reader:
        [rec] = await reader.wait_for(lambda r: r.key == f"{tenant}/{info['id']}".encode())
    assert key.encode() not in rec.value
    _, record = decode_event(rec.value)
    assert isinstance(record, ApiKeyRecord) and record.key_hash == hash_key(key) and not record.revoked
    r = await client.delete(f"/v1/tenants/{tenant}/keys/{info['id']}", headers=bearer(ADMIN))
    assert r.status_code == 204
    assert (await client.post("/v1/events", json=tracking(), headers=bearer(key))).status_code == 401
    async with TopicReader(kafka_bootstrap, AUTH_KEYS) as reader:
        await wait_until(
            lambda: _revoked_seen(reader, f"{tenant}/{info['id']}"), message="revocation published"
        )


async def test_a_key_sees_who_it_is_and_a_revoked_key_is_401(client: httpx.AsyncClient) -> None:
    tenant, key, info = await new_tenant(client)
    admin = bearer(ADMIN)
    sre = await client.post(
        f"/v1/tenants/{tenant}/keys", headers=admin, json={"name": "ops", "role": "sre", "tenants": ["x"]}
    )
    assert sre.status_code == 201, sre.text
    me = await client.get("/v1/keys/self", headers=bearer(sre.json()["key"]))
    assert me.status_code == 200, me.text
    body = me.json()
    assert (body["id"], body["name"], body["tenant_id"], body["role"]) == (
        sre.json()["id"],
        "ops",
        tenant,
        "sre",
    )
    assert body["scopes"] == ["dead-letters:manage", "shipments:read", "subscriptions:read"]
    assert body["tenants"] == ["x"] and body["operator"] is False and body["hint"] == sre.json()["key"][-4:]
    assert sre.json()["key"] not in me.text and "key_hash" not in body
    operator = (await client.get("/v1/keys/self", headers=admin)).json()
    assert operator["operator"] is True and operator["tenant_id"] is None and operator["scopes"] == ["admin"]
    assert (await client.delete(f"/v1/tenants/{tenant}/keys/{info['id']}", headers=admin)).status_code == 204
    gone = await client.get("/v1/keys/self", headers=bearer(key))
    assert gone.status_code == 401 and gone.headers["content-type"].startswith("application/problem+json")


async def _revoked_seen(reader: TopicReader, record_key: str) -> bool:
    for rec in await reader.poll():
        if rec.key == record_key.encode() and decode_event(rec.value)[1].revoked:  # type: ignore[attr-defined]
            return True
    return False


async def test_a_client_event_id_is_scoped_to_its_tenant(
    client: httpx.AsyncClient, kafka_bootstrap: str
) -> None:
    """Two tenants numbering their events alike must not dedup each other's events downstream."""
    (_, key_a, _), (_, key_b, _) = await new_tenant(client), await new_tenant(client)
    own = f"erp-{secrets.token_hex(4)}"
    ids = []
    for key in (key_a, key_b, key_a):
        r = await client.post("/v1/events", json=tracking() | {"event_id": own}, headers=bearer(key))
        assert r.status_code == 202, r.text
        ids.append(r.json()["events"][0]["id"])
    assert ids[0] != ids[1] and ids[0] == ids[2]  # per tenant: stable; across tenants: distinct
    async with TopicReader(kafka_bootstrap, TRACKING_RAW) as reader:
        await reader.wait_for(
            lambda rec: dict(rec.headers).get("ce_id") in {i.encode() for i in ids[:2]}, count=3
        )
