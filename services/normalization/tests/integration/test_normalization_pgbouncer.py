"""Normalization behind PgBouncer 1.18 in transaction mode (RASTRO_DATABASE_POOLER=pgbouncer): events in,
shipments stored and events published through the outbox, the API answering — with fewer server
connections than the service's pool, so transactions really do move between server sessions — while
migrations, the relay's leader lock and LISTEN, and the housekeeper's lock use DATABASE_DIRECT_URL.

The service runs as its own role named after its schema (the default ``"$user", public`` search path
finds it; docs/database.md). Needs the ``pgbouncer`` binary: without it the test tries ``apt-get install
pgbouncer`` once (as root, time-limited) and otherwise skips, saying why.
"""

from __future__ import annotations

import asyncio
import functools
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from rastro_events import RawTrackingEvent, new_event
from rastro_events.topics import (
    ETA,
    ORDERS,
    SHIPMENTS,
    TRACKING_NORMALIZED,
    TRACKING_RAW,
    TopicSpec,
    dlq_topic,
    replay_topic,
    retry_topic,
)
from rastro_kit.db import PoolerSetupError, create_pool
from rastro_kit.kafka import apply_topics
from rastro_kit.testing import TopicReader, free_port, send_event, serve_app, wait_until
from rastro_normalization.app import build_app
from rastro_normalization.settings import NormalizationSettings

pytestmark = pytest.mark.integration
INSTALL_TIMEOUT_S = 300
ADMIN = "rk_admin_" + secrets.token_hex(8)
SERVER_CONNECTIONS = 2  # PgBouncer's pool per (database, role); the service's pool is larger
ROLE = f"pgb{secrets.token_hex(4)}"  # the service's role, schema and consumer group
PASSWORD = secrets.token_hex(12)  # for servers that do not trust local users (PgBouncer logs in with it)


def _pgbouncer_binary() -> tuple[str | None, str]:
    """The binary, or None and why there is none (after one attempt to install it)."""
    found = os.environ.get("PGBOUNCER") or shutil.which("pgbouncer") or shutil.which("/usr/sbin/pgbouncer")
    if found:
        return found, ""
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return None, "it is not installed, and installing it needs root and apt-get"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    command = ["apt-get", "install", "-y", "--no-install-recommends", "pgbouncer"]
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return None, f"`apt-get install pgbouncer` took longer than {INSTALL_TIMEOUT_S} s"
    found = shutil.which("pgbouncer") or shutil.which("/usr/sbin/pgbouncer")
    if found:
        return found, ""
    tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or [""]
    return None, f"`apt-get install pgbouncer` failed ({done.returncode}): {tail[0]}"


def _with(url: str, *, user: str, password: str | None) -> str:
    """``url`` logged in as someone else (a Unix-socket URL keeps its ``?host=`` directory)."""
    parts = urlsplit(url)
    login = f"{user}:{password}" if password else user
    where = f"{parts.hostname}:{parts.port or 5432}" if parts.hostname else ""
    return urlunsplit(parts._replace(netloc=f"{login}@{where}"))


class Bouncer:
    def __init__(self, url: str, log: Path) -> None:
        self.url, self.log = url, log


