"""``GET``/``PUT /v1/retention/<area>`` against real Postgres: validation, tenant scoping, overrides and
their reset, and an audit entry written with each change."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from rastro_kit.auth import Principal
from rastro_kit.db import apply_migrations, create_pool
from rastro_kit.http import install_http_plumbing
from rastro_kit.retention_api import retention_router
from rastro_kit.roles import role_scopes

pytestmark = pytest.mark.integration

KEYS = {
    "admin": Principal("k_admin", "acme", role_scopes("admin"), role="admin"),
    "operator": Principal("k_oper", "acme", role_scopes("operator"), role="operator"),
    "root": Principal("k_root", None, frozenset()),
}


class Keys:
    async def authenticate(self, header: str | None) -> Principal | None:
        return KEYS.get((header or "").removeprefix("Bearer "))


@pytest.fixture
async def api(database_url: str) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    schema = f"rapi{secrets.token_hex(3)}"
    pool = await create_pool(database_url, schema)
    await apply_migrations(pool, schema, ())
    app = FastAPI()
    install_http_plumbing(app, "test", max_body_bytes=65536)
    app.state.runtime = SimpleNamespace(pool=pool, authenticator=Keys())
    app.include_router(
        retention_router("notification", "notification", {"delivery_log": 30, "recipients": 90})
    )
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            yield client, pool
    finally:
        await pool.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await pool.close()


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def test_set_show_reset_and_audit(api: tuple[httpx.AsyncClient, Any]) -> None:
    client, pool = api
    url = "/v1/retention/notification"
    shown = await client.get(url, headers=auth("admin"))
    assert shown.status_code == 200, shown.text
    assert {p["category"]: (p["days"], p["source"]) for p in shown.json()["policies"]} == {
        "delivery_log": (30, "default"),
        "recipients": (90, "default"),
    }
    changed = await client.put(url, json={"days": {"recipients": 7}}, headers=auth("admin"))
    assert changed.status_code == 200, changed.text
    policies = {p["category"]: p for p in changed.json()["policies"]}
    assert policies["recipients"]["days"] == 7 and policies["recipients"]["source"] == "override"
    assert policies["recipients"]["updated_by"] == "k_admin" and changed.json()["changed"] == ["recipients"]
    # the operator key names the tenant; null drops the override
    reset = await client.put(url, json={"tenant": "acme", "days": {"recipients": None}}, headers=auth("root"))
    assert reset.status_code == 200 and reset.json()["policies"][1]["source"] == "default"
    trail = await pool.fetch("SELECT tenant_id, actor_key_id, action, details FROM audit_events ORDER BY id")
    assert [(r["tenant_id"], r["actor_key_id"], r["action"]) for r in trail] == [
        ("acme", "k_admin", "retention.set"),
        ("acme", "k_root", "retention.set"),
    ]
    assert '"after": 7' in trail[0]["details"] and '"before": 7' in trail[1]["details"]


@pytest.mark.parametrize(
    ("key", "body", "status"),
    [
        ("admin", {"days": {"dead_letters": 10}}, 422),  # not a category this service applies
        ("admin", {"days": {"recipients": 0}}, 422),
        ("admin", {"days": {"recipients": 3651}}, 422),
        ("admin", {"days": {}}, 422),
        ("admin", {"tenant": "other", "days": {"recipients": 5}}, 404),  # another tenant
        ("root", {"days": {"recipients": 5}}, 422),  # the operator key must name the tenant
        ("operator", {"days": {"recipients": 5}}, 403),  # admin only
    ],
)
async def test_refused_changes_change_nothing(
    api: tuple[httpx.AsyncClient, Any], key: str, body: dict[str, Any], status: int
) -> None:
    client, pool = api
    answer = await client.put("/v1/retention/notification", json=body, headers=auth(key))
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert await pool.fetchval("SELECT count(*) FROM retention_policies") == 0
    assert await pool.fetchval("SELECT count(*) FROM audit_events") == 0
