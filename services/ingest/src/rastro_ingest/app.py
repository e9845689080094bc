"""Composition root of the ingest service."""

from __future__ import annotations

from fastapi import FastAPI

from rastro_ingest.adapters.repository import DbKeyResolver, fetch_keys, publish_key
from rastro_ingest.api_carriers import router as carriers_router
from rastro_ingest.api_events import router as events_router
from rastro_ingest.api_telemetry import router as telemetry_router
from rastro_ingest.api_tenants import router as tenants_router
from rastro_ingest.housekeeping import defaults as retention_defaults
from rastro_ingest.housekeeping import retention
from rastro_ingest.imports.api import router as imports_router
from rastro_ingest.imports.inbox import watch_inbox
from rastro_ingest.polling.poller import poll_carriers
from rastro_ingest.rate_limit import RateLimiter, RateLimitHeaders
from rastro_ingest.settings import IngestSettings
from rastro_ingest.upstream import upstream_consumers
from rastro_kit.logs import get_logger
from rastro_kit.retention_api import retention_router
from rastro_kit.service import Runtime, ServiceDefinition, create_app, serve

__all__ = ["build_app", "main"]

log = get_logger(__name__)


async def republish_keys(runtime: Runtime) -> None:
    """The key topic is the other services' only source of keys: refresh it at every start, so a broker
    that lost its data (the embedded dev broker keeps nothing) still learns every key."""
    async with runtime.pool.acquire() as conn, conn.transaction():
        keys = await fetch_keys(conn)
        for key in keys:
            await publish_key(conn, key)
    log.info("api_keys_republished", count=len(keys))


def build_app(settings: IngestSettings) -> FastAPI:
    app = create_app(
        ServiceDefinition(
            settings=settings,
            title="Rastro ingest",
            description="The front door: upstream systems publish order and tracking events; "
            "tenants and API keys.",
            migrations=("rastro_ingest.migrations",),
            routers=(
                events_router,
                telemetry_router,
                tenants_router,
                imports_router,
                carriers_router,
                retention_router("ingest", "ingest", retention_defaults(settings)),
            ),
            consumers=upstream_consumers,
            key_resolver=DbKeyResolver,
            on_start=republish_keys,
            background=(poll_carriers, watch_inbox),
            retention=(retention(settings),),  # idempotency keys, imports, polled shipments
            streaming_paths=("/v1/imports",),  # CSV bodies are read as a stream, any size
        )
    )
    app.state.rate_limiter = RateLimiter(settings.rate_limit_per_s, settings.rate_limit_burst)
    app.add_middleware(RateLimitHeaders)
    return app


def main() -> None:
    settings = IngestSettings()
    serve(build_app(settings), settings)
