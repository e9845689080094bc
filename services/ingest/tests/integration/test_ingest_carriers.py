"""Carrier pushes and scheduled polling, against a real broker, Postgres and the local fake Correios."""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from rastro_events import EventDecodeError, decode_event
from rastro_events.topics import TRACKING_RAW
from rastro_ingest.adapters.carriers import correios
from rastro_ingest.adapters.carriers.fake_correios import FakeCorreios
from rastro_ingest.adapters.carriers.signature import sign_body
from rastro_ingest.app import build_app
from rastro_ingest.settings import IngestSettings
from rastro_kit.testing import TopicReader, serve_app, wait_until

pytestmark = pytest.mark.integration
ADMIN = "rk_admin_" + secrets.token_hex(8)
RATE = 4
FIXTURE = Path(correios.__file__).parent / "fixtures" / "sro_objetos.json"


@pytest.fixture(scope="module")
async def fake() -> AsyncIterator[tuple[FakeCorreios, str]]:
    carrier = FakeCorreios(rate_per_s=RATE, step_s=0)
    async with serve_app(carrier.app) as url:
        yield carrier, url


@pytest.fixture(scope="module")
async def ingest(
    kafka_bootstrap: str, database_url: str, kafka_idempotence: bool, topics: list[str]
) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    settings = IngestSettings(
        KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap,
        DATABASE_URL=database_url,
        RASTRO_KAFKA_IDEMPOTENCE=kafka_idempotence,
        RASTRO_ADMIN_API_KEY=ADMIN,
        polling_tick_s=0.1,
        carrier_rate_limits=f"correios={RATE}",
        carrier_retry_base_s=0.05,
        carrier_retry_max_s=0.5,
        carrier_breaker_failures=2,
        carrier_breaker_reset_s=1.0,
        polling_failure_backoff_s=0.3,
    )
    app = build_app(settings)
    async with serve_app(app) as url, httpx.AsyncClient(base_url=url, timeout=30) as client:
        yield app, client


@pytest.fixture(scope="module")
async def raw_topic(kafka_bootstrap: str, topics: list[str]) -> AsyncIterator[TopicReader]:
    async with TopicReader(kafka_bootstrap, TRACKING_RAW) as reader:
        yield reader


ADMIN_AUTH = {"Authorization": f"Bearer {ADMIN}"}


async def new_tenant(client: httpx.AsyncClient) -> tuple[str, dict[str, str]]:
    tenant = f"c{secrets.token_hex(4)}"
    r = await client.post("/v1/tenants", json={"id": tenant, "name": "Carrier test"}, headers=ADMIN_AUTH)
    assert r.status_code == 201, r.text
    r = await client.post(f"/v1/tenants/{tenant}/keys", headers=ADMIN_AUTH, json={"scopes": ["admin"]})
    assert r.status_code == 201, r.text
    return tenant, {"Authorization": f"Bearer {r.json()['key']}"}


async def connect(client: httpx.AsyncClient, tenant: str, body: dict[str, Any]) -> dict[str, Any]:
    r = await client.post(f"/v1/carriers/connections?tenant={tenant}", json=body, headers=ADMIN_AUTH)
    assert r.status_code == 201, r.text
    return dict(r.json())


def from_tenant(tenant: str, source: str = "/carriers/correios") -> Any:
    def match(record: Any) -> bool:
        try:
            envelope, _ = decode_event(record.value)
        except EventDecodeError:  # other suites put poison on the shared topic on purpose
            return False
        return envelope.tenantid == tenant and envelope.source == source

    return match


