"""Carrier detection wired into normalization: a raw event without a carrier is normalized when its
number names exactly one carrier, and dead-lettered as ``unknown_carrier`` (with the candidates) when not;
every table beyond Correios is live; unmapped codes are counted per carrier."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from rastro_events import RawTrackingEvent, new_event
from rastro_events.topics import dlq_topic
from rastro_kit.testing import TopicReader, send_event, serve_app, wait_until
from rastro_normalization.app import build_app
from rastro_normalization.settings import NormalizationSettings

pytestmark = pytest.mark.integration
ADMIN = "rk_admin_" + secrets.token_hex(8)


class Stack:
    def __init__(self, url: str, producer: AIOKafkaProducer, bootstrap: str) -> None:
        self.url, self.producer, self.bootstrap = url, producer, bootstrap

    async def publish(self, tenant: str, number: str, code: str, carrier: str | None = None) -> str:
        payload = RawTrackingEvent(
            tracking_number=number,
            carrier=carrier,
            status_code=code,
            occurred_at=datetime.fromisoformat("2026-11-23T10:00:00-05:00"),
        )
        envelope = new_event(payload, tenant_id=tenant, source="/test")
        return await send_event(self.producer, envelope)

    async def shipment(self, tenant: str, number: str) -> dict[str, Any] | None:
        async with httpx.AsyncClient(base_url=self.url) as client:
            r = await client.get(
                f"/v1/shipments/{number}",
                params={"tenant": tenant},
                headers={"Authorization": f"Bearer {ADMIN}"},
            )
        return r.json() if r.status_code == 200 else None  # type: ignore[no-any-return]

    async def dead_letter(self, event_id: str) -> dict[bytes, bytes]:
        async with TopicReader(self.bootstrap, dlq_topic("normalization")) as reader:
            [dead] = await reader.wait_for(lambda r: dict(r.headers).get("ce_id") == event_id.encode())
        return {k.encode(): v for k, v in dead.headers}


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


@pytest.mark.parametrize(
    ("number", "code", "carrier", "status"),
    [
        ("1Z999AA10123456784", "D", "ups", "delivered"),
        ("9400111201080805483016", "OF", "usps", "out_for_delivery"),
        ("AA123456785BR", "BDE-01", "correios", "delivered"),
    ],
)
async def test_missing_carrier_is_detected(
    stack: Stack, number: str, code: str, carrier: str, status: str
) -> None:
    tenant = f"t{secrets.token_hex(4)}"
    await stack.publish(tenant, number, code)

    async def probe() -> dict[str, Any] | None:
        body = await stack.shipment(tenant, number)
        return body if body and body["status"] == status else None

    body = await wait_until(probe, timeout=20, message=f"{number} {status}")
    assert body["carrier"] == carrier


async def test_ambiguous_number_is_flagged_not_guessed(stack: Stack) -> None:
    tenant = f"t{secrets.token_hex(4)}"
    event_id = await stack.publish(tenant, "9261292700768711948021", "01")
    headers = await stack.dead_letter(event_id)
    assert headers[b"rastro-dlq-error-class"] == b"unknown_carrier"
    message = headers[b"rastro-dlq-error-message"].decode()
    assert "ambiguous" in message and "fedex" in message and "usps" in message
    assert await stack.shipment(tenant, "9261292700768711948021") is None


@pytest.mark.parametrize(
    ("carrier", "number", "code", "status"),
    [
        ("Jadlog", "10084200000001", "Em rota", "out_for_delivery"),
        ("loggi", "LG1", "Saiu para entrega", "out_for_delivery"),
        ("DHL Express", "3318810025", "ok", "delivered"),
        ("FedEx", "986578788855", "DL", "delivered"),
    ],
)
async def test_new_tables_normalize(stack: Stack, carrier: str, number: str, code: str, status: str) -> None:
    tenant = f"t{secrets.token_hex(4)}"
    await stack.publish(tenant, number, code, carrier=carrier)

    async def probe() -> dict[str, Any] | None:
        body = await stack.shipment(tenant, number)
        return body if body and body["status"] == status else None

    await wait_until(probe, timeout=20, message=f"{carrier} {code} -> {status}")


async def test_unmapped_code_is_counted(stack: Stack) -> None:
    tenant = f"t{secrets.token_hex(4)}"
    event_id = await stack.publish(tenant, "986578788855", "ZZ", carrier="fedex")
    headers = await stack.dead_letter(event_id)
    assert headers[b"rastro-dlq-error-class"] == b"unmapped_carrier_code"
    async with httpx.AsyncClient(base_url=stack.url) as client:
        metrics = (await client.get("/metrics")).text
    assert 'rastro_unmapped_codes_total{carrier="fedex"}' in metrics
