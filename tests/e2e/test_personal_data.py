"""Issue 11 acceptance: after a run with known personal data (a recipient in an order event, one through
the API, a poison event carrying a recipient that gets dead-lettered), no personal value appears in plain
text in any column of any table, any service's log, or the dead-letter listing; then erasing one person
leaves no trace of them in any service, while their shipment's history and the other person stay."""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaProducer

from rastro_events.topics import ORDERS
from rastro_kit.testing import wait_until
from tests.e2e.stack import Stack

pytestmark = pytest.mark.e2e

_TEXTUAL = "('text', 'character varying', 'jsonb', 'json', 'bytea', 'ARRAY')"


def person(tag: str) -> dict[str, str]:
    digits = "".join(secrets.choice("0123456789") for _ in range(8))
    cpf = f"{digits[:3]}.{digits[3:6]}.{digits[6:]}{secrets.randbelow(10)}-{secrets.randbelow(90) + 10}"
    return {
        "name": f"Zuleika {tag} Quintanilha",
        "email": f"zuleika.{tag}@privacy-test.example",
        "phone": f"+55119{digits}",
        "document": cpf,
        "street": f"Rua Privacidade {tag}",
    }


def needles(p: dict[str, str]) -> list[str]:
    """What must never show in plain text: each value, and the digits of the phone and document."""
    return [p["name"], p["email"], p["phone"], p["phone"][1:], p["document"], p["street"]]


async def plain_text_hits(database_url: str, words: list[str]) -> list[str]:
    """Every ``schema.table.column`` (text, varchar, json(b), bytea, arrays) holding any of ``words``."""
    hits = []
    conn = await asyncpg.connect(database_url)
    try:
        columns = await conn.fetch(
            "SELECT table_schema, table_name, column_name, data_type, udt_name"
            " FROM information_schema.columns c"
            " JOIN information_schema.tables t USING (table_schema, table_name)"
            " WHERE t.table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema')"
            f" AND data_type IN {_TEXTUAL}"
        )
        patterns = [f"%{w.lower()}%" for w in words]
        for c in columns:
            col = f'"{c["column_name"]}"'
            if c["udt_name"] == "bytea":
                expr = f"encode({col}, 'escape')"
            elif c["udt_name"] == "_bytea":
                expr = f"(SELECT string_agg(encode(x, 'escape'), ' ') FROM unnest({col}) x)"
            else:
                expr = f"{col}::text"
            table = f'"{c["table_schema"]}"."{c["table_name"]}"'
            found = await conn.fetchval(
                f"SELECT count(*) FROM {table} WHERE lower({expr}) LIKE ANY($1::text[])", patterns
            )
            if found:
                hits.append(f"{c['table_schema']}.{c['table_name']}.{c['column_name']}")
    finally:
        await conn.close()
    return hits


def order_shipped(number: str, p: dict[str, str]) -> dict[str, Any]:
    return {
        "type": "order.shipped",
        "order_id": f"O-{number}",
        "tracking_number": number,
        "carrier": "correios",
        "occurred_at": "2026-11-19T09:00:00-03:00",
        "destination": {"city": "Campinas", "state": "SP", "country": "BR", "postal_code": "13000-000"},
        "recipient": {
            "name": p["name"],
            "email": p["email"],
            "phone": p["phone"],
            "document": p["document"],
            "address": {"street": p["street"], "number": "42"},
        },
    }


def tracking(number: str, code: str, at: str) -> dict[str, Any]:
    return {
        "type": "tracking.event",
        "carrier": "correios",
        "tracking_number": number,
        "status_code": code,
        "occurred_at": at,
        "location": {"city": "Campinas", "state": "SP", "country": "BR"},
    }


async def poison(bootstrap: str, tenant: str, number: str, p: dict[str, str]) -> None:
    """An order event of a type nobody knows, carrying a recipient, straight onto the orders topic."""
    envelope = {
        "specversion": "1.0",
        "id": f"poison-{secrets.token_hex(6)}",
        "source": "/tests/privacy",
        "type": "rastro.order.teleported.v1",
        "subject": f"{tenant}/{number}",
        "time": datetime.now(UTC).isoformat(),
        "datacontenttype": "application/json",
        "tenantid": tenant,
        "data": order_shipped(number, p),
    }
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False)
    await producer.start()
    try:
        await producer.send_and_wait(ORDERS, json.dumps(envelope).encode(), key=f"{tenant}/{number}".encode())
    finally:
        await producer.stop()