@pytest.fixture(scope="module")
def pgbouncer(database_url: str) -> Iterator[Bouncer]:
    """A PgBouncer of our own, transaction mode, trust auth for its clients."""
    binary, why = _pgbouncer_binary()
    if binary is None:
        pytest.skip(f"PgBouncer tests skipped: no pgbouncer binary: {why}")
    server = urlsplit(database_url)
    host, server_port = _server_address(database_url)
    port = free_port()
    work = Path(tempfile.mkdtemp(prefix="rastro-pgbouncer-"))
    admin, admin_password = server.username or "postgres", server.password or ""
    # Trust for our clients; the passwords are what PgBouncer logs in to the server with.
    (work / "users.txt").write_text(f'"{ROLE}" "{PASSWORD}"\n"{admin}" "{admin_password}"\n')
    (work / "pgbouncer.ini").write_text(
        f"[databases]\n* = host={host} port={server_port}\n[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = trust\nauth_file = {work / 'users.txt'}\n"
        f"pool_mode = transaction\ndefault_pool_size = {SERVER_CONNECTIONS}\nmax_client_conn = 100\n"
        f"logfile = {work / 'pgbouncer.log'}\npidfile = {work / 'pgbouncer.pid'}\n"
    )
    command = [binary, str(work / "pgbouncer.ini")]
    if os.geteuid() == 0:  # PgBouncer refuses to run as root: it drops to a user who must own its files
        user = _unprivileged_user(host)
        command[1:1] = ["-u", user.pw_name]
        for path in [work, *work.iterdir()]:
            os.chown(path, user.pw_uid, -1)
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        asyncio.run(wait_until(lambda: _accepts(port) or process.poll() is not None, timeout=10))
        if process.poll() is not None:
            pytest.fail(f"pgbouncer exited ({process.returncode}): {_tail(work / 'pgbouncer.log')}")
        yield Bouncer(f"postgresql://{admin}@127.0.0.1:{port}{server.path}", work / "pgbouncer.log")
    finally:
        process.terminate()
        process.wait(10)
        shutil.rmtree(work, ignore_errors=True)


def _server_address(database_url: str) -> tuple[str, int]:
    """Where PgBouncer finds the server: a host, or the socket directory of a Unix-socket server (the
    embedded Postgres listens only there)."""
    parts = urlsplit(database_url)
    socket_dir = parse_qs(parts.query).get("host", [""])[0]

    async def port() -> int:
        conn = await asyncpg.connect(database_url)
        try:
            return int(await conn.fetchval("SELECT current_setting('port')"))
        finally:
            await conn.close()

    return (socket_dir or parts.hostname or "127.0.0.1"), asyncio.run(port())


def _unprivileged_user(host: str) -> pwd.struct_passwd:
    """Who PgBouncer runs as: the owner of a Unix-socket server's directory (only it may enter), else
    nobody."""
    if host.startswith("/") and os.stat(host).st_uid != 0:
        return pwd.getpwuid(os.stat(host).st_uid)
    return pwd.getpwnam("nobody")


