"""Normalization end to end inside one service: raw events in, shipments and events out, over the real
broker, Postgres and HTTP."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from rastro_events import (
    EtaPredicted,
    Lane,
    OrderCreated,
    OrderShipped,
    Payload,
    RawTrackingEvent,
    Status,
    decode_event,
    new_event,
)
from rastro_events.topics import SHIPMENTS, TRACKING_NORMALIZED, dlq_topic
from rastro_kit.testing import TopicReader, publish_api_key, send_event, serve_app, wait_until
from rastro_normalization.app import build_app
from rastro_normalization.settings import NormalizationSettings

pytestmark = pytest.mark.integration
ADMIN = "rk_admin_" + secrets.token_hex(8)


class Stack:
    def __init__(self, url: str, producer: AIOKafkaProducer, bootstrap: str) -> None:
        self.url, self.producer, self.bootstrap = url, producer, bootstrap

    async def publish(self, tenant: str, payload: Payload, event_id: str | None = None) -> str:
        envelope = new_event(payload, tenant_id=tenant, source="/test", event_id=event_id)
        return await send_event(self.producer, envelope)


@pytest.fixture(scope="module")
async def stack(
    kafka_bootstrap: str, database_url: str, kafka_idempotence: bool, topics: list[str]
) -> AsyncIterator[Stack]:
    settings = NormalizationSettings(
        KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap,
        DATABASE_URL=database_url,
        RASTRO_KAFKA_IDEMPOTENCE=kafka_idempotence,
        RASTRO_ADMIN_API_KEY=ADMIN,
    )
    app = build_app(settings)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, enable_idempotence=kafka_idempotence)
    await producer.start()
    async with serve_app(app) as url:
        await wait_until(app.state.runtime.runners[0].assigned.is_set, timeout=60, message="group join")
        yield Stack(url, producer, kafka_bootstrap)
    await producer.stop()


def raw(number: str, code: str, at: str, **extra: Any) -> RawTrackingEvent:
    return RawTrackingEvent(
        tracking_number=number,
        carrier=extra.pop("carrier", "ECT"),
        status_code=code,
        occurred_at=datetime.fromisoformat(at),
        location={"city": "São Paulo", "state": "SP", "country": "BR"},
        **extra,
    )


async def shipment(stack: Stack, number: str, key: str, **params: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=stack.url) as c:
        return await c.get(
            f"/v1/shipments/{number}", params=params, headers={"Authorization": f"Bearer {key}"}
        )


async def settled(stack: Stack, tenant: str, number: str, status: str, entries: int) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        r = await shipment(stack, number, ADMIN, tenant=tenant)
        body = r.json() if r.status_code == 200 else None
        return body if body and body["status"] == status and len(body["timeline"]) == entries else None

    return await wait_until(probe, timeout=20, message=f"{number} {status} with {entries} entries")


async def test_posted_then_delivered_out_of_order_and_duplicated(stack: Stack) -> None:
    tenant = f"t{secrets.token_hex(4)}"
    number = "AA123456785BR"
    delivered = await stack.publish(tenant, raw(number, "BDE-01", "2026-11-23T14:05:11-03:00"))
    await stack.publish(tenant, raw(number, "PO-01", "2026-11-20T09:00:00-03:00"))  # older, arrives later
    await stack.publish(
        tenant, raw(number, "BDE-01", "2026-11-23T14:05:11-03:00")
    )  # same carrier event again
    await stack.publish(tenant, raw(number, "BDE-01", "2026-11-23T14:05:11-03:00"), event_id=delivered)
    body = await settled(stack, tenant, number, "delivered", 2)
    assert body["carrier"] == "correios" and body["substatus"].startswith("delivered.")
    assert [e["status_code"] for e in body["timeline"]] == ["PO-01", "BDE-01"]
    assert body["timeline"][0]["occurred_at"] == "2026-11-20T09:00:00-03:00"
    assert body["timeline"][0]["occurred_at_utc"].startswith("2026-11-20T12:00:00")

    async with (
        TopicReader(stack.bootstrap, TRACKING_NORMALIZED) as n,
        TopicReader(stack.bootstrap, SHIPMENTS) as s,
    ):
        normalized = await n.wait_for(lambda r: r.key == f"{tenant}/{number}".encode(), count=2)
        changes = await s.wait_for(lambda r: r.key == f"{tenant}/{number}".encode(), count=1)
        # one more raw event for the same shipment proves the duplicates emitted nothing in between
        await stack.publish(tenant, raw(number, "BDR-01", "2026-11-24T10:00:00-03:00"))
        normalized = await n.wait_for(lambda r: r.key == f"{tenant}/{number}".encode(), count=3)
    assert len(normalized) == 3
    statuses = [decode_event(r.value)[1].new_status for r in changes]  # type: ignore[attr-defined]
    assert statuses[0] == Status.DELIVERED
    assert all(decode_event(r.value)[1].new_status != Status.IN_TRANSIT for r in changes)  # type: ignore[attr-defined]


async def test_unmapped_code_is_dead_lettered_with_reason(stack: Stack) -> None:
    tenant = f"t{secrets.token_hex(4)}"
    event_id = await stack.publish(tenant, raw("ZZ000000000BR", "ZZZ-99", "2026-11-23T10:00:00-03:00"))
    async with TopicReader(stack.bootstrap, dlq_topic("normalization")) as reader:
        [dead] = await reader.wait_for(lambda r: dict(r.headers).get("ce_id") == event_id.encode())
    headers = dict(dead.headers)
    assert headers["rastro-dlq-error-class"] == b"unmapped_carrier_code"
    assert b"ZZZ-99" in headers["rastro-dlq-error-message"]
    unknown = await stack.publish(
        tenant, raw("ZZ1", "PO-01", "2026-11-23T10:00:00-03:00", carrier="Pombo Correio")
    )
    async with TopicReader(stack.bootstrap, dlq_topic("normalization")) as reader:
        [dead] = await reader.wait_for(lambda r: dict(r.headers).get("ce_id") == unknown.encode())
    assert dict(dead.headers)["rastro-dlq-error-class"] == b"unknown_carrier"


async def test_order_events_join_the_shipment_and_eta_shows(stack: Stack) -> None:
    tenant = f"t{secrets.token_hex(4)}"
    key = await publish_api_key(stack.bootstrap, tenant, ["shipments:read"])
    await stack.publish(
        tenant,
        OrderCreated(order_id="PED-1", occurred_at=datetime.fromisoformat("2026-11-19T08:00:00-03:00")),
    )
    await stack.publish(
        tenant,
        OrderShipped(
            order_id="PED-1",
            tracking_number="OB1BR",
            carrier="Correios",
            service="SEDEX",
            occurred_at=datetime.fromisoformat("2026-11-19T18:00:00-03:00"),
            destination={"city": "Recife", "state": "PE", "country": "BR"},
        ),
    )
    await stack.publish(tenant, raw("OB1BR", "PO-01", "2026-11-20T09:00:00-03:00"))
    body = await settled(stack, tenant, "OB1BR", "in_transit", 3)
    assert [e["substatus"] for e in body["timeline"]] == [
        "info_received.order_created",
        "info_received.label_created",
        "in_transit.picked_up",
    ]
    assert body["order_id"] == "PED-1" and body["service"] == "sedex" and body["destination"]["state"] == "PE"
    await stack.publish(
        tenant,
        EtaPredicted(
            tracking_number="OB1BR",
            expected_date="2026-11-25",
            promise_date="2026-11-27",
            lane=Lane(carrier="correios"),
            model_version="t1",
            sample_size=12,
            predicted_at=datetime.fromisoformat("2026-11-20T09:00:01-03:00"),
            milestone=Status.IN_TRANSIT,
        ),
    )

    async def eta() -> Any:
        return (await shipment(stack, "OB1BR", key)).json()["eta"]

    got = await wait_until(eta, message="eta in the shipment view")
    assert got["expected_date"] == "2026-11-25" and got["sample_size"] == 12
    other = await publish_api_key(stack.bootstrap, f"o{secrets.token_hex(4)}", ["shipments:read"])
    await wait_until(lambda: _status(stack, other, 404), message="other tenant sees 404")
    async with httpx.AsyncClient(base_url=stack.url) as c:
        listed = (
            await c.get(
                "/v1/shipments", params={"status": "in_transit"}, headers={"Authorization": f"Bearer {key}"}
            )
        ).json()
    assert [i["tracking_number"] for i in listed["items"]] == ["OB1BR"]


async def _status(stack: Stack, key: str, code: int) -> bool:
    return (await shipment(stack, "OB1BR", key)).status_code == code


async def test_metrics_count_what_was_consumed(stack: Stack) -> None:
    tenant = f"t{secrets.token_hex(4)}"
    await stack.publish(tenant, raw("MT1BR", "PO-01", "2026-11-20T09:00:00-03:00"))
    await settled(stack, tenant, "MT1BR", "in_transit", 1)
    async with httpx.AsyncClient(base_url=stack.url) as c:
        text = (await c.get("/metrics")).text
    labels = 'outcome="processed",service="normalization",topic="rastro.tracking.raw.v1"'
    assert f"rastro_events_consumed_total{{{labels}}}" in text
    assert "rastro_event_handle_seconds_bucket" in text and "rastro_outbox_pending" in text
