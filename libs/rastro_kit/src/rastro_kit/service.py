"""The runtime every service shares: pool, migrations, producer, outbox relay, consumers, key directory,
background tasks, and the FastAPI app with ``/healthz``, ``/readyz`` and ``/metrics``.

A service's composition root builds a ``ServiceDefinition`` and calls ``create_app``; nothing connects
until the app's lifespan starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import uvicorn
from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from rastro_kit.audit import MIN_AUDIT_RETENTION_DAYS, purge_expired
from rastro_kit.audit_api import audit_router
from rastro_kit.auth import Authenticator, KeyDirectory, KeyResolver
from rastro_kit.consumer import BatchHandler, ConsumerRunner, Handler, RawHandler
from rastro_kit.consumer_lag import BacklogMonitor, WatchedGroup
from rastro_kit.db import apply_migrations, create_pool, pending_migrations
from rastro_kit.housekeeping import Housekeeper, Purge
from rastro_kit.http import install_http_plumbing
from rastro_kit.kafka import make_consumer, make_producer
from rastro_kit.logs import configure_logging, get_logger
from rastro_kit.outbox import OutboxRelay
from rastro_kit.settings import KitSettings

__all__ = ["ConsumerSpec", "Runtime", "ServiceDefinition", "create_app", "serve"]

log = get_logger(__name__)


@dataclass(frozen=True)
class ConsumerSpec:
    topics: Sequence[str] = ()
    handlers: Mapping[str, Handler] | None = None
    raw_handler: RawHandler | None = None
    group_id: str | None = None  # default: the service name
    topic_pattern: str | None = None
    batch_handler: BatchHandler | None = None  # set-based fast path (see ConsumerRunner)


@dataclass
class ServiceDefinition:
    settings: KitSettings
    title: str
    description: str
    migrations: tuple[str, ...] = ()
    routers: Sequence[APIRouter] = ()
    consumers: Callable[[Runtime], Sequence[ConsumerSpec]] = lambda _rt: ()
    background: Sequence[Callable[[Runtime], Awaitable[None]]] = ()
    key_resolver: Callable[[Runtime], KeyResolver] | None = None  # default: a KeyDirectory
    on_start: Callable[[Runtime], Awaitable[None]] | None = None
    on_stop: Callable[[Runtime], Awaitable[None]] | None = None  # before background tasks are cancelled
    streaming_paths: tuple[str, ...] = ()  # path prefixes exempt from the body-size limit
    retention: Sequence[Purge] = ()  # the service's own retention rules, run after the inbox's
    extra: dict[str, Any] = field(default_factory=dict)


class Runtime:
    """Everything a running service holds. Handlers and routes reach it via ``request.app.state.runtime``."""

    def __init__(self, definition: ServiceDefinition) -> None:
        self.definition = definition
        self.settings = definition.settings
        self.service = self.settings.service_name
        self.pool: Any = None
        # Connections with a session of their own (leader locks, LISTEN, migrations): the same pool as
        # ``pool``, except behind a transaction pooler, where it is a small pool straight to Postgres.
        self.session_pool: Any = None
        self.producer: Any = None
        self.relay: OutboxRelay | None = None
        self.runners: list[ConsumerRunner] = []
        self.directory: KeyDirectory | None = None
        self.authenticator: Authenticator | None = None
        self.state: dict[str, Any] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._background: list[asyncio.Task[None]] = []
        self._migrated = False

    def consumer_factory(self, **overrides: Any) -> Callable[..., Any]:
        return functools.partial(make_consumer, self.settings, **overrides)

    async def start(self) -> None:
        s = self.settings
        if s.database_pooler == "pgbouncer":
            assert s.database_direct_url is not None  # the settings validated it
            self.session_pool = await create_pool(
                s.database_direct_url,
                s.schema,
                max_size=s.db_direct_pool_size,
                application_name=f"{self.service}-session",
            )
            applied = await apply_migrations(self.session_pool, s.schema, self.definition.migrations)
            self.pool = await create_pool(
                s.database_url,
                s.schema,
                max_size=s.db_pool_size,
                application_name=self.service,
                pooler="pgbouncer",
            )
        else:
            self.pool = self.session_pool = await create_pool(
                s.database_url, s.schema, max_size=s.db_pool_size, application_name=self.service
            )
            applied = await apply_migrations(self.pool, s.schema, self.definition.migrations)
        self._migrated = True
        log.info("migrations_applied", applied=applied)
        self.producer = make_producer(s)
        await self.producer.start()
        self.relay = OutboxRelay(self.session_pool, self.producer, s.schema, self.service)
        self._spawn("outbox-relay", self.relay.run)
        keeper = Housekeeper(
            self.pool,
            s.schema,
            self.service,
            timedelta(days=s.inbox_retention_days),
            session_pool=self.session_pool,
            purges=(*self.definition.retention, *audit_retention(s.audit_retention_days)),
            pause_s=s.housekeeping_pause_ms / 1000,
        )
        self.state["housekeeper"] = keeper
        self._spawn("housekeeping", keeper.run, graceful=False)
        if self.definition.key_resolver is not None:
            resolver = self.definition.key_resolver(self)
        else:
            self.directory = KeyDirectory(self.consumer_factory())
            self._spawn("key-directory", self.directory.run)
            resolver = self.directory
        self.authenticator = Authenticator(resolver, s.admin_api_key)
        watched: list[WatchedGroup] = []
        specs = list(self.definition.consumers(self))
        for spec in specs:
            # A service's groups share its retry tiers and replay topic: each leaves the others' types.
            siblings = {t for other in specs if other is not spec for t in (other.handlers or {})}
            runner = ConsumerRunner(
                service=self.service,
                group_id=spec.group_id or self.service,
                topics=spec.topics,
                pool=self.pool,
                consumer_factory=self.consumer_factory(),
                handlers=spec.handlers,
                raw_handler=spec.raw_handler,
                retry_delays_s=s.retry_delays_s,
                topic_pattern=spec.topic_pattern,
                max_records=s.max_poll_records,
                batch_handler=spec.batch_handler,
                migrations=s.migrations,
                sibling_types=siblings - set(spec.handlers or {}),
            )
            self.runners.append(runner)
            self._spawn(f"consumer-{runner.group_id}", runner.run)
            watched.append(WatchedGroup(runner.group_id, runner.topics, spec.topic_pattern))
        self._spawn("backlog-metrics", BacklogMonitor(s, watched, self.pool).run, graceful=False)
        if self.definition.on_start is not None:
            await self.definition.on_start(self)
        for i, task in enumerate(self.definition.background):
            self._spawn(f"background-{i}", functools.partial(task, self), graceful=False)
        log.info("service_started", port=s.http_port)

    def _spawn(self, name: str, factory: Callable[[], Awaitable[None]], graceful: bool = True) -> None:
        """Graceful tasks (consumers, relay) finish their batch when stopped; others are cancelled."""
        task = asyncio.create_task(self._supervise(name, factory), name=name)
        (self._tasks if graceful else self._background).append(task)

    async def _supervise(self, name: str, factory: Callable[[], Awaitable[None]]) -> None:
        """Keep a long-running loop alive: a crash is logged and the loop restarted with backoff."""
        backoff = 1.0
        while True:
            try:
                await factory()
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("task_crashed", task=name, restart_in_s=backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30.0)

    async def stop(self) -> None:
        if self.definition.on_stop is not None:
            try:
                await self.definition.on_stop(self)
            except Exception:
                log.exception("on_stop_failed")
        for runner in self.runners:
            runner.stop()
        if self.relay:
            self.relay.stop()
        if self.directory:
            self.directory.stop()
        for task in self._background:
            task.cancel()
        await _bounded(asyncio.gather(*self._background, return_exceptions=True), 10, "background tasks")
        _, pending = await asyncio.wait(self._tasks, timeout=10) if self._tasks else (set(), set())
        for task in pending:
            task.cancel()
        await _bounded(asyncio.gather(*pending, return_exceptions=True), 5, "cancelled tasks")
        if self.producer is not None:
            await _bounded(self.producer.stop(), 10, "kafka producer")
        for pool in self._pools():
            if not await _bounded(pool.close(), 10, "database pool"):
                pool.terminate()  # connections still busy (e.g. after an outage): close them hard

    def _pools(self) -> list[Any]:
        """The pools this runtime opened, each once (one, unless behind a transaction pooler)."""
        return list({id(p): p for p in (self.pool, self.session_pool) if p is not None}.values())

    async def readiness(self) -> dict[str, bool]:
        checks = {
            "database": False,
            "migrations": False,
            "broker": False,
            "consumers": False,
            "api_keys": True,
        }
        with contextlib.suppress(Exception):
            async with asyncio.timeout(3):
                for pool in self._pools():
                    async with pool.acquire() as conn:
                        checks["database"] = await conn.fetchval("SELECT 1") == 1
                checks["migrations"] = self._migrated and not await pending_migrations(
                    self.pool, self.definition.migrations
                )
        with contextlib.suppress(Exception):
            async with asyncio.timeout(3):
                checks["broker"] = bool(await self.producer.client.force_metadata_update())
        checks["consumers"] = all(r.running for r in self.runners)
        if self.directory is not None:
            checks["api_keys"] = self.directory.caught_up.is_set()
        return checks


def audit_retention(days: int) -> tuple[Purge, ...]:
    """The audit log's retention rule for housekeeping; none when ``days`` is 0 (kept forever)."""
    if days <= 0:
        return ()
    if days < MIN_AUDIT_RETENTION_DAYS:  # the table's trigger would refuse the purge anyway
        raise ValueError(f"RASTRO_AUDIT_RETENTION_DAYS is 0 (forever) or at least {MIN_AUDIT_RETENTION_DAYS}")
    return (functools.partial(purge_expired, retention=timedelta(days=days)),)


