"""The audit log (docs/audit.md) against real Postgres: an entry for each kind of change, written in the
change's own transaction; append-only; each tenant reads only its own entries."""

from __future__ import annotations

import base64
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from rastro_kit import audit
from rastro_kit.auth import Principal
from rastro_kit.db import apply_migrations, create_pool
from tests.integration.service_apps import OPERATOR_KEY, ServiceApps

pytestmark = pytest.mark.integration
TRACE = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def admin_headers(apps: ServiceApps, **extra: str) -> dict[str, str]:
    return {**ServiceApps.auth(apps.keys["admin"]), "traceparent": TRACE, "x-request-id": "req-1", **extra}


async def entries(
    apps: ServiceApps, service: str, key: str | None = None, **params: Any
) -> list[dict[str, Any]]:
    response = await apps.clients[service].get(
        f"/v1/audit/{service}", params=params, headers=ServiceApps.auth(key or apps.keys["admin"])
    )
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


async def ok(response: Any, *statuses: int) -> dict[str, Any]:
    assert response.status_code in statuses, response.text
    return dict(response.json()) if response.content else {}


async def test_every_kind_of_change_leaves_one_entry(
    service_apps: ServiceApps, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RASTRO_MASTER_KEY", base64.b64encode(secrets.token_bytes(32)).decode())  # recipients
    apps, tenant = service_apps, service_apps.tenant
    h = admin_headers(apps, **{"user-agent": "audit-test/1"})
    ingest, norm, notif, dlq = (
        apps.clients[s] for s in ("ingest", "normalization", "notification", "dlq-replay")
    )

    key = await ok(await ingest.post(f"/v1/tenants/{tenant}/keys", json={"role": "viewer"}, headers=h), 201)
    rotated = await ok(
        await ingest.post(f"/v1/tenants/{tenant}/keys/{key['id']}/rotate", json={}, headers=h), 201
    )
    await ok(await ingest.delete(f"/v1/tenants/{tenant}/keys/{rotated['id']}", headers=h), 204)
    conn = await ok(
        await ingest.post(
            "/v1/carriers/connections",
            json={"carrier": "correios", "credentials": {"token": "s3cr3t"}},
            headers=h,
        ),
        201,
    )
    await ok(await ingest.delete(f"/v1/carriers/connections/{conn['id']}", headers=h), 204)

    await ok(
        await norm.put("/v1/mappings/carriers/Correio%20X", json={"carrier": "correios"}, headers=h), 201
    )
    await ok(await norm.delete("/v1/mappings/carriers/Correio%20X", headers=h), 204)

    sub = await ok(
        await notif.post("/v1/subscriptions", json={"url": "https://example.com/hook"}, headers=h), 201
    )
    await ok(await notif.patch(f"/v1/subscriptions/{sub['id']}", json={"enabled": False}, headers=h), 200)
    await ok(await notif.post(f"/v1/subscriptions/{sub['id']}/rotate-secret", json={}, headers=h), 200)
    await ok(await notif.delete(f"/v1/subscriptions/{sub['id']}", headers=h), 204)
    await ok(
        await notif.put(
            "/v1/notifications/templates/delivered/pt-BR",
            json={"subject": "Entregue", "body": "Seu pedido chegou.", "short": "Chegou"},
            headers=h,
        ),
        200,
    )
    await ok(await notif.delete("/v1/notifications/templates/delivered/pt-BR", headers=h), 204)
    await ok(
        await notif.put(
            "/v1/notifications/recipients/AA123456785BR", json={"email": "ana@example.com"}, headers=h
        ),
        200,
    )
    await ok(await notif.delete("/v1/notifications/recipients/AA123456785BR", headers=h), 204)
    await ok(
        await notif.put("/v1/notifications/opt-outs", json={"address": "ana@example.com"}, headers=h), 200
    )

    body = {"ids": ["01JD5Z8Q3T6W0K2N9V7R4B1C8E"], "reason": "audit test"}
    await ok(await dlq.post("/v1/dead-letters/replay", json=body, headers=h), 200)

    actions = {
        "ingest": [
            "key.create",
            "key.rotate",
            "key.create",
            "key.revoke",
            "carrier_connection.create",
            "carrier_connection.delete",
        ],
        "normalization": ["mapping.put", "mapping.delete"],
        "notification": [
            "subscription.create",
            "subscription.update",
            "subscription.rotate_secret",
            "subscription.delete",
            "template.put",
            "template.delete",
            "recipient.put",
            "recipient.delete",
            "opt_out.put",
        ],
        "dlq-replay": ["dead_letters.replay"],
    }
    for service, expected in actions.items():
        found = await entries(apps, service, actor=apps.key_ids["admin"])
        assert [e["action"] for e in reversed(found)][-len(expected) :] == expected, (service, found)
        newest = found[0]
        assert newest["tenant_id"] == tenant and newest["service"] == service
        assert newest["actor"] == {"key_id": apps.key_ids["admin"], "role": "admin", "tenant_id": tenant}
        assert newest["origin"]["trace_id"] == TRACE.split("-")[1]
        assert newest["origin"]["request_id"] == "req-1" and newest["origin"]["client_ip"]
    ingest_log = await entries(apps, "ingest", actor=apps.key_ids["admin"], action="carrier_connection.*")
    assert "s3cr3t" not in str(ingest_log) and ingest_log[0]["origin"]["user_agent"] == "audit-test/1"
    notices = await entries(apps, "notification", action="recipient.put")
    assert "ana@example.com" not in str(notices) and notices[0]["details"] == {"fields": ["email"]}
    opt_outs = await entries(apps, "notification", action="opt_out.put")
    assert "ana@" not in str(opt_outs) and opt_outs[0]["target"].startswith("sha256:")
    mapping = (await entries(apps, "normalization", action="mapping.put"))[0]
    assert mapping["details"]["after"]["carrier"] == "correios" and mapping["details"]["before"] is None


async def test_tenants_read_only_their_own_entries(service_apps: ServiceApps) -> None:
    apps = service_apps
    stranger_key = await apps.make_key(apps.stranger, "stranger-admin", {"role": "admin"})
    mine = await entries(apps, "ingest")
    assert mine and {e["tenant_id"] for e in mine} == {apps.tenant}
    theirs = await entries(apps, "ingest", key=stranger_key["key"])
    assert {e["tenant_id"] for e in theirs} == {apps.stranger}
    peek = await apps.clients["ingest"].get(
        "/v1/audit/ingest", params={"tenant": apps.stranger}, headers=ServiceApps.auth(apps.keys["admin"])
    )
    assert peek.status_code == 404
    every = await entries(apps, "ingest", key=OPERATOR_KEY, tenant=apps.stranger)
    assert [e["target"] for e in every][:1] == [stranger_key["id"]]
    first = await entries(apps, "ingest", limit=1)
    response = await apps.clients["ingest"].get(
        "/v1/audit/ingest", params={"limit": 1}, headers=ServiceApps.auth(apps.keys["admin"])
    )
    page = response.json()
    assert page["items"] == first and page["next_cursor"]
    following = await entries(apps, "ingest", limit=1, cursor=page["next_cursor"])
    assert following[0]["id"] < first[0]["id"]


async def test_the_log_is_append_only_except_the_retention_purge(database_url: str) -> None:
    schema = f"audit_{secrets.token_hex(4)}"
    pool = await create_pool(database_url, schema, max_size=2, application_name="audit-test")
    try:
        await apply_migrations(pool, schema, ())
        who = Principal("key_1", "acme", frozenset({"admin"}), role="admin")
        async with pool.acquire() as conn:
            old = await audit.record(conn, who, None, "key.create", "key_0")
            await conn.execute(
                "ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only;"
                f"UPDATE audit_events SET at = now() - interval '40 days' WHERE id = {old};"
                "ALTER TABLE audit_events ENABLE TRIGGER audit_events_append_only"
            )  # the test's own back-dating: the one way round the guard is to be the table's owner
            recent = await audit.record(conn, who, None, "key.revoke", "key_0", {"api_key": "rk_live_x"})
            for statement in (
                f"UPDATE audit_events SET action = 'key.nothing' WHERE id = {recent}",
                f"DELETE FROM audit_events WHERE id = {recent}",
                "TRUNCATE audit_events",
            ):
                with pytest.raises(asyncpg.RaiseError, match="append-only"):
                    await conn.execute(statement)
            for days_ago in (-1, 29):  # a purge cut-off in the future, or younger than 30 days
                cutoff = (datetime.now(UTC) - timedelta(days=days_ago)).isoformat()
                with pytest.raises(asyncpg.RaiseError, match="append-only"):
                    async with conn.transaction():
                        await conn.execute("SELECT set_config('rastro.audit_purge_before', $1, true)", cutoff)
                        await conn.execute(f"DELETE FROM audit_events WHERE id = {recent}")
            with pytest.raises(RuntimeError):
                async with conn.transaction():
                    await audit.record(conn, who, None, "key.rotate", "key_0")
                    raise RuntimeError("the change failed")
        assert await audit.purge_expired(pool, timedelta(days=30)) == {"audit_events": 1}
        async with pool.acquire() as conn:
            left = await audit.fetch(conn, "acme")
        assert [(e.id, e.action) for e in left] == [(recent, "key.revoke")]
        assert left[0].details == {"api_key": "[redacted]"} and left[0].actor_role == "admin"
    finally:
        async with pool.acquire() as conn:
            await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await pool.close()
