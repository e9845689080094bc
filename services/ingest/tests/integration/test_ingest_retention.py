"""Retention of ingest's tables against real Postgres, per tenant: a tenant with a short override loses
its old idempotency keys, finished imports (with their errors and re-upload keys) and unpolled shipments,
while another tenant's rows of the same age (default retention) stay, and so do live rows."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from rastro_ingest.housekeeping import purge_tables
from rastro_kit.testing import migrated_schema

pytestmark = pytest.mark.integration
DEFAULTS = {"shipments": 365.0, "idempotency_keys": 1.0, "imports": 90.0}


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[Any]:
    async with migrated_schema(database_url, "iret", ("rastro_ingest.migrations",)) as pool:
        yield pool


async def rows_of(pool: Any, tenant: str, age: timedelta, *, live: bool = False) -> None:
    """One row of each kind for ``tenant``, ``age`` old (``live``: an import still running, a shipment
    still polled)."""
    await pool.execute("INSERT INTO tenants (id, name) VALUES ($1, $1) ON CONFLICT DO NOTHING", tenant)
    await pool.execute(
        "INSERT INTO idempotency_keys (tenant_id, key, request_hash, status_code, response, content_type,"
        " created_at) VALUES ($1, $2, 'h', 202, '{}', 'application/json', now() - $3::interval)",
        tenant,
        secrets.token_hex(4),
        age,
    )
    job = f"imp_{secrets.token_hex(4)}"
    await pool.execute(
        "INSERT INTO import_jobs (id, tenant_id, status, options, updated_at, finished_at)"
        " VALUES ($1, $2, $3, '{}', now() - $4::interval,"
        " CASE WHEN $3 <> 'processing' THEN now() - $4::interval END)",
        job,
        tenant,
        "processing" if live else "completed",
        age,
    )
    await pool.execute("INSERT INTO import_errors VALUES ($1, 1, 'tracking_number', 'missing')", job)
    await pool.execute(
        "INSERT INTO import_event_keys (tenant_id, event_key, created_at)"
        " VALUES ($1, $2, now() - $3::interval)",
        tenant,
        uuid.uuid4(),
        age,
    )
    await pool.execute(  # what an order's events said: its invoice and tracking number (EDI matching)
        "INSERT INTO shipment_refs (tenant_id, order_id, tracking_number, invoice_number, updated_at)"
        " VALUES ($1, $2, 'AA123456785BR', '123', now() - $3::interval)",
        tenant,
        job,
        age,
    )
    connection = f"cc_{secrets.token_hex(4)}"
    await pool.execute(
        "INSERT INTO carrier_connections (id, tenant_id, carrier, webhook_secret)"
        " VALUES ($1, $2, 'correios', 's')",
        connection,
        tenant,
    )
    await pool.execute(
        "INSERT INTO tracked_shipments (connection_id, tracking_number, tenant_id, state, last_news_at,"
        " last_polled_at, next_poll_at) VALUES ($1, 'AA123456785BR', $2, $3, now() - $4::interval,"
        " now() - $4::interval, CASE WHEN $3 = 'in_transit' THEN now() END)",
        connection,
        tenant,
        "in_transit" if live else "delivered",
        age,
    )


async def count(pool: Any, table: str, tenant: str) -> int:
    join = " JOIN import_jobs j ON j.id = t.job_id" if table == "import_errors" else ""
    column = "j.tenant_id" if join else "t.tenant_id"
    return int(await pool.fetchval(f"SELECT count(*) FROM {table} t{join} WHERE {column} = $1", tenant))


async def test_a_short_override_purges_only_its_tenant(pool: Any) -> None:
    short, other = "ret-short", "ret-default"
    await pool.execute(
        "INSERT INTO retention_policies (tenant_id, category, days, updated_by) VALUES"
        " ($1, 'idempotency_keys', 1, 'k'), ($1, 'imports', 10, 'k'), ($1, 'shipments', 10, 'k')",
        short,
    )
    for tenant in (short, other):
        await rows_of(pool, tenant, timedelta(days=20))
    await rows_of(pool, short, timedelta(days=20), live=True)  # running import, polled shipment
    await rows_of(pool, short, timedelta(hours=1))  # young: kept

    counts = await purge_tables(pool, DEFAULTS)

    assert counts == {
        "idempotency_keys": 3,  # the short tenant's two old ones, and the other's (past the 1-day default)
        "import_jobs": 1,
        "import_errors": 1,
        "import_event_keys": 2,
        "tracked_shipments": 1,
        "shipment_refs": 2,  # the short tenant's two 20-day-old orders (10-day override)
    }
    left = {t: await count(pool, t, short) for t in ("import_jobs", "import_errors", "import_event_keys")}
    assert left == {"import_jobs": 2, "import_errors": 2, "import_event_keys": 1}
    assert await count(pool, "tracked_shipments", short) == 2  # the polled one and the young one
    assert await count(pool, "idempotency_keys", short) == 1
    assert await count(pool, "shipment_refs", short) == 1  # the young one
    for table in ("import_jobs", "import_errors", "import_event_keys", "tracked_shipments", "shipment_refs"):
        assert await count(pool, table, other) == 1, table  # 20 days: within the defaults
