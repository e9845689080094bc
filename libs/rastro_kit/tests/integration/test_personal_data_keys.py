"""Per-tenant data keys in a real Postgres: created on first use, rotation re-encrypts in batches and
resumes, a destroyed key shreds what it sealed, and a new master key re-wraps every key without losing a
value or a blind index."""

from __future__ import annotations

import secrets

import pytest

from rastro_kit.db import apply_migrations, create_pool
from rastro_kit.personal_data import (
    DecryptionError,
    EncryptedColumn,
    MasterKeyMissing,
    blind_index,
    blind_index_with,
    check_master_keys,
    destroy_tenant_keys,
    drop_retired_keys,
    forget_cached_keys,
    kek_id,
    legacy_index_key,
    load_master_key,
    open_text,
    rewrap_data_keys,
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

            assert await destroy_tenant_keys(conn, "acme") == 2  # data key, and the index key rotation kept
            with pytest.raises(DecryptionError):
                await open_text(conn, "acme", COLUMN.aad, rows[0]["email"])
    finally:
        use_master_key(load_master_key(development=True))
        async with pool.acquire() as conn:
            await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await pool.close()


async def test_a_new_master_key_rewraps_every_key_and_keeps_values_and_blind_indexes(
    database_url: str,
) -> None:
    old, new = secrets.token_bytes(32), secrets.token_bytes(32)
    use_master_key(old)
    schema = f"pd{secrets.token_hex(3)}"
    pool = await create_pool(database_url, schema)
    try:
        await apply_migrations(pool, schema, ())
        async with pool.acquire() as conn:
            await conn.execute(
                "CREATE TABLE people (id int PRIMARY KEY, tenant_id text, email text, ix text)"
            )
            for i, tenant in enumerate(("acme", "acme", "legacy")):
                email = f"p{i}@example.com"
                sealed = await seal_value(conn, tenant, COLUMN.aad, email)
                index = await blind_index(conn, tenant, "email", email)
                await conn.execute("INSERT INTO people VALUES ($1, $2, $3, $4)", i, tenant, sealed, index)
            # "legacy" as a tenant from before migration 0009: no kek_id, indexes derived from the master
            await conn.execute("DELETE FROM data_keys WHERE tenant_id = 'legacy' AND purpose = 'index'")
            await conn.execute("UPDATE data_keys SET kek_id = NULL WHERE tenant_id = 'legacy'")
            legacy_ix = blind_index_with(legacy_index_key(old, "legacy"), "email", "p2@example.com")
            await conn.execute("UPDATE people SET ix = $1 WHERE id = 2", legacy_ix)

            use_master_key(new)  # the old key forgotten too soon: the service must not start
            with pytest.raises(MasterKeyMissing, match="RASTRO_MASTER_KEY_PREVIOUS"):
                await check_master_keys(conn)
            use_master_key(new, (old,))
            assert await rewrap_data_keys(conn, batch=2) == {
                "rewrapped": 3,  # acme's data and index keys, legacy's data key
                "unreadable": 0,
                "remaining": 0,
                "index_keys_created": 1,  # legacy's, derived from the old master key, wrapped by the new
            }
            assert (await rewrap_data_keys(conn))["rewrapped"] == 0

            use_master_key(new)  # the old key removed from RASTRO_MASTER_KEY_PREVIOUS
            assert await check_master_keys(conn) == {kek_id(new): 4}
            rows = await conn.fetch("SELECT * FROM people ORDER BY id")
            for row in rows:
                assert await open_text(conn, row["tenant_id"], COLUMN.aad, row["email"]) == (
                    f"p{row['id']}@example.com"
                )
                assert (
                    await blind_index(conn, row["tenant_id"], "email", f"P{row['id']}@example.com")
                    == (row["ix"])
                )

            assert await destroy_tenant_keys(conn, "acme") == 2  # its data key and its index key
            with pytest.raises(DecryptionError):
                await open_text(conn, "acme", COLUMN.aad, rows[0]["email"])
            assert await blind_index(conn, "acme", "email", "p0@example.com") != rows[0]["ix"]
            assert await open_text(conn, "legacy", COLUMN.aad, rows[2]["email"]) == "p2@example.com"
    finally:
        use_master_key(load_master_key(development=True))
        async with pool.acquire() as conn:
            await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await pool.close()
