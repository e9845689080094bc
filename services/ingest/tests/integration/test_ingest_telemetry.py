"""Fleet telemetry (``POST /v1/telemetry``) over real HTTP, with the real broker and Postgres."""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from rastro_events import TelemetryPosition, decode_event
from rastro_events.topics import TELEMETRY
from rastro_ingest.api_telemetry import _NAMESPACE, position_event_id
from rastro_ingest.app import build_app
from rastro_ingest.settings import IngestSettings
from rastro_kit.testing import TopicReader, serve_app

pytestmark = pytest.mark.integration
ADMIN = "rk_admin_" + secrets.token_hex(8)
FIX = datetime(2026, 11, 23, 14, 5, 11, 250_000, tzinfo=UTC)


def position(vehicle: str = "VAN-1", seconds: int = 0, **extra: Any) -> dict[str, Any]:
    return {
        "vehicle_id": vehicle,
        "recorded_at": (FIX + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z"),
        "latitude": -23.55052 + seconds * 1e-4,
        "longitude": -46.633308,
        "speed_kmh": 38.5,
        "heading": 187.0,
        **extra,
    }


@pytest.fixture(scope="module")
async def client(
    kafka_bootstrap: str, database_url: str, kafka_idempotence: bool, topics: list[str]
) -> AsyncIterator[httpx.AsyncClient]:
    settings = IngestSettings(
        kafka_bootstrap_servers=kafka_bootstrap,
        database_url=database_url,
        kafka_idempotence=kafka_idempotence,
        admin_api_key=SecretStr(ADMIN),
    )
    async with serve_app(build_app(settings)) as url, httpx.AsyncClient(base_url=url, timeout=60) as c:
        yield c


async def new_tenant(client: httpx.AsyncClient, scopes: list[str] | None = None) -> tuple[str, str]:
    tenant = f"t{secrets.token_hex(4)}"
    admin = bearer(ADMIN)
    r = await client.post("/v1/tenants", json={"id": tenant, "name": "Fleet shop"}, headers=admin)
    assert r.status_code == 201, r.text
    r = await client.post(
        f"/v1/tenants/{tenant}/keys", headers=admin, json={"name": "t", "scopes": scopes or ["events:write"]}
    )
    assert r.status_code == 201, r.text
    return tenant, r.json()["key"]


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def test_a_batch_lands_on_the_telemetry_topic_keyed_by_vehicle_and_a_retry_has_the_same_ids(
    client: httpx.AsyncClient, kafka_bootstrap: str
) -> None:
    tenant, key = await new_tenant(client)
    batch = [position("VAN-1", 0), position("VAN-2", 0, accuracy_m=4.5), position("VAN-1", 30)]
    batch[2]["recorded_at"] = "2026-11-23T11:05:41.25-03:00"  # offset kept in the payload
    first = await client.post("/v1/telemetry", json={"positions": batch}, headers=bearer(key))
    assert first.status_code == 202, first.text
    assert first.json()["accepted"] == 3 and [e["index"] for e in first.json()["events"]] == [0, 1, 2]
    retry = await client.post("/v1/telemetry", json=batch, headers=bearer(key))  # a bare array, too
    assert retry.status_code == 202 and retry.json() == first.json()
    ids = [e["id"] for e in first.json()["events"]]
    async with TopicReader(kafka_bootstrap, TELEMETRY) as reader:
        mine = await reader.wait_for(lambda r: r.key.startswith(f"{tenant}/".encode()), count=6)
    assert [r.key for r in mine if r.key.endswith(b"VAN-1")] == [f"{tenant}/VAN-1".encode()] * 4
    records = {dict(r.headers)["ce_id"].decode(): r for r in mine}
    assert set(records) == set(ids)
    assert {r.value for r in mine} == {records[i].value for i in ids}  # a retry is byte for byte the same
    for event_id, sent in zip(ids, batch, strict=True):
        record = records[event_id]
        envelope, payload = decode_event(record.value)
        assert isinstance(payload, TelemetryPosition) and envelope.id == event_id
        assert dict(record.headers)["ce_type"] == b"rastro.telemetry.position.v1"
        assert envelope.type == "rastro.telemetry.position.v1" and envelope.tenantid == tenant
        assert payload == TelemetryPosition.model_validate(sent) and envelope.time == payload.recorded_at
    assert envelope.time.utcoffset() == timedelta(hours=-3)


async def test_a_mixed_batch_accepts_the_good_and_lists_the_bad_by_index_and_field(
    client: httpx.AsyncClient,
) -> None:
    _, key = await new_tenant(client)
    future = (datetime.now(UTC) + timedelta(minutes=10)).isoformat()
    soon = (datetime.now(UTC) + timedelta(minutes=2)).isoformat()
    batch: list[Any] = [position(seconds=i) for i in range(8)]
    batch[1]["latitude"] = 91
    batch[2]["recorded_at"] = "2026-11-23T14:05:11"  # no offset: which instant?
    batch[3]["recorded_at"] = future
    batch[4] = {"recorded_at": batch[4]["recorded_at"], "latitude": 0, "longitude": 0, "speed_kmh": -1}
    batch[5] = "VAN-1,-23.5,-46.6"
    batch[6]["recorded_at"] = soon  # a clock a little ahead is fine
    r = await client.post("/v1/telemetry", json={"positions": batch}, headers=bearer(key))
    assert r.status_code == 207, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert [a["index"] for a in body["accepted"]] == [0, 6, 7]
    fields = {e["index"]: [x["field"] for x in e["errors"]] for e in body["errors"]}
    assert fields == {
        1: ["latitude"],
        2: ["recorded_at"],
        3: ["recorded_at"],
        4: ["vehicle_id", "speed_kmh"],
        5: ["(position)"],
    }
    assert "future" in body["errors"][2]["errors"][0]["message"]
    none = await client.post("/v1/telemetry", json=[batch[1]], headers=bearer(key))
    assert none.status_code == 422 and none.json()["errors"][0]["index"] == 0


async def test_refusals_oversize_unknown_tenant_no_key_bad_json(client: httpx.AsyncClient) -> None:
    tenant, key = await new_tenant(client)
    _, read_only = await new_tenant(client, scopes=["shipments:read"])
    big = json.dumps([position(seconds=i) for i in range(5001)]).encode()
    r = await client.post(
        "/v1/telemetry", content=big, headers=bearer(key) | {"content-type": "application/json"}
    )
    assert r.status_code == 413 and r.json()["type"].endswith("batch-too-large")
    assert "at most 5000 positions" in r.json()["detail"]
    r = await client.post("/v1/telemetry?tenant=nobody", json=[position()], headers=bearer(ADMIN))
    assert r.status_code == 404 and r.json()["type"].endswith("unknown-tenant")
    r = await client.post("/v1/telemetry", json=[position()])
    assert r.status_code == 401 and r.headers["content-type"].startswith("application/problem+json")
    assert (
        await client.post("/v1/telemetry", json=[position()], headers=bearer(read_only))
    ).status_code == 403
    r = await client.post(
        "/v1/telemetry", content=b"[{", headers=bearer(key) | {"content-type": "application/json"}
    )
    assert r.status_code == 400 and r.json()["type"].endswith("invalid-json")
    bad: Any
    for bad in ({"position": []}, [], 7):
        assert (await client.post("/v1/telemetry", json=bad, headers=bearer(key))).status_code == 422
    r = await client.post(f"/v1/telemetry?tenant={tenant}", json=[position()], headers=bearer(ADMIN))
    assert r.status_code == 202


async def test_an_idempotency_key_replays_the_first_answer(client: httpx.AsyncClient) -> None:
    _, key = await new_tenant(client)
    headers = bearer(key) | {"Idempotency-Key": "fleet-1"}
    first = await client.post("/v1/telemetry", json=[position(), {"vehicle_id": "x"}], headers=headers)
    again = await client.post("/v1/telemetry", json=[position(), {"vehicle_id": "x"}], headers=headers)
    assert first.status_code == again.status_code == 207
    assert again.json() == first.json() and again.headers.get("idempotent-replayed") == "true"
    other = await client.post("/v1/telemetry", json=[position(seconds=1)], headers=headers)
    assert other.status_code == 422 and other.json()["type"].endswith("idempotency-key-reused")


def test_the_event_id_is_uuid5_of_the_fix_whatever_offset_it_was_written_with() -> None:
    fix = TelemetryPosition.model_validate(position("VAN-9"))
    same = TelemetryPosition.model_validate(
        position("VAN-9") | {"recorded_at": "2026-11-23T11:05:11.25-03:00"}
    )
    micros = (fix.recorded_at - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    expected = str(uuid.uuid5(_NAMESPACE, f"acme\x1fVAN-9\x1f{micros}"))
    assert position_event_id("acme", fix) == position_event_id("acme", same) == expected
    assert position_event_id("other", fix) != expected
    for n in range(200):  # every variant nibble and many hashes: identical to the stdlib's formatting
        p = TelemetryPosition.model_validate(position(f"V{n}", n))
        micros = (p.recorded_at - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
        assert position_event_id("t", p) == str(uuid.uuid5(_NAMESPACE, f"t\x1fV{n}\x1f{micros}"))
