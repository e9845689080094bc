"""Composition root of the notification service: subscriptions API, the consumer that turns events
into messages, and the dispatcher that delivers them."""

from __future__ import annotations

from fastapi import FastAPI

from rastro_kit.service import ServiceDefinition, create_app, serve
from rastro_notification.api import router as subscriptions_router
from rastro_notification.api_deliveries import router as deliveries_router
from rastro_notification.dispatcher import Dispatcher
from rastro_notification.handlers import consumers
from rastro_notification.settings import NotificationSettings

__all__ = ["build_app", "main"]


def build_app(settings: NotificationSettings) -> FastAPI:
    dispatcher = Dispatcher(settings)
    app: FastAPI = create_app(
        ServiceDefinition(
            settings=settings,
            title="Rastro notification",
            description="Signed webhooks for tracking and ETA events, with durable retries.",
            migrations=("rastro_notification.migrations",),
            routers=(subscriptions_router, deliveries_router),
            consumers=consumers,
            background=(dispatcher.run,),
            # let deliveries in flight finish and hand the other claims back before tasks are cancelled
            on_stop=lambda _rt: dispatcher.stop(),
        )
    )
    app.state.dispatcher = dispatcher
    return app


def main() -> None:
    settings = NotificationSettings()
    serve(build_app(settings), settings)
