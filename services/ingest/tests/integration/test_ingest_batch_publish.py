"""The hot path end to end: a 1,000-event batch over real HTTP reaches the topic whole, once, in order
per shipment, as the envelopes the service promises; Idempotency-Key answers stored before the hash
changed to orjson still replay (real broker, real Postgres)."""

from __future__ import annotations

import hashlib
import json
import secrets
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest

from rastro_events import decode_event
from rastro_events.topics import ORDERS, TRACKING_RAW
from rastro_ingest.app import build_app
from rastro_ingest.settings import IngestSettings
from rastro_kit.testing import TopicReader, serve_app

pytestmark = pytest.mark.integration
ADMIN = "rk_admin_" + secrets.token_hex(8)
INVALID = {3: "occurred_at", 100: "status_code", 250: "type", 401: "tracking_number", 640: "occurred_at"}
INVALID |= {777: "event_id", 998: "order_id"}


@pytest.fixture(scope="module")
async def client(
    kafka_bootstrap: str, database_url: str, kafka_idempotence: bool, topics: list[str]
) -> AsyncIterator[httpx.AsyncClient]:
    settings = IngestSettings(
        KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap,
        DATABASE_URL=database_url,
        RASTRO_KAFKA_IDEMPOTENCE=kafka_idempotence,
        RASTRO_ADMIN_API_KEY=ADMIN,
    )
    async with serve_app(build_app(settings)) as url, httpx.AsyncClient(base_url=url, timeout=30) as c:
        yield c


async def new_tenant(client: httpx.AsyncClient) -> tuple[str, dict[str, str]]:
    tenant = f"b{secrets.token_hex(4)}"
    admin = {"Authorization": f"Bearer {ADMIN}"}
    r = await client.post("/v1/tenants", json={"id": tenant, "name": "Batch shop"}, headers=admin)
    assert r.status_code == 201, r.text
    r = await client.post(f"/v1/tenants/{tenant}/keys", headers=admin, json={"scopes": ["events:write"]})
    assert r.status_code == 201, r.text
    return tenant, {"Authorization": f"Bearer {r.json()['key']}"}


def batch_of_1000() -> list[dict[str, Any]]:
    """36 shipments' tracking events, interleaved, and one order event in ten; 7 invalid events."""
    events: list[dict[str, Any]] = []
    for i in range(1000):
        number, step = f"BT{i % 40:09d}BR", i // 40
        if i % 10 == 9:
            events.append(
                {"type": "order.created", "order_id": f"PED-{i}", "occurred_at": "2026-11-20T09:00:00Z"}
            )
            continue
        events.append(
            {
                "type": "tracking.event",
                "carrier": "jadlog",  # not polled: the batch is the only source of these events
                "tracking_number": number,
                "status_code": f"S{step:02d}",
                "description": "Objeto em trânsito",
                "occurred_at": f"2026-11-23T{step % 24:02d}:05:11-03:00",
                "location": {"city": "São Paulo", "state": "SP", "country": "BR"},
            }
        )
    spoil = {
        "occurred_at": {"occurred_at": "yesterday"},
        "status_code": {"status_code": ""},
        "type": {"type": "parcel.teleported"},
        "tracking_number": {"tracking_number": None},
        "event_id": {"event_id": 7},
        "order_id": {"order_id": "x" * 101},
    }
    for index, field in INVALID.items():
        events[index] = events[index] | spoil[field]
    return events


async def test_a_1000_event_batch_is_published_whole_once_and_in_order(
    client: httpx.AsyncClient, kafka_bootstrap: str
) -> None:
    tenant, key = await new_tenant(client)
    events = batch_of_1000()
    r = await client.post("/v1/events", json={"events": events}, headers=key)
    assert r.status_code == 207, r.text
    body = r.json()
    assert {e["index"]: e["errors"][0]["field"] for e in body["errors"]} == INVALID
    accepted = {a["id"]: a["index"] for a in body["accepted"]}
    assert len(accepted) == 993 and set(accepted.values()) == set(range(1000)) - INVALID.keys()
    async with (
        TopicReader(kafka_bootstrap, TRACKING_RAW) as raw,
        TopicReader(kafka_bootstrap, ORDERS) as orders,
    ):
        ours = lambda rec: (rec.key or b"").startswith(f"{tenant}/".encode())  # noqa: E731
        tracked = await raw.wait_for(ours, count=893)
        ordered = await orders.wait_for(ours, count=100)
    seen: dict[str, int] = {}
    steps: dict[bytes, list[int]] = defaultdict(list)
    for record in [*tracked, *ordered]:
        envelope, payload = decode_event(record.value)
        index = accepted[envelope.id]
        assert envelope.id not in seen, "published twice"
        seen[envelope.id] = index
        assert (
            dict(record.headers)["ce_id"] == envelope.id.encode() and record.key == envelope.subject.encode()
        )
        posted = {k: v for k, v in events[index].items() if k != "type"}
        assert payload.model_dump(mode="json", exclude_none=True) == posted
        if envelope.type == "rastro.tracking.raw.v1":
            steps[record.key].append(index)
    assert set(seen) == set(accepted)
    assert len(steps) == 36 and all(indexes == sorted(indexes) for indexes in steps.values())


async def test_an_answer_stored_under_the_old_request_hash_still_replays(
    client: httpx.AsyncClient, database_url: str
) -> None:
    tenant, key = await new_tenant(client)
    body = {"events": [{"type": "order.created", "order_id": "PED-ä", "occurred_at": "2026-11-20T09:00:00Z"}]}
    legacy = hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    stored = {"accepted": 1, "events": [{"index": 0, "id": "01JD5Z8Q3T6W0K2N9V7R4B1C8E"}]}
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            "INSERT INTO ingest.idempotency_keys(tenant_id, key, request_hash, status_code, response,"
            " content_type) VALUES ($1, 'before-upgrade', $2, 202, $3, 'application/json')",
            tenant,
            legacy,
            json.dumps(stored),
        )
    finally:
        await conn.close()
    headers = key | {"Idempotency-Key": "before-upgrade"}
    again = await client.post("/v1/events", json=body, headers=headers)
    assert again.status_code == 202 and again.headers.get("idempotent-replayed") == "true"
    assert again.json() == stored
    other = await client.post("/v1/events", json={"events": body["events"] * 2}, headers=headers)
    assert other.status_code == 422 and other.json()["type"].endswith("idempotency-key-reused")
