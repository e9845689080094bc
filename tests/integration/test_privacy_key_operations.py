"""The key operations of the privacy routes over HTTP (docs/privacy.md): crypto-shredding a tenant asks
for its id again, reaches only the tenant a key acts for, destroys its keys and is audited without key
material; re-wrapping answers its counts under the current master key."""

from __future__ import annotations

import json
import secrets

import pytest

from rastro_kit.master_key import current_kek_id
from rastro_kit.personal_data import blind_index, seal_value
from tests.integration.service_apps import ServiceApps

pytestmark = pytest.mark.integration
SHRED = "/v1/privacy/notification/shred-tenant"


async def test_a_tenant_is_shredded_only_when_named_twice_and_the_shred_is_audited(
    service_apps: ServiceApps,
) -> None:
    client = service_apps.clients["notification"]
    operator = ServiceApps.auth(service_apps.keys["operator-key"])
    tenant = f"shred-{secrets.token_hex(4)}"
    pool = service_apps.apps["notification"].state.runtime.pool
    async with pool.acquire() as conn:
        await seal_value(conn, tenant, "recipients.email", "ana@example.com")
        await blind_index(conn, tenant, "email", "ana@example.com")

    wrong = await client.post(SHRED, json={"tenant": tenant, "confirm": "yes"}, headers=operator)
    assert wrong.status_code == 422 and wrong.json()["type"].endswith("confirmation-required"), wrong.text
    admin = ServiceApps.auth(service_apps.keys["admin"])
    elsewhere = await client.post(SHRED, json={"tenant": tenant, "confirm": tenant}, headers=admin)
    assert elsewhere.status_code == 404  # a tenant admin shreds its own tenant only

    done = await client.post(SHRED, json={"tenant": tenant, "confirm": tenant}, headers=operator)
    assert done.status_code == 200, done.text
    assert done.json() == {"service": "notification", "tenant": tenant, "keys_destroyed": 2}
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM data_keys WHERE tenant_id = $1", tenant) == 0
        details = await conn.fetchval(
            "SELECT details FROM audit_events WHERE action = 'privacy.shred_tenant' AND target = $1", tenant
        )
    assert json.loads(details) == {"service": "notification", "keys_destroyed": 2}

    rewrap = await client.post("/v1/privacy/notification/rewrap-keys", json={}, headers=operator)
    assert rewrap.status_code == 200, rewrap.text
    assert rewrap.json()["kek_id"] == current_kek_id() and rewrap.json()["remaining"] == 0