async def _bounded(step: Awaitable[Any], seconds: float, what: str) -> bool:
    """Shutdown never hangs on one part: give it ``seconds``, then move on (logged)."""
    try:
        await asyncio.wait_for(step, seconds)
        return True
    except TimeoutError:
        log.warning("shutdown_step_timed_out", step=what, seconds=seconds)
        return False


def create_app(definition: ServiceDefinition) -> FastAPI:
    settings = definition.settings
    runtime = Runtime(definition)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    app = FastAPI(
        title=definition.title, description=definition.description, version="0.1.0", lifespan=lifespan
    )
    app.state.runtime = runtime
    install_http_plumbing(
        app,
        settings.service_name,
        max_body_bytes=settings.max_body_bytes,
        streaming_paths=definition.streaming_paths,
    )

    @app.get("/healthz", tags=["ops"], summary="Alive")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": settings.service_name}

    @app.get("/readyz", tags=["ops"], summary="Broker and database reachable, migrations applied")
    async def readyz() -> JSONResponse:
        checks = await runtime.readiness()
        ok = all(checks.values())
        return JSONResponse(
            {"status": "ready" if ok else "not_ready", "checks": checks}, status_code=200 if ok else 503
        )

    @app.get("/metrics", tags=["ops"], summary="Prometheus metrics", response_class=PlainTextResponse)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    for router in definition.routers:
        app.include_router(router)
    app.include_router(audit_router(settings.service_name))  # GET /v1/audit/<service> (docs/audit.md)
    return app


def serve(app: FastAPI, settings: KitSettings) -> None:
    """Run a service process: JSON logs on stdout, uvicorn on the configured address."""
    configure_logging(settings.service_name, settings.log_level)
    uvicorn.run(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
    )
