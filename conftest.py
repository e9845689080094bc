"""Session-wide test infrastructure: one real broker and one real Postgres database for the whole run.

- Kafka: ``KAFKA_BOOTSTRAP_SERVERS`` if set (then ``RASTRO_KAFKA_IDEMPOTENCE`` decides idempotence),
  otherwise an embedded Tansu broker started here.
- Postgres: a fresh database on the server ``DATABASE_URL`` points at, if set; otherwise on an
  embedded Postgres started here. It is dropped at the end.
- ``RASTRO_TEST_CONTAINERS=1`` (on a machine with a Docker engine) runs both in containers instead:
  a real Apache Kafka broker in KRaft mode, with the idempotent producer on, and Postgres 16.
Tests isolate themselves with unique tenants, topics and schemas; consumers are long-lived (group
joins are slow on Tansu), so per-service fixtures are session-scoped.
"""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from rastro_events.topics import all_topics

CONTAINERS = os.environ.get("RASTRO_TEST_CONTAINERS", "").lower() in {"1", "true", "yes"}
# Services run in production mode in tests, where personal data needs a master key: one per test run
# (service processes started by the e2e stack inherit it). Tests of a missing key pass their own env.
os.environ.setdefault("RASTRO_MASTER_KEY", base64.b64encode(os.urandom(32)).decode())


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if external:
        yield external
        return
    if CONTAINERS:
        from testcontainers.community.kafka import KafkaContainer

        with KafkaContainer("confluentinc/cp-kafka:7.6.0").with_kraft() as kafka:
            yield kafka.get_bootstrap_server()
        return
    from rastro_cli.devstack.broker import start_broker

    # Outside pytest's rotating temp dirs: a concurrent run must not delete a live server's files.
    broker = start_broker(log_path=Path(tempfile.mkdtemp(prefix="rastro-tansu-")) / "tansu.log")
    try:
        yield broker.bootstrap
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def kafka_idempotence() -> bool:
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        return os.environ.get("RASTRO_KAFKA_IDEMPOTENCE", "true").lower() in {"1", "true", "yes"}
    return CONTAINERS  # a real Kafka has the idempotent producer; our embedded Tansu does not


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    external = os.environ.get("DATABASE_URL")
    if external:
        yield external
        return
    if CONTAINERS:
        from testcontainers.community.postgres import PostgresContainer

        with PostgresContainer("postgres:16", driver=None) as pg:
            yield pg.get_connection_url()
        return
    from rastro_cli.devstack.postgres import start_postgres

    base = Path(tempfile.mkdtemp(prefix="rastro-pg-"))
    server = start_postgres(base / "data")
    try:
        yield server.url
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


def with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + database))


@pytest.fixture(scope="session")
def database_url(postgres_server_url: str) -> Iterator[str]:
    name = f"rastro_test_{secrets.token_hex(4)}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(with_database(postgres_server_url, "postgres"))
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        yield with_database(postgres_server_url, name)
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def topics(kafka_bootstrap: str) -> list[str]:
    """The registry's topics, created once (3 partitions each keeps Tansu light in tests)."""
    from rastro_kit.kafka import apply_topics

    specs = [s.__class__(s.name, min(s.partitions, 3), s.configs, s.description) for s in all_topics()]
    asyncio.run(apply_topics(kafka_bootstrap, specs))
    return [s.name for s in specs]
