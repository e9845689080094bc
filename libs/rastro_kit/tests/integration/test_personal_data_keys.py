"""Per-tenant data keys in a real Postgres: created on first use, rotation re-encrypts in batches and
resumes, a destroyed key shreds what it sealed."""

from __future__ import annotations

import secrets

import pytest

from rastro_kit.db import apply_migrations, create_pool
from rastro_kit.personal_data import (
    DecryptionError,
    EncryptedColumn,
    destroy_tenant_keys,
    drop_retired_keys,
    forget_cached_keys,
    open_text,
    rotate_column,
    rotate_tenant_key,
    seal_value,
    use_master_key,
)

pytestmark = pytest.mark.integration
COLUMN = EncryptedColumn("people", "email", key="ctid")


async def test_keys_rotate_in_batches_and_shred(database_url: str) -> None:
    use_master_key(secrets.token_bytes(32))
    schema = f"pd{secrets.token_hex(3)}"
    pool = await create_pool(database_url, schema)
    try:
        await apply_migrations(pool, schema, ())
        async with pool.acquire() as conn:
            await conn.execute("CREATE TABLE people (id int PRIMARY KEY, tenant_id text, email text)")
            for i in range(7):
                sealed = await seal_value(conn, "acme", COLUMN.aad, f"p{i}@example.com")
                await conn.execute("INSERT INTO people VALUES ($1, 'acme', $2)", i, sealed)
            await conn.execute("INSERT INTO people VALUES (99, 'acme', 'legacy@example.com')")  # pre-0006
            first = await conn.fetchval("SELECT key_id FROM data_keys WHERE tenant_id = 'acme'")
            assert await conn.fetchval("SELECT count(*) FROM people WHERE email LIKE '%example%'") == 1

            new = await rotate_tenant_key(conn, "acme")
            assert new != first
            assert await rotate_column(conn, "acme", COLUMN, batch=3) == 8  # 3 + 3 + 2, legacy sealed too
            assert await rotate_column(conn, "acme", COLUMN, batch=3) == 0  # resumable: nothing left
            assert await drop_retired_keys(conn, "acme", [COLUMN]) == 1
            rows = await conn.fetch("SELECT id, email FROM people ORDER BY id")
            assert all(r["email"].startswith(f"v1:{new}:") for r in rows)
            forget_cached_keys()
            assert await open_text(conn, "acme", COLUMN.aad, rows[0]["email"]) == "p0@example.com"
            assert await open_text(conn, "acme", COLUMN.aad, rows[-1]["email"]) == "legacy@example.com"
            with pytest.raises(DecryptionError):
                await open_text(conn, "globex", COLUMN.aad, rows[0]["email"])

            assert await destroy_tenant_keys(conn, "acme") == 1
            with pytest.raises(DecryptionError):
                await open_text(conn, "acme", COLUMN.aad, rows[0]["email"])
    finally:
        async with pool.acquire() as conn:
            await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await pool.close()
