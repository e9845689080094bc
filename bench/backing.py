"""The broker and the database a benchmark run uses, started here unless the environment names them.

- Kafka: ``KAFKA_BOOTSTRAP_SERVERS`` if set, else an embedded Tansu (memory only, no idempotent producer).
- Postgres: a fresh database ``rastro_bench_<hex>`` on the server ``DATABASE_URL`` points at, else on an
  embedded Postgres in a temporary directory. The database is dropped (and the embedded server
  stopped) at the end, so runs never see each other's rows.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from rastro_events.topics import all_topics
from rastro_kit.kafka import apply_topics

__all__ = ["Backing", "create_topics", "delete_topics", "started_backing"]


@dataclass(frozen=True)
class Backing:
    bootstrap: str
    database_url: str
    broker: str  # "tansu" or "kafka"
    idempotence: bool
    postgres: str
    partitions: int


def _with_database(url: str, database: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/" + database))


@contextlib.contextmanager
def _broker() -> Iterator[tuple[str, str, bool]]:
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if external:
        idempotence = os.environ.get("RASTRO_KAFKA_IDEMPOTENCE", "true").lower() in {"1", "true", "yes"}
        yield external, os.environ.get("RASTRO_BENCH_BROKER", "kafka"), idempotence
        return
    from rastro_cli.devstack.broker import start_broker

    log_dir = Path(tempfile.mkdtemp(prefix="rastro-bench-tansu-"))
    broker = start_broker(log_path=log_dir / "tansu.log")
    try:
        yield broker.bootstrap, "tansu", False
    finally:
        broker.stop()
        shutil.rmtree(log_dir, ignore_errors=True)


@contextlib.contextmanager
def _postgres_server() -> Iterator[tuple[str, str]]:
    external = os.environ.get("DATABASE_URL")
    if external:
        yield external, "external"
        return
    from rastro_cli.devstack.postgres import start_postgres

    base = Path(tempfile.mkdtemp(prefix="rastro-bench-pg-"))
    server = start_postgres(base / "data")
    try:
        yield server.url, "embedded"
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


async def _admin_sql(server_url: str, sql: str) -> str:
    conn = await asyncpg.connect(_with_database(server_url, "postgres"))
    try:
        await conn.execute(sql)
        return str(await conn.fetchval("SHOW server_version"))
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def started_backing(partitions: int) -> AsyncIterator[Backing]:
    with _broker() as (bootstrap, kind, idempotence), _postgres_server() as (server_url, origin):
        database = f"rastro_bench_{secrets.token_hex(4)}"
        version = await _admin_sql(server_url, f'CREATE DATABASE "{database}"')
        try:
            # The registry's topics (service topics are fixed names); tenants keep runs apart on them.
            await apply_topics(bootstrap, all_topics(partitions))
            yield Backing(
                bootstrap,
                _with_database(server_url, database),
                kind,
                idempotence,
                f"{version} ({origin})",
                partitions,
            )
        finally:
            await _admin_sql(server_url, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


@contextlib.asynccontextmanager
async def started_database() -> AsyncIterator[tuple[str, str]]:
    """Only Postgres (no broker): a fresh database's URL and the server's version, dropped at exit."""
    with _postgres_server() as (server_url, origin):
        database = f"rastro_bench_{secrets.token_hex(4)}"
        version = await _admin_sql(server_url, f'CREATE DATABASE "{database}"')
        try:
            yield _with_database(server_url, database), f"{version} ({origin})"
        finally:
            await _admin_sql(server_url, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


async def create_topics(bootstrap: str, names: Iterable[str], partitions: int) -> None:
    """Fresh topics for one scenario (names unique per run)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="rastro-bench")
    await admin.start()
    try:
        await admin.create_topics([NewTopic(n, partitions, 1) for n in names])
    finally:
        await admin.close()


async def delete_topics(bootstrap: str, names: Iterable[str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="rastro-bench")
    await admin.start()
    try:
        with contextlib.suppress(Exception):  # best effort: Tansu forgets everything at stop anyway
            await admin.delete_topics(list(names))
    finally:
        await admin.close()
