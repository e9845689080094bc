"""A service's own retention rules run in the housekeeper's round, after the inbox: batched deletes
through the service's pool while the election lock is held on the session pool; counted per table."""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

import pytest

from rastro_kit.db import apply_migrations, create_pool
from rastro_kit.housekeeping import HOUSEKEEPING_DELETED, Housekeeper, delete_in_batches

pytestmark = pytest.mark.integration

DELETE_OLD_NOTES = (
    "WITH gone AS (DELETE FROM notes WHERE id IN (SELECT id FROM notes WHERE age > $1 LIMIT $2) RETURNING 1)"
    " SELECT count(*) AS notes FROM gone"
)


async def test_rules_run_after_the_inbox_under_a_lock_held_by_the_session_pool(database_url: str) -> None:
    schema = f"hkr{secrets.token_hex(3)}"
    pool = await create_pool(database_url, schema)
    session_pool = await create_pool(database_url, schema, max_size=2, application_name=f"{schema}-session")
    try:
        await apply_migrations(pool, schema, ())
        await pool.execute("CREATE TABLE notes (id int PRIMARY KEY, age int NOT NULL)")
        await pool.execute("INSERT INTO notes SELECT n, n FROM generate_series(1, 10) n")
        assert await delete_in_batches(pool, DELETE_OLD_NOTES, 7, batch=2) == {"notes": 3}  # 2 rounds

        seen: dict[str, Any] = {}

        async def rule(given: Any) -> dict[str, int]:
            seen["pool"] = given
            seen["lock_holders"] = await pool.fetch(
                "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
                " WHERE l.locktype = 'advisory' AND l.granted AND a.application_name LIKE $1 || '%'",
                schema,
            )
            return await delete_in_batches(given, DELETE_OLD_NOTES, 2, batch=2)

        before = HOUSEKEEPING_DELETED.labels(schema, "notes")._value.get()
        keeper = Housekeeper(
            pool, schema, schema, timedelta(days=1), session_pool=session_pool, purges=[rule]
        )
        assert await keeper.run_once() == 5
        assert keeper.last_round == {"inbox": 0, "notes": 5}
        assert seen["pool"] is pool
        assert [r[0] for r in seen["lock_holders"]] == [f"{schema}-session"]
        assert HOUSEKEEPING_DELETED.labels(schema, "notes")._value.get() - before == 5
        assert [r[0] for r in await pool.fetch("SELECT id FROM notes ORDER BY id")] == [1, 2]
    finally:
        await pool.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await session_pool.close()
        await pool.close()
