"""``GET /v1/kpis`` over a real Postgres: the SQL counts agree with the pure definitions, known values come
out, tenants never see each other's numbers, order facts written by the real handlers feed the channel
and cost figures, and a few thousand shipments answer fast.

The router runs in a small app with the kit's HTTP plumbing and authenticator (the keys this module
hands out, instead of the Kafka-fed key directory), so no consumer group is started.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from rastro_events import Status
from rastro_events.payloads import Money
from rastro_kit.auth import Authenticator, Principal, generate_api_key, hash_key
from rastro_kit.db import apply_migrations, create_pool
from rastro_kit.http import install_http_plumbing
from rastro_normalization.domain.state_machine import build_shipment
from rastro_normalization.domain.timeline import TimelineEntry
from rastro_normalization.kpis.api import router
from rastro_normalization.kpis.definitions import (
    Milestone,
    ShipmentRecord,
    count_created,
    count_delivered,
    figures,
)
from rastro_normalization.kpis.windows import period_start

pytestmark = pytest.mark.integration
ADMIN = "rk_admin_" + secrets.token_hex(8)
NOVEMBER = {"from": "2026-11-01", "to": "2026-11-30"}


class Keys:
    """A key resolver holding the keys this module hands out."""

    def __init__(self) -> None:
        self._by_hash: dict[str, Principal] = {}

    def issue(self, tenant: str, scopes: tuple[str, ...] = ("shipments:read",)) -> dict[str, str]:
        key = generate_api_key()
        self._by_hash[hash_key(key)] = Principal(f"k{len(self._by_hash)}", tenant, frozenset(scopes))
        return {"Authorization": f"Bearer {key}"}

    async def resolve(self, key_hash: str) -> Principal | None:
        return self._by_hash.get(key_hash)


@dataclass
class Api:
    pool: Any
    http: httpx.AsyncClient
    keys: Keys
    admin: dict[str, str] = field(default_factory=lambda: {"Authorization": f"Bearer {ADMIN}"})

    async def kpis(self, auth: dict[str, str], **params: str) -> dict[str, Any]:
        response = await self.http.get("/v1/kpis", params=params, headers=auth)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def items(self, auth: dict[str, str], **params: str) -> dict[str | None, dict[str, Any]]:
        return {item["key"]: item for item in (await self.kpis(auth, **params))["items"]}


@pytest.fixture(scope="module")
async def api(database_url: str) -> AsyncIterator[Api]:
    schema = f"kpis_{secrets.token_hex(3)}"
    pool = await create_pool(database_url, schema, max_size=2)
    await apply_migrations(pool, schema, ("rastro_normalization.migrations",))
    keys = Keys()
    app = FastAPI()
    app.state.runtime = SimpleNamespace(pool=pool, authenticator=Authenticator(keys, SecretStr(ADMIN)))
    install_http_plumbing(app, "normalization")
    app.include_router(router)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://kpis") as http:
        yield Api(pool, http, keys)
    await pool.close()


# --- shipments written as the read model stores them --------------------------------------------------


@dataclass
class Spec:
    number: str
    events: list[tuple[str, str]]  # (substatus, local time with offset)
    carrier: str = "correios"
    service: str | None = "sedex"
    origin: str | None = "SP"
    destination: str | None = "RJ"
    promised: date | None = None
    channel: str | None = None
    cost: Money | None = None

    def entries(self) -> list[TimelineEntry]:
        return [
            TimelineEntry(
                event_id=f"{self.number}-{i}",
                carrier=self.carrier,
                status_code=f"C{i}",
                status=Status(substatus.split(".")[0]),
                substatus=substatus,
                description=None,
                occurred_at=datetime.fromisoformat(at),
            )
            for i, (substatus, at) in enumerate(self.events)
        ]


async def store(pool: Any, tenant: str, specs: list[Spec]) -> dict[str, ShipmentRecord]:
    """Write shipments (state derived by the real state machine) and their timelines; return each one's
    ``ShipmentRecord``, what the pure definitions read."""
    records = {}
    async with pool.acquire() as conn:
        for spec in specs:
            entries = spec.entries()
            s = build_shipment(tenant, spec.number, entries)
            place = {
                side: json.dumps({"state": value, "country": "BR"}) if value else None
                for side, value in (("origin", spec.origin), ("destination", spec.destination))
            }
            await conn.execute(
                "INSERT INTO shipments (tenant_id, tracking_number, carrier, service, status, substatus,"
                " origin, destination, promised_date, created_at, shipped_at, delivered_at, sales_channel,"
                " shipping_cost_amount, shipping_cost_currency)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8::jsonb, $9, $10, $11, $12, $13, $14, $15)",
                tenant, spec.number, spec.carrier, spec.service, s.status.value, s.substatus,
                place["origin"], place["destination"], spec.promised, s.created_at, s.shipped_at,
                s.delivered_at, spec.channel, spec.cost.amount if spec.cost else None,
                spec.cost.currency if spec.cost else None,
            )  # fmt: skip
            await conn.executemany(
                "INSERT INTO timeline_entries (tenant_id, tracking_number, event_id, carrier, status_code,"
                " status, substatus, occurred_at, occurred_at_local)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                [
                    (tenant, spec.number, e.event_id, e.carrier, e.status_code, e.status.value, e.substatus,
                     e.occurred_at, e.occurred_at.isoformat())
                    for e in entries
                ],
            )  # fmt: skip
            records[spec.number] = ShipmentRecord(
                created_at=s.created_at,
                shipped_at=s.shipped_at,
                delivered_at=s.delivered_at,
                promised_date=spec.promised,
                timeline=tuple(Milestone(e.status, e.substatus, e.occurred_at) for e in entries),
                shipping_cost=spec.cost,
            )
    return records


BRL = Money(amount=Decimal("10.00"), currency="BRL")
TENANT_A = [
    # picked up, delivered 22:30 in São Paulo on the promised day (01:30 UTC the next day): on time
    Spec("A1", [("in_transit.picked_up", "2026-11-02T10:00:00-03:00"),
                ("delivered.signed", "2026-11-05T22:30:00-03:00")],
         promised=date(2026, 11, 5), channel="web", cost=BRL),
    # a failed attempt, delivered a day late
    Spec("A2", [("in_transit.picked_up", "2026-11-03T09:00:00-03:00"),
                ("failed_attempt.recipient_absent", "2026-11-07T11:00:00-03:00"),
                ("delivered.signed", "2026-11-08T15:00:00-03:00")],
         service="pac", destination="MG", promised=date(2026, 11, 7), channel="marketplace",
         cost=Money(amount=Decimal("20.01"), currency="BRL")),
    # damaged on the way, delivered on time: not in full
    Spec("A3", [("in_transit.picked_up", "2026-11-03T09:00:00-03:00"),
                ("exception.damaged", "2026-11-04T09:00:00-03:00"),
                ("delivered.signed", "2026-11-06T09:00:00-03:00")],
         carrier="jadlog", service=None, promised=date(2026, 11, 10)),
    # refused and sent back: never delivered
    Spec("A4", [("in_transit.picked_up", "2026-11-10T09:00:00-03:00"),
                ("returning.refused", "2026-11-12T09:00:00-03:00"),
                ("returned.to_sender", "2026-11-15T09:00:00-03:00")],
         carrier="jadlog", service=None, origin="RJ", destination="SP", promised=date(2026, 11, 14)),
    # created in October, delivered in November: in the delivered cohort only
    Spec("A5", [("info_received.order_created", "2026-10-25T09:00:00-03:00"),
                ("in_transit.picked_up", "2026-10-26T09:00:00-03:00"),
                ("delivered.signed", "2026-11-03T09:00:00-03:00")], origin=None, destination=None),
    # held by the carrier, still moving
    Spec("A6", [("in_transit.picked_up", "2026-11-28T09:00:00-03:00"),
                ("exception.held_by_carrier", "2026-11-29T09:00:00-03:00")], promised=date(2026, 12, 2)),
]  # fmt: skip
TENANT_B = [
    Spec("B1", [("in_transit.picked_up", "2026-11-02T09:00:00-03:00"),
                ("delivered.signed", "2026-11-09T09:00:00-03:00")],
         promised=date(2026, 11, 4), cost=Money(amount=Decimal("99.00"), currency="USD")),
    Spec("B2", [("in_transit.picked_up", "2026-11-20T09:00:00-03:00")], carrier="loggi"),
]  # fmt: skip


Key = Callable[[str, datetime], "str | None"]
"""A group key from a shipment's number and the instant its cohort is cut on."""