async def test_pushes_need_the_connections_signature(ingest: tuple[Any, httpx.AsyncClient]) -> None:
    _, client = ingest
    tenant, _ = await new_tenant(client)
    connection = await connect(client, tenant, {"carrier": "correios", "polling": {"enabled": False}})
    body = FIXTURE.read_bytes()
    url = f"/v1/carriers/correios/webhook?connection={connection['id']}"
    cases = {
        "bad": {"X-Rastro-Signature": sign_body("csec_wrong", body)},
        "missing": {},
        "wrong secret header": {"X-Rastro-Webhook-Secret": "csec_wrong"},
    }
    for name, headers in cases.items():
        r = await client.post(url, content=body, headers=headers)
        assert r.status_code == 401, name
        assert r.headers["content-type"].startswith("application/problem+json")
    good = {"X-Rastro-Signature": sign_body(connection["webhook_secret"], body)}
    r = await client.post("/v1/carriers/correios/webhook?connection=cc_nope", content=body, headers=good)
    assert r.status_code == 401
    r = await client.post(
        f"/v1/carriers/generic/webhook?connection={connection['id']}", content=body, headers=good
    )
    assert r.status_code == 401  # a connection is for one carrier only
    r = await client.post(
        f"/v1/carriers/pombo/webhook?connection={connection['id']}", content=body, headers=good
    )
    assert r.status_code == 404


async def test_a_correios_push_becomes_raw_events_and_a_repeat_changes_nothing(
    ingest: tuple[Any, httpx.AsyncClient], raw_topic: TopicReader
) -> None:
    _, client = ingest
    tenant, _ = await new_tenant(client)
    connection = await connect(client, tenant, {"carrier": "correios", "polling": {"enabled": False}})
    body = FIXTURE.read_bytes()
    url = f"/v1/carriers/correios/webhook?connection={connection['id']}"
    headers = {
        "X-Rastro-Signature": sign_body(connection["webhook_secret"], body),
        "content-type": "application/json",
    }
    r = await client.post(url, content=body, headers=headers)
    assert r.status_code == 202, r.text
    answer = r.json()
    assert answer["accepted"] == 5 and answer["new"] == 5
    assert {m["code"] for m in answer["messages"]} == {"invalid_event", "SRO-020"}
    ids = {e["id"] for e in answer["events"]}
    records = await raw_topic.wait_for(
        lambda rec: dict(rec.headers).get("ce_id", b"").decode() in ids, count=5
    )
    envelope, payload = decode_event(records[0].value)
    assert envelope.source == "/carriers/correios" and envelope.tenantid == tenant
    assert records[0].key == f"{tenant}/{payload.tracking_number}".encode()  # type: ignore[attr-defined]
    assert payload.raw and "evento" in payload.raw  # type: ignore[attr-defined]
    again = (await client.post(url, content=body, headers=headers)).json()
    assert again["new"] == 0 and {e["id"] for e in again["events"]} == ids


async def test_a_generic_push_with_the_shared_secret_header(
    ingest: tuple[Any, httpx.AsyncClient], raw_topic: TopicReader
) -> None:
    _, client = ingest
    tenant, key = await new_tenant(client)
    r = await client.post("/v1/carriers/connections", json={"carrier": "generic"}, headers=key)
    assert r.status_code == 201, r.text
    connection = r.json()
    assert connection["polling"]["enabled"] is False  # generic carriers only push
    push = {
        "carrier": "jadlog",
        "events": [
            {"tracking_number": "JD1", "status_code": "ENTREGUE", "occurred_at": "2026-11-22T16:30:00-03:00"}
        ],
    }
    r = await client.post(
        f"/v1/carriers/generic/webhook?connection={connection['id']}",
        json=push,
        headers={"X-Rastro-Webhook-Secret": connection["webhook_secret"]},
    )
    assert r.status_code == 202, r.text
    [record] = await raw_topic.wait_for(from_tenant(tenant, "/carriers/generic"))
    assert decode_event(record.value)[1].carrier == "jadlog"  # type: ignore[attr-defined]
    listed = (await client.get("/v1/carriers/connections", headers=key)).json()["items"]
    assert [c["id"] for c in listed] == [connection["id"]] and "webhook_secret" not in listed[0]