def _accepts(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _tail(path: Path) -> str:
    return " | ".join(path.read_text().splitlines()[-3:]) if path.exists() else "(no log)"


@pytest.fixture(scope="module")
async def role(database_url: str, pgbouncer: Bouncer) -> AsyncIterator[str]:
    """A login role named after the service's schema, allowed to create it (what docs/database.md asks)."""
    name = ROLE
    admin = await asyncpg.connect(database_url)
    try:
        database = await admin.fetchval("SELECT current_database()")
        await admin.execute(f"CREATE ROLE \"{name}\" LOGIN PASSWORD '{PASSWORD}'")
        await admin.execute(f'GRANT CREATE ON DATABASE "{database}" TO "{name}"')
        yield name
    finally:
        await admin.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        await admin.execute(f'DROP OWNED BY "{name}"')
        await admin.execute(f'DROP ROLE IF EXISTS "{name}"')
        await admin.close()


async def _start_group_at_end(bootstrap: str, group: str, topics: list[str]) -> None:
    """Commit the group's offsets at the end of ``topics``: the service handles only what we send, not
    everything earlier tests left on the shared topics."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer.topics()
        parts = [TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or ())]
        consumer.assign(parts)
        ends = await consumer.end_offsets(parts)
        await consumer.commit({tp: offset for tp, offset in ends.items()})
    finally:
        await consumer.stop()


async def test_the_service_runs_through_pgbouncer_in_transaction_mode(
    kafka_bootstrap: str,
    database_url: str,
    kafka_idempotence: bool,
    topics: list[str],
    pgbouncer: Bouncer,
    role: str,
) -> None:
    own = [dlq_topic(role), replay_topic(role), *(retry_topic(role, n) for n in (1, 2, 3))]
    await apply_topics(kafka_bootstrap, [TopicSpec(t, 1) for t in own])
    await _start_group_at_end(kafka_bootstrap, role, [TRACKING_RAW, ORDERS, ETA])
    settings = NormalizationSettings(
        service_name=role,  # schema, consumer group and role share the name
        KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap,
        DATABASE_URL=_with(pgbouncer.url, user=role, password=None),  # trust: no password to PgBouncer
        DATABASE_DIRECT_URL=_with(database_url, user=role, password=PASSWORD),
        RASTRO_DATABASE_POOLER="pgbouncer",
        RASTRO_DB_POOL_SIZE=6,
        RASTRO_KAFKA_IDEMPOTENCE=kafka_idempotence,
        RASTRO_ADMIN_API_KEY=ADMIN,
    )
    app = build_app(settings)
    runtime = app.state.runtime
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, enable_idempotence=kafka_idempotence)
    await producer.start()
    tenant, numbers = f"t{secrets.token_hex(4)}", ["PB100000001BR", "PB100000002BR"]
    try:
        async with serve_app(app) as url:
            assert runtime.session_pool is not runtime.pool
            await wait_until(runtime.runners[0].assigned.is_set, timeout=60, message="group join")
            for number in numbers:
                for code, at in (
                    ("PO-01", "2026-11-20T09:00:00-03:00"),
                    ("BDE-01", "2026-11-23T14:05:11-03:00"),
                ):
                    raw = RawTrackingEvent(
                        tracking_number=number,
                        carrier="ECT",
                        status_code=code,
                        occurred_at=datetime.fromisoformat(at),
                    )
                    await send_event(producer, new_event(raw, tenant_id=tenant, source="/test"))
            async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {ADMIN}"}) as http:
                for number in numbers:
                    body = await wait_until(
                        functools.partial(_delivered, http, tenant, number),
                        timeout=20,
                        message=f"{number} delivered",
                    )
                    assert [e["status_code"] for e in body["timeline"]] == ["PO-01", "BDE-01"]
            keys = {f"{tenant}/{n}".encode() for n in numbers}
            async with TopicReader(kafka_bootstrap, TRACKING_NORMALIZED) as normalized:
                await normalized.wait_for(lambda r: r.key in keys, count=4)
            async with TopicReader(kafka_bootstrap, SHIPMENTS) as shipments:
                await shipments.wait_for(lambda r: r.key in keys, count=2)
            # Many transactions at once on 6 client connections over 2 server sessions: any session state
            # (a cached prepared statement, a SET) would surface here as an error or a wrong schema.
            schemas = await asyncio.gather(
                *(runtime.pool.fetchval("SELECT current_schema() || $1::text", str(i)) for i in range(60))
            )
            assert schemas == [f"{role}{i}" for i in range(60)]
            assert runtime.relay.is_leader
            # The relay's leader lock (with its LISTEN) is held by a direct session, not by a server
            # connection PgBouncer lends to whoever comes next.
            assert await _advisory_lock_holders(database_url, role) == [f"{role}-session"]
            assert await runtime.state["housekeeper"].run_once() is not None  # so does the housekeeper's lock
            assert await runtime.pool.fetchval("SELECT count(*) FROM outbox") == 0
    finally:
        await producer.stop()
    log = pgbouncer.log.read_text()
    assert f"user={role}" in log  # the pooled traffic went through PgBouncer

    # A role whose search path does not lead to the schema is refused at start-up, with the fix.
    with pytest.raises(PoolerSetupError, match="ALTER ROLE"):
        await create_pool(pgbouncer.url, role, pooler="pgbouncer")


async def _advisory_lock_holders(database_url: str, role: str) -> list[str]:
    admin = await asyncpg.connect(database_url)
    try:
        rows = await admin.fetch(
            "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
            " WHERE l.locktype = 'advisory' AND l.granted AND a.usename = $1",
            role,
        )
    finally:
        await admin.close()
    return [r[0] for r in rows]


async def _delivered(http: httpx.AsyncClient, tenant: str, number: str) -> dict[str, Any] | None:
    r = await http.get(f"/v1/shipments/{number}", params={"tenant": tenant})
    body = r.json() if r.status_code == 200 else None
    return body if body and body["status"] == "delivered" and len(body["timeline"]) == 2 else None