def expected(records: dict[str, ShipmentRecord], key: Key) -> dict[str | None, dict[str, Any]]:
    """What the pure definitions make of these records for November, grouped by ``key``."""
    start, end = datetime.fromisoformat("2026-11-01T00:00Z"), datetime.fromisoformat("2026-12-01T00:00Z")
    created: dict[str | None, list[ShipmentRecord]] = {}
    delivered: dict[str | None, list[ShipmentRecord]] = {}
    for number, r in records.items():
        if r.created_at and start <= r.created_at < end:
            created.setdefault(key(number, r.created_at), []).append(r)
        if r.delivered_at and start <= r.delivered_at < end:
            delivered.setdefault(key(number, r.delivered_at), []).append(r)
    return {
        k: figures(k, count_created(created.get(k, [])), count_delivered(delivered.get(k, []))).to_json()
        for k in set(created) | set(delivered)
    }


@pytest.fixture(scope="module")
async def tenants(api: Api) -> dict[str, Any]:
    a, b = f"a{secrets.token_hex(4)}", f"b{secrets.token_hex(4)}"
    return {
        "a": a,
        "b": b,
        "records_a": await store(api.pool, a, TENANT_A),
        "records_b": await store(api.pool, b, TENANT_B),
        "key_a": api.keys.issue(a),
        "key_b": api.keys.issue(b),
    }


