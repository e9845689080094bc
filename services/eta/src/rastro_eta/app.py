"""Composition root of eta: settings → model parameters, consumer, routes. Nothing connects until the
app's lifespan starts (the kit's Runtime opens the pool, the producer and the consumer there)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from fastapi import FastAPI

from rastro_eta.api import build_router
from rastro_eta.handlers import ShipmentChangedHandler, ShipmentPositionHandler
from rastro_eta.housekeeping import retention
from rastro_eta.settings import EtaSettings
from rastro_events import ShipmentChanged, ShipmentPosition
from rastro_events.topics import POSITIONS, SHIPMENTS
from rastro_kit.handler_context import Handler
from rastro_kit.retention_api import retention_router
from rastro_kit.service import ConsumerSpec, Runtime, ServiceDefinition, create_app, serve

__all__ = ["build_app", "main"]

DESCRIPTION = (
    "Learns per-tenant lane transit times from delivered shipments and publishes delivery-date "
    "predictions (P50 expected, P90 promise) on rastro.eta.v1."
)


def build_app(settings: EtaSettings | None = None) -> FastAPI:
    settings = settings or EtaSettings()
    parameters = settings.prediction_parameters()
    handlers: dict[str, Handler] = {
        ShipmentChanged.ce_type(): ShipmentChangedHandler(parameters),
        # own-fleet positions refine the ETA of a shipment on its way (the last mile); one group, one
        # more topic: same inbox, so a position is handled once like any event
        ShipmentPosition.ce_type(): ShipmentPositionHandler(parameters, settings.last_mile_parameters()),
    }

    def consumers(_: Runtime) -> Sequence[ConsumerSpec]:
        return [ConsumerSpec(topics=[SHIPMENTS, POSITIONS], handlers=handlers)]

    return create_app(
        ServiceDefinition(
            settings=settings,
            title="Rastro ETA",
            description=DESCRIPTION,
            migrations=("rastro_eta.migrations",),
            routers=[
                build_router(parameters, last_mile_fresh=timedelta(minutes=settings.last_mile_fresh_minutes)),
                retention_router("eta", "eta", {"shipments": settings.retention_days}),
            ],
            consumers=consumers,
            retention=(retention(settings),),  # finished shipments' rows
        )
    )


def main() -> None:
    settings = EtaSettings()
    serve(build_app(settings), settings)
