"""``GET /v1/eta/kpis`` by service and period of delivery, with a window, and ``GET /v1/eta/kpis/errors``
(the histogram of delivered - expected days per carrier), over a real Postgres.

Outcomes and shipments are written as eta's handler writes them; the router runs in a small app with
the kit's HTTP plumbing and authenticator (keys handed out here), so no consumer group is started.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from rastro_eta.api import build_router
from rastro_eta.settings import EtaSettings
from rastro_kit.auth import Authenticator, Principal, generate_api_key, hash_key
from rastro_kit.db import apply_migrations, create_pool
from rastro_kit.http import install_http_plumbing

pytestmark = pytest.mark.integration
ADMIN = "rk_admin_" + secrets.token_hex(8)


class Keys:
    def __init__(self) -> None:
        self._by_hash: dict[str, Principal] = {}

    def issue(self, tenant: str) -> dict[str, str]:
        key = generate_api_key()
        self._by_hash[hash_key(key)] = Principal(
            f"k{len(self._by_hash)}", tenant, frozenset({"shipments:read"})
        )
        return {"Authorization": f"Bearer {key}"}

    async def resolve(self, key_hash: str) -> Principal | None:
        return self._by_hash.get(key_hash)


# (tracking, carrier, service, delivered, expected, promise): errors of 0, +1, -2, +3, +20 days
OUTCOMES = [
    ("E1", "correios", "sedex", date(2026, 11, 2), date(2026, 11, 2), date(2026, 11, 4)),
    ("E2", "correios", "sedex", date(2026, 11, 4), date(2026, 11, 3), date(2026, 11, 4)),
    ("E3", "correios", "pac", date(2026, 11, 10), date(2026, 11, 12), date(2026, 11, 14)),
    ("E4", "jadlog", "package", date(2026, 11, 11), date(2026, 11, 8), date(2026, 11, 9)),
    ("E5", "jadlog", "package", date(2026, 12, 21), date(2026, 12, 1), date(2026, 12, 3)),
]


async def store(pool: Any, tenant: str) -> None:
    at = datetime(2026, 11, 1, tzinfo=UTC)
    async with pool.acquire() as conn:
        for tracking, carrier, service, delivered, expected, promise in OUTCOMES:
            await conn.execute(
                "INSERT INTO shipments (tenant_id, tracking_number, status, carrier, service, first_seen_at,"
                " last_event_at) VALUES ($1, $2, 'delivered', $3, $4, $5, $5)",
                tenant, tracking, carrier, service, at,
            )  # fmt: skip
            await conn.execute(
                "INSERT INTO outcomes (tenant_id, tracking_number, carrier, lane_key, lane_level,"
                " delivered_date, expected_date, promise_date, milestone, model_version)"
                " VALUES ($1, $2, $3, '*/*/*/*', 'global', $4, $5, $6, 'in_transit', 'test')",
                tenant, tracking, carrier, delivered, expected, promise,
            )  # fmt: skip


@pytest.fixture(scope="module")
async def eta_api(database_url: str) -> AsyncIterator[SimpleNamespace]:
    schema = f"etakpis_{secrets.token_hex(3)}"
    pool = await create_pool(database_url, schema, max_size=2)
    await apply_migrations(pool, schema, ("rastro_eta.migrations",))
    keys = Keys()
    app = FastAPI()
    app.state.runtime = SimpleNamespace(pool=pool, authenticator=Authenticator(keys, SecretStr(ADMIN)))
    install_http_plumbing(app, "eta")
    app.include_router(build_router(EtaSettings().prediction_parameters()))
    a, b = f"a{secrets.token_hex(4)}", f"b{secrets.token_hex(4)}"
    await store(pool, a)
    await store(pool, b)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://eta") as http:
        yield SimpleNamespace(
            http=http, a=a, b=b, key_a=keys.issue(a), admin={"Authorization": f"Bearer {ADMIN}"}
        )
    await pool.close()


async def get(api: SimpleNamespace, path: str, auth: dict[str, str], **params: str) -> dict[str, Any]:
    response = await api.http.get(path, params=params, headers=auth)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_kpis_by_service_and_by_period_within_a_window(eta_api: SimpleNamespace) -> None:
    november = {"from": "2026-11-01", "to": "2026-11-30"}
    body = await get(eta_api, "/v1/eta/kpis", eta_api.key_a, group_by="service", **november)
    assert (body["group_by"], body["from"], body["to"], body["period"]) == (
        "service",
        *november.values(),
        None,
    )
    by_service = {item["key"]: item for item in body["items"]}
    assert {k: v["deliveries"] for k, v in by_service.items()} == {"package": 1, "pac": 1, "sedex": 2}
    assert by_service["sedex"]["eta_precision"] == 1.0 and by_service["sedex"]["expected_mae_days"] == 0.5
    assert by_service["package"]["on_time_share"] == 0.0  # delivered on the 11th, promised the 9th
    assert {item["tenant"] for item in body["items"]} == {eta_api.a}

    weeks = await get(eta_api, "/v1/eta/kpis", eta_api.key_a, group_by="period", period="week")
    assert weeks["period"] == "week" and weeks["from"] is None  # no window: every outcome
    assert {i["key"]: i["deliveries"] for i in weeks["items"]} == {
        "2026-11-02": 2,
        "2026-11-09": 2,
        "2026-12-21": 1,
    }
    months = await get(
        eta_api, "/v1/eta/kpis", eta_api.key_a, group_by="period", period="month", to="2026-11-30"
    )
    assert [(i["key"], i["deliveries"]) for i in months["items"]] == [("2026-11-01", 4)]
    # the existing groupings still answer, now within the window too
    carriers = await get(eta_api, "/v1/eta/kpis", eta_api.key_a, group_by="carrier", **november)
    assert {i["key"]: i["deliveries"] for i in carriers["items"]} == {"correios": 3, "jadlog": 1}


async def test_error_histogram_per_carrier(eta_api: SimpleNamespace) -> None:
    body = await get(eta_api, "/v1/eta/kpis/errors", eta_api.key_a, clamp_days="10")
    assert body["clamp_days"] == 10
    series = {(s["tenant"], s["carrier"]): s["buckets"] for s in body["items"]}
    assert series == {
        (eta_api.a, "correios"): [
            {"error_days": -2, "count": 1},
            {"error_days": 0, "count": 1},
            {"error_days": 1, "count": 1},
        ],
        (eta_api.a, "jadlog"): [{"error_days": 3, "count": 1}, {"error_days": 10, "count": 1}],  # 20 clamped
    }
    november = await get(eta_api, "/v1/eta/kpis/errors", eta_api.key_a, to="2026-11-30")
    assert [b["error_days"] for s in november["items"] for b in s["buckets"]] == [-2, 0, 1, 3]


async def test_tenants_stay_apart_and_bad_windows_are_refused(eta_api: SimpleNamespace) -> None:
    for path in ("/v1/eta/kpis", "/v1/eta/kpis/errors"):
        other = await eta_api.http.get(path, params={"tenant": eta_api.b}, headers=eta_api.key_a)
        assert other.status_code == 404, other.text
        backwards = await eta_api.http.get(
            path, params={"from": "2026-11-30", "to": "2026-11-01"}, headers=eta_api.key_a
        )
        assert (
            backwards.status_code == 422 and backwards.headers["content-type"] == "application/problem+json"
        )
        assert (await eta_api.http.get(path)).status_code == 401
    every = await get(eta_api, "/v1/eta/kpis/errors", eta_api.admin)
    tenants = {s["tenant"] for s in every["items"]}
    assert {eta_api.a, eta_api.b} <= tenants
    unknown = await eta_api.http.get("/v1/eta/kpis", params={"group_by": "region"}, headers=eta_api.key_a)
    assert unknown.status_code == 422