async def test_known_values_of_one_tenant(api: Api, tenants: dict[str, Any]) -> None:
    body = await api.kpis(tenants["key_a"], **NOVEMBER)
    assert (body["group_by"], body["period"], body["from"], body["to"]) == (
        "tenant",
        "week",
        *NOVEMBER.values(),
    )
    (item,) = body["items"]
    assert item == {
        "key": tenants["a"],
        "shipments": 5,  # A5 was created in October
        "delivered": 4,  # A1, A2, A3, A5
        "otif": 0.3333,  # of A1, A2, A3 (promised): A1 only — A2 is late, A3 damaged
        "on_time_rate": 0.6667,  # A1 (on the promised day where it was delivered) and A3
        "avg_transit_days": round((3 + 12.5 / 24 + 5 + 6 / 24 + 3 + 8) / 4, 2),
        "first_attempt_rate": 0.75,
        "redelivery_rate": 0.25,
        "exception_rate": 0.4,  # A3, A6 of 5
        "returned_rate": 0.2,  # A4
        "cost_per_delivery": {"amount": "15.00", "currency": "BRL"},  # (10.00 + 20.01) / 2, half to even
    }


@pytest.mark.parametrize(
    ("group_by", "key"),
    [
        ("carrier", lambda n, _: {"A3": "jadlog", "A4": "jadlog"}.get(n, "correios")),
        ("service", lambda n, _: {"A2": "pac", "A3": None, "A4": None}.get(n, "sedex")),
        ("lane", lambda n, _: {"A2": "SP/MG", "A4": "RJ/SP", "A5": None}.get(n, "SP/RJ")),
        ("region", lambda n, _: {"A2": "MG", "A4": "SP", "A5": None}.get(n, "RJ")),
        ("channel", lambda n, _: {"A1": "web", "A2": "marketplace"}.get(n)),
    ],
)
async def test_each_grouping_matches_the_pure_definitions(
    api: Api, tenants: dict[str, Any], group_by: str, key: Key
) -> None:
    got = await api.items(tenants["key_a"], group_by=group_by, **NOVEMBER)
    assert got == expected(tenants["records_a"], key)


