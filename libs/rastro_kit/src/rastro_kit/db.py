"""Postgres: one pool per service, bound to the service's own schema, and numbered SQL migrations.

Migrations are ``NNNN_name.sql`` files in a package (the kit's own first, then the service's), each
applied once, in order, inside a transaction, and recorded in ``<schema>.schema_migrations``.
An advisory lock keeps two instances starting together from applying the same file twice.

Behind PgBouncer in transaction mode (``pooler="pgbouncer"``) a connection is a different server
session at each transaction, so nothing may live in the session: no prepared-statement cache
(``statement_cache_size=0``) and no ``search_path`` startup parameter (PgBouncer refuses parameters it
does not know). The schema then comes from the role — one role per service, named after its schema
(the default ``"$user", public`` finds it) or given ``ALTER ROLE … SET search_path`` — and is checked
at start-up. Whatever needs a session uses a direct pool instead (docs/database.md).
"""

from __future__ import annotations

import hashlib
import re
from importlib import resources
from typing import Any, Literal

import asyncpg

__all__ = [
    "DB_UNAVAILABLE",
    "Migration",
    "PoolerSetupError",
    "apply_migrations",
    "create_pool",
    "load_migrations",
    "pending_migrations",
]

# The database, not the work, is at fault (outage, failover, restart, a backend killed by an admin, a
# connection left unusable by one): retry the whole unit of work later, never dead-letter it.
DB_UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.OperatorInterventionError,
    asyncpg.InternalClientError,
)
_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
KIT_MIGRATIONS = "rastro_kit.migrations"


class Migration:
    __slots__ = ("name", "package", "sql", "version")

    def __init__(self, package: str, version: int, name: str, sql: str) -> None:
        self.package, self.version, self.name, self.sql = package, version, name, sql

    @property
    def ident(self) -> str:
        return f"{self.package}:{self.version:04d}"


def load_migrations(*packages: str) -> list[Migration]:
    found: list[Migration] = []
    for package in packages:
        files = sorted(f for f in resources.files(package).iterdir() if _FILE.match(f.name))
        for f in files:
            m = _FILE.match(f.name)
            assert m is not None
            found.append(Migration(package, int(m.group(1)), m.group(2), f.read_text(encoding="utf-8")))
    return found


class PoolerSetupError(RuntimeError):
    """Connections through the transaction pooler do not see the service's schema first."""


async def create_pool(
    dsn: str,
    schema: str,
    *,
    max_size: int = 10,
    application_name: str = "rastro",
    pooler: Literal["none", "pgbouncer"] = "none",
) -> Any:
    """A pool whose connections see the service schema first. The schema is created if missing —
    except through a pooler, where it must already exist (the direct pool migrates first)."""
    _check_ident(schema)
    if pooler == "pgbouncer":
        return await _create_pooled(dsn, schema, max_size, application_name)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    finally:
        await conn.close()
    return await asyncpg.create_pool(
        dsn,
        min_size=1,
        max_size=max_size,
        server_settings={"search_path": f'"{schema}",public', "application_name": application_name},
    )


async def _create_pooled(dsn: str, schema: str, max_size: int, application_name: str) -> Any:
    pool = await asyncpg.create_pool(
        dsn,
        min_size=1,
        max_size=max_size,
        statement_cache_size=0,  # a named statement would be missing on the next server connection
        server_settings={"application_name": application_name},  # one of the parameters PgBouncer tracks
    )
    found = await pool.fetchval("SELECT current_schema()")
    if found != schema:
        role = await pool.fetchval("SELECT current_user")
        await pool.close()
        raise PoolerSetupError(
            f"through the pooler, role {role!r} sees schema {found!r} first, not {schema!r}: give each"
            f' service its own role named after its schema, or ALTER ROLE "{role}" SET search_path ='
            f' "{schema}", public (docs/database.md)'
        )
    return pool


async def apply_migrations(pool: Any, schema: str, packages: tuple[str, ...]) -> list[str]:
    """Apply what is pending; returns the idents applied now."""
    migrations = load_migrations(KIT_MIGRATIONS, *packages)
    applied_now: list[str] = []
    async with pool.acquire() as conn:
        lock_id = int.from_bytes(
            hashlib.sha256(f"migrate:{schema}".encode()).digest()[:8], "big", signed=True
        )
        await conn.execute("SELECT pg_advisory_lock($1)", lock_id)
        try:
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " ident text PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {r["ident"] for r in await conn.fetch("SELECT ident FROM schema_migrations")}
            for migration in migrations:
                if migration.ident in done:
                    continue
                async with conn.transaction():
                    await conn.execute(migration.sql)
                    await conn.execute(
                        "INSERT INTO schema_migrations(ident, name) VALUES ($1, $2)",
                        migration.ident,
                        migration.name,
                    )
                applied_now.append(migration.ident)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", lock_id)
    return applied_now


async def pending_migrations(pool: Any, packages: tuple[str, ...]) -> list[str]:
    wanted = [m.ident for m in load_migrations(KIT_MIGRATIONS, *packages)]
    async with pool.acquire() as conn:
        try:
            done = {r["ident"] for r in await conn.fetch("SELECT ident FROM schema_migrations")}
        except asyncpg.UndefinedTableError:
            return wanted
    return [w for w in wanted if w not in done]


def _check_ident(name: str) -> None:
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", name):
        raise ValueError(f"not a safe schema name: {name!r}")
