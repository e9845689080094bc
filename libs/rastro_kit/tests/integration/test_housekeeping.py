"""Inbox retention against a real Postgres: old rows go, recent ones stay, one instance at a time."""

from __future__ import annotations

import secrets
from datetime import timedelta

import pytest

from rastro_kit.db import apply_migrations, create_pool
from rastro_kit.housekeeping import Housekeeper, purge_inbox

pytestmark = pytest.mark.integration


async def test_old_inbox_rows_are_purged_in_batches_and_recent_ones_kept(database_url: str) -> None:
    schema = f"hk{secrets.token_hex(3)}"
    pool = await create_pool(database_url, schema)
    try:
        await apply_migrations(pool, schema, ())
        async with pool.acquire() as conn:
            await conn.execute(
                "INSERT INTO inbox(consumer_group, event_id, processed_at)"
                " SELECT 'g', 'old' || n, now() - interval '40 days' FROM generate_series(1, 1200) n"
            )
            await conn.execute(
                "INSERT INTO inbox(consumer_group, event_id, processed_at)"
                " SELECT 'g', 'new' || n, now() - interval '2 days' FROM generate_series(1, 30) n"
            )
        assert await purge_inbox(pool, timedelta(days=30), batch=500) == 1200
        async with pool.acquire() as conn:
            left = await conn.fetch("SELECT event_id FROM inbox")
        assert len(left) == 30 and all(r["event_id"].startswith("new") for r in left)

        keeper = Housekeeper(pool, schema, schema, timedelta(days=1))
        async with pool.acquire() as other:
            lock = keeper._lock_id
            await other.execute("SELECT pg_advisory_lock($1)", lock)
            assert await keeper.run_once() is None  # another instance is at it
            await other.execute("SELECT pg_advisory_unlock($1)", lock)
        assert await keeper.run_once() == 30
    finally:
        await pool.close()