async def test_period_buckets_cut_each_cohort_on_its_own_date(api: Api, tenants: dict[str, Any]) -> None:
    body = await api.kpis(tenants["key_a"], group_by="period", period="week", **NOVEMBER)
    by_key = {item["key"]: item for item in body["items"]}
    # every week the window touches, in order, empty ones too (Nov 1 is a Sunday: its week starts Oct 26)
    assert list(by_key) == [
        "2026-10-26",
        "2026-11-02",
        "2026-11-09",
        "2026-11-16",
        "2026-11-23",
        "2026-11-30",
    ]

    def week(_: str, at: datetime) -> str:
        return str(period_start(at.astimezone(UTC).date(), "week"))

    want = expected(tenants["records_a"], week)
    assert {k: v for k, v in by_key.items() if v["shipments"] or v["delivered"]} == want
    assert by_key["2026-11-02"]["shipments"] == 3  # A1, A2, A3 were created on Nov 2-3
    assert by_key["2026-11-02"]["delivered"] == 4  # A5 (Nov 3), A1 (Nov 6 UTC), A3, A2 (Sunday Nov 8)
    assert by_key["2026-11-16"]["shipments"] == 0 and by_key["2026-11-16"]["otif"] is None
    months = await api.items(tenants["key_a"], group_by="period", period="month", **NOVEMBER)
    assert list(months) == ["2026-11-01"] and months["2026-11-01"]["delivered"] == 4


async def test_a_tenant_never_sees_another_tenants_numbers(api: Api, tenants: dict[str, Any]) -> None:
    a, b = tenants["a"], tenants["b"]
    only_a = await api.items(tenants["key_a"], group_by="carrier", **NOVEMBER)
    assert set(only_a) == {"correios", "jadlog"}  # no loggi (B2), and B1's numbers are not in correios
    assert only_a["correios"]["cost_per_delivery"] == {"amount": "15.00", "currency": "BRL"}
    assert (await api.items(tenants["key_b"], **NOVEMBER)) == {
        b: expected(tenants["records_b"], lambda n, _: b)[b]
    }
    for params, status in (
        ({"tenant": b}, 404),  # a tenant key naming another tenant: as if it did not exist
        ({"tenant": a}, 200),
        ({"group_by": "nope"}, 422),
        ({"from": "2026-11-30", "to": "2026-11-01"}, 422),
        ({"from": "2020-01-01", "to": "2026-11-01"}, 422),
    ):
        response = await api.http.get("/v1/kpis", params=params, headers=tenants["key_a"])
        assert response.status_code == status, (params, response.text)
        if status != 200:
            assert response.headers["content-type"] == "application/problem+json"
    assert (await api.http.get("/v1/kpis")).status_code == 401
    no_scope = api.keys.issue(a, scopes=("events:write",))
    assert (await api.http.get("/v1/kpis", headers=no_scope)).status_code == 403
    # the operator: one tenant when named, every tenant side by side otherwise
    named = await api.items(api.admin, tenant=b, **NOVEMBER)
    assert set(named) == {b}
    every = await api.items(api.admin, **NOVEMBER)
    assert {a, b} <= set(every) and every[a] == (await api.items(tenants["key_a"], **NOVEMBER))[a]


async def test_filters_narrow_both_cohorts(api: Api, tenants: dict[str, Any]) -> None:
    got = await api.items(tenants["key_a"], carrier="Jadlog", **NOVEMBER)  # a carrier alias resolves
    assert got == expected({n: r for n, r in tenants["records_a"].items() if n in ("A3", "A4")},
                           lambda n, _: tenants["a"])  # fmt: skip
    assert (await api.items(tenants["key_a"], service="pac", **NOVEMBER))[tenants["a"]]["delivered"] == 1
    # an alias of a carrier's service resolves when the carrier is named (as in GET /v1/shipments)
    pac = await api.items(tenants["key_a"], carrier="correios", service="04510", **NOVEMBER)
    assert pac[tenants["a"]]["delivered"] == 1
    assert (await api.items(tenants["key_a"], channel="web", **NOVEMBER))[tenants["a"]]["shipments"] == 1


