"""Retention of the read model against real Postgres: finished shipments past the retention go with their
timelines, in batches; recent or unfinished ones stay, and so does everything of another tenant that
shares a tracking number; old order events and order facts go too."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from rastro_kit.housekeeping import Housekeeper
from rastro_kit.retention import Cutoff
from rastro_kit.testing import migrated_schema
from rastro_normalization.housekeeping import FINISHED_SHIPMENTS, purge_read_model, retention
from rastro_normalization.settings import NormalizationSettings

pytestmark = pytest.mark.integration
YEAR = timedelta(days=365)


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[Any]:
    async with migrated_schema(database_url, "nret", ("rastro_normalization.migrations",)) as pool:
        yield pool


async def add_shipment(pool: Any, tenant: str, number: str, status: str, age_days: int, entries: int) -> None:
    await pool.execute(
        "INSERT INTO shipments(tenant_id, tracking_number, status, substatus, updated_at)"
        " VALUES ($1, $2, $3, $3 || '.x', now() - make_interval(days => $4))",
        tenant,
        number,
        status,
        age_days,
    )
    await pool.execute(
        "INSERT INTO timeline_entries(tenant_id, tracking_number, event_id, status_code, status, substatus,"
        " occurred_at, occurred_at_local)"
        " SELECT $1, $2, 'e' || n, 'C', $3, $3 || '.x', now(), '' FROM generate_series(1, $4) n",
        tenant,
        number,
        status,
        entries,
    )


async def kept(pool: Any) -> dict[str, int]:
    rows = await pool.fetch(
        "SELECT s.tenant_id || '/' || s.tracking_number AS k, count(t.event_id) AS n FROM shipments s"
        " LEFT JOIN timeline_entries t USING (tenant_id, tracking_number) GROUP BY 1"
    )
    return {r["k"]: r["n"] for r in rows}


async def test_finished_shipments_past_retention_go_with_their_timelines(pool: Any) -> None:
    a, b = "acme", "globex"
    for i in range(5):  # five old finished shipments of tenant a: more than one batch of 2
        await add_shipment(pool, a, f"OLD{i}", ("delivered", "returned", "cancelled")[i % 3], 400, 3)
    await add_shipment(pool, a, "RECENT", "delivered", 200, 2)  # finished, but within the year
    await add_shipment(pool, a, "STUCK", "in_transit", 800, 4)  # old, never finished: never purged
    await add_shipment(pool, a, "LATE", "exception", 400, 1)
    await add_shipment(pool, b, "OLD0", "in_transit", 400, 2)  # same number as a doomed one, other tenant
    await add_shipment(pool, b, "DONE", "delivered", 30, 1)
    await pool.execute(
        "INSERT INTO order_events VALUES"
        " ($1, 'o1', 'e1', 'info_received', 'x', 'C', now(), '', now() - $2::interval),"
        " ($1, 'o2', 'e2', 'info_received', 'x', 'C', now() - $2::interval, '', now())",
        a,
        timedelta(days=400),
    )  # o1 stored long ago (goes); o2 stored now, however old its event time (stays)
    await pool.execute(
        "INSERT INTO order_facts(tenant_id, order_id, sales_channel, updated_at)"
        " VALUES ($1, 'o1', 'web', now() - interval '400 days'), ($1, 'o2', 'web', now())",
        a,
    )

    # own fleet: a doomed shipment's vehicle and last position go with it; a route goes once old and
    # no remaining shipment follows it
    for number in ("OLD1", "STUCK"):
        await pool.execute(
            "INSERT INTO fleet_assignments(tenant_id, tracking_number, vehicle_id, route_id)"
            " VALUES ($1, $2, 'V', $3)",
            a,
            number,
            f"R-{number}",
        )
        await pool.execute(
            "INSERT INTO geofence_state(tenant_id, tracking_number, vehicle_id, state, position)"
            " VALUES ($1, $2, 'V', '{}', '{\"latitude\": -23.5}')",
            a,
            number,
        )
    await pool.execute(
        "INSERT INTO fleet_routes(tenant_id, route_id, points, updated_at) VALUES"
        " ($1, 'R-OLD1', '[]', now() - interval '400 days'),"
        " ($1, 'R-STUCK', '[]', now() - interval '400 days'),"
        " ($1, 'R-NEW', '[]', now())",
        a,
    )

    counts = await purge_read_model(pool, YEAR, batch=2)

    assert counts == {
        "shipments": 5,
        "timeline_entries": 15,
        "fleet_assignments": 1,
        "geofence_states": 1,
        "order_events": 1,
        "order_facts": 1,
        "fleet_routes": 1,  # R-OLD1: its shipment is gone; R-STUCK is still followed, R-NEW is recent
    }
    assert [r[0] for r in await pool.fetch("SELECT tracking_number FROM geofence_state")] == ["STUCK"]
    assert sorted(r[0] for r in await pool.fetch("SELECT route_id FROM fleet_routes")) == ["R-NEW", "R-STUCK"]
    assert await kept(pool) == {
        "acme/RECENT": 2,
        "acme/STUCK": 4,
        "acme/LATE": 1,
        "globex/OLD0": 2,
        "globex/DONE": 1,
    }
    assert [r[0] for r in await pool.fetch("SELECT order_id FROM order_events")] == ["o2"]
    assert [r[0] for r in await pool.fetch("SELECT order_id FROM order_facts")] == ["o2"]
    assert await purge_read_model(pool, YEAR) == {
        "shipments": 0,
        "timeline_entries": 0,
        "fleet_assignments": 0,
        "geofence_states": 0,
        "order_events": 0,
        "order_facts": 0,
        "fleet_routes": 0,
    }


async def test_the_housekeeper_runs_the_rule_and_the_partial_index_serves_it(pool: Any) -> None:
    await add_shipment(pool, "acme", "OLD", "delivered", 10, 2)
    settings = NormalizationSettings(retention_days=7)
    schema = await pool.fetchval("SELECT current_schema()")
    keeper = Housekeeper(pool, schema, "normalization", timedelta(days=30), purges=[retention(settings)])
    assert await keeper.run_once() == 3
    assert keeper.last_round == {
        "inbox": 0,
        "shipments": 1,
        "timeline_entries": 2,
        "fleet_assignments": 0,
        "geofence_states": 0,
        "order_events": 0,
        "order_facts": 0,
        "fleet_routes": 0,
    }
    # The purge's predicate must match the partial index's, or the planner cannot use it; seq scans off
    # so a tiny table still shows which indexes are usable.
    doomed = Cutoff(365).scope(
        FINISHED_SHIPMENTS.split("), timeline AS")[0].removeprefix("\nWITH doomed AS (")
    )
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL enable_seqscan = off")
        plan = "\n".join(r[0] for r in await conn.fetch(f"EXPLAIN {doomed}", YEAR, [], 10))
    assert "shipments_finished" in plan, plan


async def test_a_tenants_override_applies_to_its_rows_only(pool: Any) -> None:
    await pool.execute(
        "INSERT INTO retention_policies (tenant_id, category, days, updated_by)"
        " VALUES ('short', 'shipments', 30, 'k'), ('long', 'shipments', 3000, 'k')"
    )
    for tenant in ("short", "long", "other"):
        await add_shipment(pool, tenant, "OLD", "delivered", 60 if tenant != "long" else 400, 1)

    assert (await purge_read_model(pool, YEAR))["shipments"] == 1
    assert await kept(pool) == {"long/OLD": 1, "other/OLD": 1}  # 400 days < 3000; 60 days < the default
