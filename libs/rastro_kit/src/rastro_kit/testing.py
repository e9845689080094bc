"""Test support shared by every package's tests: waiting on conditions, serving an app on a real port."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar, overload

import uvicorn

from rastro_kit.db import apply_migrations, create_pool

__all__ = [
    "TopicReader",
    "free_port",
    "migrated_schema",
    "publish_api_key",
    "send_event",
    "serve_app",
    "wait_until",
]

T = TypeVar("T")


@contextlib.asynccontextmanager
async def migrated_schema(
    database_url: str, prefix: str, packages: tuple[str, ...], *, max_size: int = 10
) -> AsyncIterator[Any]:
    """A pool on a fresh schema ``<prefix><hex>`` with the kit's and ``packages``' migrations applied,
    for tests that drive a service's SQL without the service; the schema is dropped afterwards."""
    schema = f"{prefix}{secrets.token_hex(3)}"
    pool = await create_pool(database_url, schema, max_size=max_size)
    try:
        await apply_migrations(pool, schema, packages)
        yield pool
    finally:
        await pool.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await pool.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@overload
async def wait_until(
    probe: Callable[[], Awaitable[T]], *, timeout: float = ..., interval: float = ..., message: str = ...
) -> T: ...


@overload
async def wait_until(
    probe: Callable[[], T], *, timeout: float = ..., interval: float = ..., message: str = ...
) -> T: ...


async def wait_until(
    probe: Callable[[], Any],
    *,
    timeout: float = 20.0,
    interval: float = 0.05,
    message: str = "condition",
) -> Any:
    """Poll ``probe`` until it returns something truthy; fail with ``message`` at the deadline."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        result = probe()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        last = result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message} (last: {last!r})")
        await asyncio.sleep(interval)


@contextlib.asynccontextmanager
async def serve_app(app: Any, port: int | None = None) -> AsyncIterator[str]:
    """Run an ASGI app (with its lifespan) on a real loopback port inside the running loop."""
    port = port or free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=5,  # a client that keeps a connection open must not hang the test
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    await wait_until(lambda: server.started or task.done(), timeout=60, message="uvicorn start")
    if task.done():
        task.result()
        raise RuntimeError("server stopped during start-up")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def publish_api_key(
    bootstrap: str,
    tenant_id: str,
    scopes: list[str],
    *,
    environment: str = "sandbox",
    idempotence: bool = False,
) -> str:
    """Make a tenant API key known to every service, as ingest does: publish its hash. Returns the key."""
    from aiokafka import AIOKafkaProducer

    from rastro_events import ApiKeyRecord, new_event, new_event_id
    from rastro_kit.auth import generate_api_key, hash_key

    key = generate_api_key(environment)
    record = ApiKeyRecord(
        key_id=f"key_{new_event_id().lower()}",
        key_hash=hash_key(key),
        tenant_id=tenant_id,
        environment=environment,
        scopes=scopes,
        name="test",
    )
    envelope = new_event(record, tenant_id=tenant_id, source="/rastro/tests")
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=idempotence, acks="all")
    await producer.start()
    try:
        await send_event(producer, envelope, key=record.key_id.encode())

    finally:
        await producer.stop()
    return key


class TopicReader:
    """Reads a topic from the beginning (no consumer group) and keeps everything it has seen."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.bootstrap, self.topic = bootstrap, topic
        self.records: list[Any] = []
        self._consumer: Any = None

    async def __aenter__(self) -> TopicReader:
        from aiokafka import AIOKafkaConsumer, TopicPartition

        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, enable_auto_commit=False, group_id=None
        )
        await self._consumer.start()
        await self._consumer.topics()
        partitions = self._consumer.partitions_for_topic(self.topic) or set()
        if not partitions:
            raise AssertionError(f"topic {self.topic} does not exist")
        parts = [TopicPartition(self.topic, p) for p in sorted(partitions)]
        self._consumer.assign(parts)
        await self._consumer.seek_to_beginning(*parts)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._consumer.stop()

    async def poll(self) -> list[Any]:
        batch = await self._consumer.getmany(timeout_ms=100)
        for records in batch.values():
            self.records.extend(records)
        return self.records

    async def wait_for(
        self, predicate: Callable[[Any], bool], count: int = 1, timeout: float = 20.0
    ) -> list[Any]:
        async def enough() -> list[Any] | None:
            await self.poll()
            found = [r for r in self.records if predicate(r)]
            return found if len(found) >= count else None

        return await wait_until(enough, timeout=timeout, message=f"{count} matching records on {self.topic}")


async def send_event(
    producer: Any, envelope: Any, *, topic: str | None = None, key: bytes | None = None
) -> str:
    """Produce one envelope as a service's outbox would: key = subject, CloudEvents headers.
    ``topic`` defaults to the topic of the envelope's event type. Returns the event id."""
    from rastro_events import encode_event, headers_for, model_for

    if topic is None:
        model = model_for(envelope.type)
        if model is None:
            raise ValueError(f"no topic known for {envelope.type!r}: pass topic=")
        topic = model.topic
    await producer.send_and_wait(
        topic, encode_event(envelope), key=key or envelope.subject.encode(), headers=headers_for(envelope)
    )
    return str(envelope.id)