async def seed(conn: Any, tenant: str, total: int = 20_000) -> None:
    """``total`` delivered shipments over 90 days from Sep 1, 2026, a quarter of them ``tenant``'s, the
    rest spread over 7 other tenants; 3 or 4 timeline entries each (half had a failed attempt)."""
    await conn.execute(
        "INSERT INTO shipments (tenant_id, tracking_number, carrier, service, status, substatus, origin,"
        " destination, promised_date, created_at, shipped_at, delivered_at, sales_channel,"
        " shipping_cost_amount, shipping_cost_currency)"
        " SELECT CASE WHEN i % 4 = 0 THEN $1 ELSE $1 || '-other' || i % 7 END, 'P' || i,"
        " (ARRAY['correios', 'jadlog', 'loggi'])[1 + i % 3], 'sedex', 'delivered', 'delivered.signed',"
        " jsonb_build_object('state', 'SP'),"
        " jsonb_build_object('state', (ARRAY['RJ', 'MG', 'PR'])[1 + i % 3]),"
        " (t + interval '4 days')::date, t, t + interval '1 day', t + interval '1 day' * (2 + i % 5),"
        " (ARRAY['web', 'app'])[1 + i % 2], 10 + i % 13, 'BRL'"
        " FROM generate_series(1, $2) AS i, LATERAL (SELECT timestamptz '2026-09-01 12:00Z'"
        " + interval '1 minute' * (i * 129600.0 / $2) AS t) AS w",
        tenant,
        total,
    )
    await conn.execute(
        "INSERT INTO timeline_entries (tenant_id, tracking_number, event_id, carrier, status_code,"
        " status, substatus, occurred_at, occurred_at_local)"
        " SELECT s.tenant_id, s.tracking_number, s.tracking_number || '-' || n, s.carrier, 'X', e.status,"
        " e.substatus, e.at, to_char(e.at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS+00:00')"
        " FROM shipments s, generate_series(1, 4) AS n, LATERAL (SELECT"
        " (ARRAY['in_transit', 'out_for_delivery', 'failed_attempt', 'delivered'])[n] AS status,"
        " (ARRAY['in_transit.picked_up', 'out_for_delivery.with_courier', 'failed_attempt.other',"
        " 'delivered.signed'])[n] AS substatus,"
        " CASE n WHEN 1 THEN s.shipped_at WHEN 4 THEN s.delivered_at"
        " ELSE s.delivered_at - interval '1 hour' * (4 - n) END AS at) AS e"
        " WHERE s.tenant_id LIKE $1 || '%' AND (n <> 3 OR length(s.tracking_number) % 2 = 0)",
        tenant,
    )
    await conn.execute("ANALYZE shipments; ANALYZE timeline_entries")


async def test_a_few_thousand_shipments_answer_fast(api: Api) -> None:
    """20,000 shipments with their timelines, 5,000 of them the tenant's, over 90 days."""
    tenant = f"p{secrets.token_hex(4)}"
    async with api.pool.acquire() as conn:
        await seed(conn, tenant)
        delivered_by_december = await conn.fetchval(
            "SELECT count(*) FROM shipments WHERE tenant_id = $1 AND delivered_at < '2026-12-01Z'", tenant
        )
    auth = api.keys.issue(tenant)
    window = {"from": "2026-09-01", "to": "2026-11-30"}
    for params in ({"group_by": "carrier"}, {"group_by": "period", "period": "day"}, {"group_by": "lane"}):
        timings = []
        for _ in range(3):
            started = time.perf_counter()
            body = await api.kpis(auth, **params, **window)
            timings.append((time.perf_counter() - started) * 1000)
        assert sum(item["shipments"] for item in body["items"]) == 5000
        assert sum(item["delivered"] for item in body["items"]) == delivered_by_december
        print(f"GET /v1/kpis {params}: best {min(timings):.0f} ms of {[round(t) for t in timings]}")
        assert min(timings) < 1500, timings
