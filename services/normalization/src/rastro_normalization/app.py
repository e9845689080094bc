"""Composition root of the normalization service."""

from __future__ import annotations

from fastapi import FastAPI

from rastro_events import TelemetryPosition
from rastro_events.topics import ETA, ORDERS, TELEMETRY, TRACKING_RAW
from rastro_kit.retention_api import retention_router
from rastro_kit.service import ConsumerSpec, ServiceDefinition, create_app, serve
from rastro_normalization.api import router
from rastro_normalization.fleet.api import router as fleet_router
from rastro_normalization.fleet.processor import GeofenceProcessor
from rastro_normalization.handlers import BATCH_HANDLER, HANDLERS
from rastro_normalization.housekeeping import retention
from rastro_normalization.kpis.api import router as kpis_router
from rastro_normalization.mappings.api import router as mappings_router
from rastro_normalization.settings import NormalizationSettings

__all__ = ["build_app", "main"]


def consumers(settings: NormalizationSettings) -> tuple[ConsumerSpec, ...]:
    """The shipment consumer; and the geofence processor, in a group of its own so a burst of GPS
    positions never holds up carrier events (and it can be turned off where no fleet reports)."""
    main = ConsumerSpec(topics=(TRACKING_RAW, ORDERS, ETA), handlers=HANDLERS, batch_handler=BATCH_HANDLER)
    if not settings.geofence_enabled:
        return (main,)
    geofence = GeofenceProcessor(settings.fence_settings(), settings.postal_centroids_file)
    return (
        main,
        ConsumerSpec(
            topics=(TELEMETRY,),
            handlers={TelemetryPosition.ce_type(): geofence},
            batch_handler=geofence.batch,
            group_id=f"{settings.service_name}-geofence",
        ),
    )


def build_app(settings: NormalizationSettings) -> FastAPI:
    return create_app(
        ServiceDefinition(
            settings=settings,
            title="Rastro normalization",
            description="One status taxonomy for every carrier: code tables, the shipment state machine "
            "and the shipment read model.",
            migrations=("rastro_normalization.migrations",),
            routers=(
                router,
                mappings_router,
                kpis_router,
                fleet_router,
                retention_router("normalization", "normalization", {"shipments": settings.retention_days}),
            ),
            consumers=lambda _rt: consumers(settings),
            retention=(retention(settings),),
        )
    )


def main() -> None:
    settings = NormalizationSettings()
    serve(build_app(settings), settings)