async def test_polling_stays_under_the_carriers_rate_and_converges(
    ingest: tuple[Any, httpx.AsyncClient], fake: tuple[FakeCorreios, str], raw_topic: TopicReader
) -> None:
    _, client = ingest
    carrier, fake_url = fake
    tenant, key = await new_tenant(client)
    credentials = {"username": "loja", "access_code": "x"}
    connection = await connect(
        client,
        tenant,
        {
            "carrier": "correios",
            "base_url": fake_url,
            "credentials": credentials,
            "polling": {"batch_size": 2},
        },
    )
    numbers = [f"PL{i:09d}BR" for i in range(14)]
    r = await client.post(
        f"/v1/carriers/connections/{connection['id']}/shipments",
        json={"tracking_numbers": numbers[:12]},
        headers=key,
    )
    assert r.status_code == 202 and r.json()["tracked"] == 12
    for number in numbers[12:]:  # shipments named by accepted events are polled too
        event = {
            "type": "order.shipped",
            "order_id": number,
            "tracking_number": number,
            "carrier": "correios",
            "occurred_at": "2026-11-20T09:00:00-03:00",
        }
        assert (await client.post("/v1/events", json=event, headers=key)).status_code == 202
    records = await raw_topic.wait_for(from_tenant(tenant), count=5 * len(numbers), timeout=30)
    got = {decode_event(r.value)[1].tracking_number for r in records}  # type: ignore[attr-defined]
    assert got == set(numbers)
    assert carrier.busiest_second() <= RATE and carrier.throttled == 0


async def test_the_circuit_opens_when_the_carrier_fails_and_closes_after(
    ingest: tuple[Any, httpx.AsyncClient], fake: tuple[FakeCorreios, str], raw_topic: TopicReader
) -> None:
    app, client = ingest
    carrier, fake_url = fake
    breaker = app.state.runtime.state["poller"].gates["correios"].breaker
    opened_before = breaker.opened_count
    tenant, key = await new_tenant(client)
    connection = await connect(
        client, tenant, {"carrier": "correios", "base_url": fake_url, "credentials": {"token": "t"}}
    )
    async with httpx.AsyncClient(base_url=fake_url) as admin:
        await admin.post("/__admin/failure", json={"status": 503})
        try:
            await client.post(
                f"/v1/carriers/connections/{connection['id']}/shipments",
                json={"tracking_numbers": ["CB000000001BR"]},
                headers=key,
            )
            await wait_until(lambda: breaker.opened_count > opened_before, timeout=15, message="circuit open")
            failed = carrier.failed
            assert breaker.state in {"open", "half_open"}
        finally:
            await admin.delete("/__admin/failure")
    await raw_topic.wait_for(from_tenant(tenant), count=5, timeout=20)
    assert breaker.state == "closed" and failed >= 2 * 3  # breaker threshold x attempts per call


async def test_re_polling_publishes_the_same_ids_and_nothing_new(
    ingest: tuple[Any, httpx.AsyncClient],
    fake: tuple[FakeCorreios, str],
    raw_topic: TopicReader,
    database_url: str,
) -> None:
    _, client = ingest
    carrier, fake_url = fake
    tenant, key = await new_tenant(client)
    polling = {"interval_s": 1, "delivered_interval_s": 1}
    connection = await connect(
        client,
        tenant,
        {"carrier": "correios", "base_url": fake_url, "credentials": {"token": "t"}, "polling": polling},
    )
    await client.post(
        f"/v1/carriers/connections/{connection['id']}/shipments",
        json={"tracking_numbers": ["RP000000001BR"]},
        headers=key,
    )
    conn = await asyncpg.connect(database_url, server_settings={"search_path": "ingest"})
    try:
        polls = await wait_until(
            lambda: conn.fetchval(
                "SELECT polls FROM tracked_shipments WHERE tenant_id = $1 AND polls >= 3", tenant
            ),
            timeout=20,
            message="three polls",
        )
    finally:
        await conn.close()
    assert polls >= 3
    records = await raw_topic.wait_for(from_tenant(tenant), count=5)
    ids = [dict(r.headers)["ce_id"].decode() for r in raw_topic.records if from_tenant(tenant)(r)]
    assert len(ids) == len(set(ids)) == 5
    # The same carrier events pushed afterwards are recognised by their ids: nothing new.
    push = json.dumps(carrier.objects(["RP000000001BR"], carrier.started_at)).encode()
    r = await client.post(
        f"/v1/carriers/correios/webhook?connection={connection['id']}",
        content=push,
        headers={"X-Rastro-Signature": sign_body(connection["webhook_secret"], push)},
    )
    assert r.status_code == 202, r.text
    assert r.json()["new"] == 0 and {e["id"] for e in r.json()["events"]} <= set(ids) and records