async def test_personal_data_is_sealed_redacted_and_erasable(
    e2e_stack: Stack, gateway: str, database_url: str, kafka_bootstrap: str
) -> None:
    tag = secrets.token_hex(4)
    tenant = f"pd-{tag}"
    await e2e_stack.create_tenant(tenant)
    admin = {"Authorization": f"Bearer {e2e_stack.admin_key}"}
    ana, bia = person(f"a{tag}"), person(f"b{tag}")
    number, other = f"PA{tag.upper()}BR", f"PB{tag.upper()}BR"
    async with httpx.AsyncClient(base_url=gateway, timeout=15) as client:
        sent = await client.post(
            f"/v1/events?tenant={tenant}",
            json={
                "events": [order_shipped(number, ana), tracking(number, "PO-01", "2026-11-19T10:00:00-03:00")]
            },
            headers={**admin, "Idempotency-Key": f"pd-{tag}"},
        )
        assert sent.status_code == 202, sent.text
        put = await client.put(
            f"/v1/notifications/recipients/{other}?tenant={tenant}",
            json={"name": bia["name"], "email": bia["email"], "phone": bia["phone"]},
            headers=admin,
        )
        assert put.status_code == 200, put.text
        await poison(kafka_bootstrap, tenant, number, ana)

        async def notice_queued() -> bool:
            r = await client.get(
                f"/v1/notifications/messages?tenant={tenant}&tracking_number={number}", headers=admin
            )
            return r.status_code == 200 and bool(r.json()["items"])

        async def dead_lettered() -> list[dict[str, Any]] | None:
            r = await client.get(f"/v1/dead-letters?tenant={tenant}", headers=admin)
            return r.json()["items"] if r.status_code == 200 and r.json()["items"] else None

        async def adopted() -> bool:
            body = {"email": ana["email"], "tenant": tenant}
            r = await client.post("/v1/privacy/notification/export", json=body, headers=admin)
            return r.status_code == 200 and bool(r.json()["data"]["recipients"])

        await wait_until(adopted, timeout=30, interval=0.3, message="ana's recipient adopted from the order")
        # A new milestone once she is known: the order and the first scan travel on two topics, so the
        # first scan may have been handled before the recipient was (no notice for it, by design).
        sent = await client.post(
            f"/v1/events?tenant={tenant}",
            json=tracking(number, "OEC-01", "2026-11-20T09:00:00-03:00"),
            headers=admin,
        )
        assert sent.status_code == 202, sent.text
        await wait_until(notice_queued, timeout=30, interval=0.3, message="a customer notice for ana")
        letters = await wait_until(
            dead_lettered, timeout=30, interval=0.3, message="the poison dead-lettered"
        )
        shipment = (await client.get(f"/v1/shipments/{number}?tenant={tenant}", headers=admin)).json()
        assert shipment["timeline"], shipment

        # Nothing personal in plain text: tables, logs, the dead-letter listing.
        words = needles(ana) + needles(bia)
        assert await plain_text_hits(database_url, words) == []
        for name, service in e2e_stack.services.items():
            log = service.log_path.read_text(encoding="utf-8", errors="replace").lower()
            assert not [w for w in words if w.lower() in log], f"personal data in the {name} log"
        listing = (await client.get(f"/v1/dead-letters?tenant={tenant}", headers=admin)).text.lower()
        assert not [w for w in words if w.lower() in listing]
        assert letters[0]["value"]["data"]["recipient"]["email"] == "***"

        # Export finds ana everywhere she is, decrypted.
        body = {"email": ana["email"].upper(), "tenant": tenant}
        exported = await client.post("/v1/privacy/notification/export", json=body, headers=admin)
        assert exported.status_code == 200, exported.text
        assert [r["name"] for r in exported.json()["data"]["recipients"]] == [ana["name"]]
        dl = (await client.post("/v1/privacy/dead-letters/export", json=body, headers=admin)).json()
        assert dl["data"]["dead_letters"][0]["value"]["data"]["recipient"]["phone"] == ana["phone"]

        # Erase ana by her document: a report per service, then no trace of her anywhere.
        erase = {"document": ana["document"], "tenant": tenant}
        n = (await client.post("/v1/privacy/notification/erase", json=erase, headers=admin)).json()
        d = (await client.post("/v1/privacy/dead-letters/erase", json=erase, headers=admin)).json()
        assert n["removed"]["recipients"] == 1 and n["removed"]["notices"] >= 1, n
        assert d["removed"]["dead_letters"] >= 1, d
        again = await client.post("/v1/privacy/notification/export", json=body, headers=admin)
        assert again.json()["data"] == {"recipients": [], "notices": [], "opted_out": False}
        dl = (await client.post("/v1/privacy/dead-letters/export", json=body, headers=admin)).json()
        assert dl["data"]["dead_letters"] == []
        assert (
            await client.get(f"/v1/notifications/recipients/{number}?tenant={tenant}", headers=admin)
        ).status_code == 404

        # ... while her shipment's history and the other person are intact.
        after = (await client.get(f"/v1/shipments/{number}?tenant={tenant}", headers=admin)).json()
        assert after["timeline"] == shipment["timeline"] and after["status"] == shipment["status"]
        kept = await client.get(f"/v1/notifications/recipients/{other}?tenant={tenant}", headers=admin)
        assert kept.status_code == 200 and kept.json()["email"] == bia["email"]
    assert await plain_text_hits(database_url, words) == []
