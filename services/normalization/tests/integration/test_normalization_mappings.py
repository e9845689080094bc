"""Tenant mappings (de-para) over real HTTP, Kafka and Postgres, with dlq-replay beside normalization:
an unmapped carrier code is dead-lettered, the tenant adds a status override, replays the dead letter,
and the shipment reaches the right state. Also: aliases in the handler, events out, list paging."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaProducer

from rastro_dlq_replay.app import build_app as build_dlq_app
from rastro_dlq_replay.settings import DlqReplaySettings
from rastro_events import RawTrackingEvent, Status, decode_event, new_event
from rastro_events.topics import SHIPMENTS, TRACKING_NORMALIZED, replay_topic
from rastro_kit.metrics import EVENTS_CONSUMED
from rastro_kit.testing import TopicReader, publish_api_key, send_event, serve_app, wait_until
from rastro_normalization.app import build_app
from rastro_normalization.settings import NormalizationSettings

pytestmark = pytest.mark.integration
ADMIN = "rk_admin_" + secrets.token_hex(8)
ALL_SCOPES = ["shipments:read", "mappings:manage", "dead-letters:manage"]


@dataclass
class Stack:
    normalization: httpx.AsyncClient
    dlq: httpx.AsyncClient
    producer: AIOKafkaProducer
    bootstrap: str
    database_url: str
    idempotence: bool

    async def publish(self, tenant: str, payload: RawTrackingEvent, event_id: str | None = None) -> str:
        envelope = new_event(payload, tenant_id=tenant, source="/test", event_id=event_id)
        return await send_event(self.producer, envelope)

    async def tenant(self, scopes: list[str] = ALL_SCOPES) -> tuple[str, dict[str, str]]:
        """A new tenant with a key both services already know."""
        tenant = f"m{secrets.token_hex(4)}"
        key = await publish_api_key(self.bootstrap, tenant, scopes, idempotence=self.idempotence)
        auth = {"Authorization": f"Bearer {key}"}

        async def known() -> bool:
            a = await self.normalization.get("/v1/mappings", headers=auth)
            b = await self.dlq.get("/v1/dead-letters", headers=auth)
            return a.status_code != 401 and b.status_code != 401

        await wait_until(known, message="the new key is known")
        return tenant, auth


@pytest.fixture(scope="module")
async def stack(
    kafka_bootstrap: str, database_url: str, kafka_idempotence: bool, topics: list[str]
) -> AsyncIterator[Stack]:
    common: dict[str, Any] = {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "DATABASE_URL": database_url,
        "RASTRO_KAFKA_IDEMPOTENCE": kafka_idempotence,
        "RASTRO_ADMIN_API_KEY": ADMIN,
    }
    normalization = build_app(NormalizationSettings(**common))
    dlq = build_dlq_app(DlqReplaySettings(**common))
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, enable_idempotence=kafka_idempotence)
    await producer.start()
    async with (
        serve_app(normalization) as n_url,
        serve_app(dlq) as d_url,
        httpx.AsyncClient(base_url=n_url, timeout=10) as n_client,
        httpx.AsyncClient(base_url=d_url, timeout=10) as d_client,
    ):
        for app in (normalization, dlq):
            await wait_until(app.state.runtime.runners[0].assigned.is_set, timeout=60, message="group join")
        yield Stack(n_client, d_client, producer, kafka_bootstrap, database_url, kafka_idempotence)
    await producer.stop()


def raw(number: str, code: str, at: str, **extra: Any) -> RawTrackingEvent:
    return RawTrackingEvent(
        tracking_number=number,
        carrier=extra.pop("carrier", "Correios"),
        status_code=code,
        occurred_at=datetime.fromisoformat(at),
        location={"city": "Recife", "state": "PE", "country": "BR"},
        **extra,
    )


async def shipment_in(stack: Stack, auth: dict[str, str], number: str, status: str) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        r = await stack.normalization.get(f"/v1/shipments/{number}", headers=auth)
        return r.json() if r.status_code == 200 and r.json()["status"] == status else None

    return await wait_until(probe, message=f"{number} {status}")


async def test_mappings_crud_is_scoped_versioned_and_audited(stack: Stack) -> None:
    tenant, auth = await stack.tenant()
    _, reader = await stack.tenant(["shipments:read"])
    c = stack.normalization
    denied = await c.put("/v1/mappings/carriers/ECT BR", json={"carrier": "correios"}, headers=reader)
    assert denied.status_code == 403 and denied.headers["content-type"] == "application/problem+json"

    created = await c.put("/v1/mappings/carriers/Transp. Amarela", json={"carrier": "ECT"}, headers=auth)
    assert created.status_code == 201, created.text
    assert created.json() | {"updated_at": None} == {
        "alias": "Transp. Amarela", "carrier": "correios", "version": 1, "changed": True, "updated_at": None,
    }  # fmt: skip
    same = await c.put("/v1/mappings/carriers/Transp. Amarela", json={"carrier": "correios"}, headers=auth)
    assert same.status_code == 200 and same.json()["version"] == 1 and not same.json()["changed"]
    r = await c.put("/v1/mappings/services/SEDEX CONTRATO AG", json={"service": "sedex"}, headers=auth)
    assert r.status_code == 201 and r.json()["version"] == 2
    body = {"status": "exception", "substatus": "exception.lost", "descriptions": {"en": "Lost in transit"}}
    r = await c.put("/v1/mappings/statuses/correios/zzz 98", json=body, headers=auth)
    assert r.status_code == 201 and r.json()["code"] == "ZZZ-98" and r.json()["version"] == 3
    r = await c.put("/v1/mappings/statuses/correios/ZZZ-98", json={"status": "delivered"}, headers=auth)
    assert r.status_code == 200 and r.json()["substatus"] == "delivered.delivered"
    bad = await c.put("/v1/mappings/statuses/correios/X-1", json={"status": "lost"}, headers=auth)
    assert bad.status_code == 422
    assert (
        await c.put("/v1/mappings/carriers/x", json={"carrier": "pombo"}, headers=auth)
    ).status_code == 422

    listed = (await c.get("/v1/mappings", headers=reader)).json()
    assert listed["version"] == 0  # the reader is another tenant: it sees its own, empty, mappings
    listed = (
        await c.get("/v1/mappings", params={"tenant": tenant}, headers={"Authorization": f"Bearer {ADMIN}"})
    ).json()
    assert listed["version"] == 4
    assert [m["carrier"] for m in listed["carriers"]] == ["correios"]
    assert [(m["code"], m["status"]) for m in listed["statuses"]] == [("ZZZ-98", "delivered")]
    assert (await c.get("/v1/mappings/services/sedex-contrato-ag", headers=auth)).json()["service"] == "sedex"

    assert (await c.delete("/v1/mappings/carriers/TRANSP AMARELA", headers=auth)).status_code == 204
    assert (await c.delete("/v1/mappings/carriers/TRANSP AMARELA", headers=auth)).status_code == 404
    assert (await c.get("/v1/mappings/carriers/Transp. Amarela", headers=auth)).status_code == 404

    page = (await c.get("/v1/mappings/history", params={"limit": 3}, headers=auth)).json()
    assert [(h["version"], h["kind"], h["action"]) for h in page["items"]] == [
        (5, "carrier", "deleted"), (4, "status", "updated"), (3, "status", "created"),
    ]  # fmt: skip
    assert (
        page["items"][1]["before"]["status"] == "exception"
        and page["items"][1]["after"]["status"] == "delivered"
    )
    assert page["items"][0]["changed_by"].startswith("key_")
    rest = (await c.get("/v1/mappings/history", params={"cursor": page["next_cursor"]}, headers=auth)).json()
    assert [h["version"] for h in rest["items"]] == [2, 1] and rest["next_cursor"] is None


async def test_an_unmapped_code_replayed_after_a_tenant_override_reaches_the_right_state(
    stack: Stack,
) -> None:
    tenant, auth = await stack.tenant()
    number = f"RP{secrets.token_hex(4).upper()}BR"
    await stack.publish(tenant, raw(number, "PO-01", "2026-11-20T09:00:00-03:00"))
    await shipment_in(stack, auth, number, "in_transit")
    unmapped = await stack.publish(tenant, raw(number, "XYZ-77", "2026-11-23T14:05:00-03:00"))

    async def dead_letters() -> list[dict[str, Any]] | None:
        r = await stack.dlq.get("/v1/dead-letters", params={"reason": "unmapped_carrier_code"}, headers=auth)
        return [d for d in r.json()["items"] if d["event_id"] == unmapped] or None

    [dead] = await wait_until(dead_letters, timeout=30, message="the dead letter in dlq-replay")
    assert dead["tenant"] == tenant and "XYZ-77" in dead["error_message"]

    override = {"status": "delivered", "substatus": "delivered.pod_available", "descriptions": {"en": "POD"}}
    r = await stack.normalization.put("/v1/mappings/statuses/correios/XYZ-77", json=override, headers=auth)
    assert r.status_code == 201, r.text
    replay = {"ids": [dead["id"]], "reason": "mapping XYZ-77 added"}
    r = await stack.dlq.post("/v1/dead-letters/replay", json=replay, headers=auth)
    assert r.status_code == 200 and r.json()["replayed"] == 1, r.text

    body = await shipment_in(stack, auth, number, "delivered")
    assert body["substatus"] == "delivered.pod_available"
    assert [e["status_code"] for e in body["timeline"]] == ["PO-01", "XYZ-77"]
    en = (
        await stack.normalization.get(f"/v1/shipments/{number}", headers=auth | {"Accept-Language": "en"})
    ).json()
    assert en["timeline"][1]["description"] == "POD"

    # A second replay of the same dead letter is harmless: the inbox has the event now, nothing is emitted.
    duplicates = EVENTS_CONSUMED.labels("normalization", replay_topic("normalization"), "duplicate")
    before = duplicates._value.get()
    r = await stack.dlq.post("/v1/dead-letters/replay", json=replay, headers=auth)
    assert r.status_code == 200
    await wait_until(
        lambda: duplicates._value.get() > before, message="the second replay seen as a duplicate"
    )
    await stack.publish(tenant, raw(number, "BDE-01", "2026-11-23T15:00:00-03:00"))  # a later, terminal copy
    key = f"{tenant}/{number}".encode()
    async with (
        TopicReader(stack.bootstrap, TRACKING_NORMALIZED) as n,
        TopicReader(stack.bootstrap, SHIPMENTS) as s,
    ):
        normalized = await n.wait_for(lambda rec: rec.key == key, count=3)
        changes = await s.wait_for(lambda rec: rec.key == key, count=2)
    assert [decode_event(rec.value)[1].status_code for rec in normalized] == ["PO-01", "XYZ-77", "BDE-01"]  # type: ignore[attr-defined]
    moves = [
        (decode_event(rec.value)[1].old_status, decode_event(rec.value)[1].new_status) for rec in changes
    ]  # type: ignore[attr-defined]
    assert moves[:2] == [(Status.PENDING, Status.IN_TRANSIT), (Status.IN_TRANSIT, Status.DELIVERED)]


async def test_tenant_aliases_canonicalize_carrier_and_service(stack: Stack) -> None:
    tenant, auth = await stack.tenant()
    c = stack.normalization
    assert (
        await c.put("/v1/mappings/carriers/Transportadora Postal", json={"carrier": "correios"}, headers=auth)
    ).status_code == 201
    assert (
        await c.put("/v1/mappings/services/Expresso 24h", json={"service": "sedex_10"}, headers=auth)
    ).status_code == 201
    first, second = f"AL{secrets.token_hex(3).upper()}BR", f"AL{secrets.token_hex(3).upper()}BR"
    await stack.publish(
        tenant,
        raw(
            first,
            "PO-01",
            "2026-11-20T09:00:00-03:00",
            carrier="TRANSPORTADORA-POSTAL",
            service="EXPRESSO 24H",
        ),
    )
    await stack.publish(tenant, raw(second, "PO-01", "2026-11-20T09:00:00-03:00", service="04510"))
    a = await shipment_in(stack, auth, first, "in_transit")
    b = await shipment_in(stack, auth, second, "in_transit")
    assert (a["carrier"], a["service"]) == ("correios", "sedex_10")
    assert (b["carrier"], b["service"]) == ("correios", "pac")
    assert a["timeline"][0]["service"] == "sedex_10"
    found = (
        await c.get("/v1/shipments", params={"service": "SEDEX 10", "carrier": "ECT"}, headers=auth)
    ).json()
    assert [i["tracking_number"] for i in found["items"]] == [first]
    found = (await c.get("/v1/shipments", params={"q": second[:6]}, headers=auth)).json()
    assert second in [i["tracking_number"] for i in found["items"]]
    assert first not in [i["tracking_number"] for i in found["items"]] or first[:6] == second[:6]
    found = (await c.get("/v1/shipments", params={"q": "%"}, headers=auth)).json()
    assert found["items"] == []


async def test_the_list_cursor_is_stable_over_ties_in_updated_at(stack: Stack) -> None:
    tenant, auth = await stack.tenant()
    same = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    numbers = [f"TIE{i:02d}BR" for i in range(7)]
    conn = await asyncpg.connect(stack.database_url, server_settings={"search_path": "normalization"})
    try:
        for n in numbers:
            await conn.execute(
                "INSERT INTO shipments (tenant_id, tracking_number, status, substatus, updated_at)"
                " VALUES ($1, $2, 'in_transit', 'in_transit.in_route', $3)",
                tenant, n, same,
            )  # fmt: skip
    finally:
        await conn.close()
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params = {"limit": 3, "status": "in_transit"} | ({"cursor": cursor} if cursor else {})
        page = (await stack.normalization.get("/v1/shipments", params=params, headers=auth)).json()
        seen += [i["tracking_number"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(numbers, reverse=True)
    bad = await stack.normalization.get("/v1/shipments", params={"cursor": "nope"}, headers=auth)
    assert bad.status_code == 422
