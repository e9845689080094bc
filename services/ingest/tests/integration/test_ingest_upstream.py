"""The upstream Kafka topic: records validated like POST /v1/events, published, or dead-lettered with a
reason and their key and value byte for byte (real broker, real Postgres)."""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from rastro_events import decode_event
from rastro_events.ids import scoped_event_id
from rastro_events.topics import INGEST_UPSTREAM, TRACKING_RAW, dlq_topic
from rastro_ingest.app import build_app
from rastro_ingest.settings import IngestSettings
from rastro_kit.dead_letters import H_ERROR_CLASS, H_ERROR_MESSAGE, H_TOPIC
from rastro_kit.testing import TopicReader, serve_app, wait_until

pytestmark = pytest.mark.integration
ADMIN = "rk_admin_" + secrets.token_hex(8)


@pytest.fixture(scope="module")
async def tenant(
    kafka_bootstrap: str, database_url: str, kafka_idempotence: bool, topics: list[str]
) -> AsyncIterator[str]:
    settings = IngestSettings(
        KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap,
        DATABASE_URL=database_url,
        RASTRO_KAFKA_IDEMPOTENCE=kafka_idempotence,
        RASTRO_ADMIN_API_KEY=ADMIN,
    )
    app = build_app(settings)
    async with serve_app(app) as url, httpx.AsyncClient(base_url=url) as client:
        # Earlier modules' ingest apps left the same consumer group, and the embedded broker lets a
        # departed member hold its partitions until its session expires: wait for the assignment.
        await wait_until(app.state.runtime.runners[0].assigned.is_set, timeout=90, message="group join")
        name = f"up{secrets.token_hex(4)}"
        r = await client.post(
            "/v1/tenants",
            json={"id": name, "name": "Upstream shop"},
            headers={"Authorization": f"Bearer {ADMIN}"},
        )
        assert r.status_code == 201, r.text
        yield name


@pytest.fixture(scope="module")
async def producer(kafka_bootstrap: str, kafka_idempotence: bool) -> AsyncIterator[AIOKafkaProducer]:
    p = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, enable_idempotence=kafka_idempotence, acks="all")
    await p.start()
    try:
        yield p
    finally:
        await p.stop()


def tracking(tenant: str, number: str, **extra: Any) -> dict[str, Any]:
    return {
        "tenant_id": tenant,
        "type": "tracking.event",
        "carrier": "correios",
        "tracking_number": number,
        "status_code": "PO-01",
        "occurred_at": "2026-11-23T14:05:11-03:00",
        **extra,
    }


async def test_a_valid_record_is_published_like_an_http_event(
    tenant: str, producer: AIOKafkaProducer, kafka_bootstrap: str
) -> None:
    event_id = f"up-{secrets.token_hex(6)}"
    value = json.dumps(tracking(tenant, "UP123456785BR", event_id=event_id)).encode()
    trace = "00-" + "c" * 32 + "-" + "d" * 16 + "-01"
    await producer.send_and_wait(
        INGEST_UPSTREAM, value, key=b"any-key", headers=[("traceparent", trace.encode())]
    )
    async with TopicReader(kafka_bootstrap, TRACKING_RAW) as reader:
        scoped = scoped_event_id(tenant, event_id).encode()  # the client's id, scoped to its tenant
        [record] = await reader.wait_for(lambda r: dict(r.headers).get("ce_id") == scoped)
    envelope, payload = decode_event(record.value)
    assert record.key == f"{tenant}/UP123456785BR".encode()
    assert envelope.tenantid == tenant and envelope.source == f"/tenants/{tenant}/kafka"
    assert envelope.traceparent == trace
    assert payload.status_code == "PO-01"  # type: ignore[attr-defined]


async def test_bad_records_are_dead_letters_with_a_reason_and_their_bytes(
    tenant: str, producer: AIOKafkaProducer, kafka_bootstrap: str
) -> None:
    run = secrets.token_hex(4)
    bad = {
        "invalid_json": b"{not json " + run.encode(),
        "schema_violation": json.dumps(tracking(tenant, "UPBAD", occurred_at="yesterday", run=run)).encode(),
        "unknown_tenant": json.dumps(tracking(f"nobody{run}", "UPX")).encode(),
    }
    for reason, value in bad.items():
        await producer.send_and_wait(INGEST_UPSTREAM, value, key=f"{run}/{reason}".encode())
    async with TopicReader(kafka_bootstrap, dlq_topic("ingest")) as reader:
        records = await reader.wait_for(lambda r: (r.key or b"").startswith(run.encode()), count=3)
    by_key = {r.key.decode().split("/")[1]: r for r in records}
    for reason, value in bad.items():
        headers = dict(by_key[reason].headers)
        assert headers[H_ERROR_CLASS] == reason.encode()
        assert headers[H_TOPIC] == INGEST_UPSTREAM.encode()
        assert by_key[reason].value == value
    assert b"occurred_at" in dict(by_key["schema_violation"].headers)[H_ERROR_MESSAGE]
