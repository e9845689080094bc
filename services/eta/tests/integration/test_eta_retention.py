"""Retention of eta's per-shipment rows against real Postgres, per tenant: a finished shipment past its
tenant's ``shipments`` override goes with its predictions, history, outcome and last-mile row, and its
lane sample loses its tracking number; another tenant's shipment of the same age (default retention), a
shipment in progress, and lane statistics stay."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from rastro_eta.housekeeping import purge_shipments
from rastro_kit.testing import migrated_schema

pytestmark = pytest.mark.integration
TABLES = ("shipments", "predictions", "prediction_history", "outcomes", "lane_samples", "last_mile")


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[Any]:
    async with migrated_schema(database_url, "eret", ("rastro_eta.migrations",)) as pool:
        yield pool


async def shipment(pool: Any, tenant: str, number: str, status: str, age_days: int) -> None:
    age = timedelta(days=age_days)
    await pool.execute(
        "INSERT INTO shipments (tenant_id, tracking_number, status, first_seen_at, last_event_at, updated_at)"
        " VALUES ($1, $2, $3, now() - $4::interval, now() - $4::interval, now() - $4::interval)",
        tenant,
        number,
        status,
        age,
    )
    for event in ("e1", "e2"):
        await pool.execute(
            "INSERT INTO prediction_history (tenant_id, tracking_number, expected_date, promise_date,"
            " milestone, lane_level, sample_size, model_version, started_at, expected_days, promise_days,"
            " predicted_at, event_id)"
            " VALUES ($1, $2, current_date, current_date, 'created', 'tenant', 0, 'v2', now(), 3, 5,"
            " now(), $3)",
            tenant,
            number,
            event,
        )
    await pool.execute(
        "INSERT INTO predictions SELECT * FROM prediction_history"
        " WHERE tenant_id = $1 AND tracking_number = $2 AND event_id = 'e2'",
        tenant,
        number,
    )
    await pool.execute(
        "INSERT INTO outcomes (tenant_id, tracking_number, lane_key, lane_level, delivered_date,"
        " expected_date, promise_date, milestone, model_version)"
        " VALUES ($1, $2, 'k', 'tenant', current_date, current_date, current_date, 'created', 'v2')",
        tenant,
        number,
    )
    await pool.execute(
        "INSERT INTO lane_samples (tenant_id, tracking_number, transit_days, started_at, delivered_at)"
        " VALUES ($1, $2, 3, now(), now())",
        tenant,
        number,
    )
    await pool.execute(
        "INSERT INTO last_mile (tenant_id, tracking_number, vehicle_id, last_position_at, positions_seen)"
        " VALUES ($1, $2, 'VAN-1', now() - $3::interval, 1)",
        tenant,
        number,
        age,
    )


async def left(pool: Any, tenant: str) -> dict[str, int]:
    return {t: await pool.fetchval(f"SELECT count(*) FROM {t} WHERE tenant_id = $1", tenant) for t in TABLES}


async def test_a_short_override_purges_only_its_tenants_finished_shipments(pool: Any) -> None:
    await pool.execute(
        "INSERT INTO retention_policies (tenant_id, category, days, updated_by)"
        " VALUES ('short', 'shipments', 30, 'k')"
    )
    await shipment(pool, "short", "OLD1", "delivered", 60)
    await shipment(pool, "short", "LIVE1", "in_transit", 60)  # in progress: never purged
    await shipment(pool, "short", "NEW1", "delivered", 5)
    await shipment(pool, "other", "OLD2", "delivered", 60)  # the 365-day default

    counts = await purge_shipments(pool, timedelta(days=365), batch=1)

    assert counts == {
        "shipments": 1,
        "predictions": 1,
        "prediction_history": 2,
        "outcomes": 1,
        "last_mile": 1,
        "lane_samples_unlinked": 1,
    }
    assert await left(pool, "short") == {
        "shipments": 2,
        "predictions": 2,
        "prediction_history": 4,
        "outcomes": 2,
        "lane_samples": 3,  # lane statistics stay
        "last_mile": 2,
    }
    # ... but the purged shipment's sample no longer names it; its transit time is still learned from.
    assert not await pool.fetchval("SELECT count(*) FROM lane_samples WHERE tracking_number = 'OLD1'")
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM lane_samples WHERE tenant_id = 'short' AND tracking_number LIKE 'purged:%'"
            " AND transit_days = 3"
        )
        == 1
    )
    assert await left(pool, "other") == {t: 2 if t == "prediction_history" else 1 for t in TABLES}
    assert not await pool.fetchval("SELECT count(*) FROM shipments WHERE tracking_number = 'OLD1'")
