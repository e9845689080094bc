"""Composition root of the notification service: subscriptions and customer-notification APIs, the
consumer that turns events into webhook messages and customer notices, the webhook dispatcher, the
notice dispatcher and the housekeeping loop (gauges, retention purge)."""

from __future__ import annotations

from fastapi import FastAPI

from rastro_kit.kafka import apply_topics
from rastro_kit.personal_data import require_master_keys
from rastro_kit.retention_api import retention_router
from rastro_kit.service import Runtime, ServiceDefinition, create_app, serve
from rastro_notification.api import router as subscriptions_router
from rastro_notification.api_deliveries import router as deliveries_router
from rastro_notification.api_notices import router as notices_router
from rastro_notification.dispatcher import Dispatcher
from rastro_notification.events import ENDPOINTS_TOPIC_SPEC
from rastro_notification.handlers import consumers
from rastro_notification.housekeeping import Housekeeping
from rastro_notification.notice_dispatcher import NoticeDispatcher
from rastro_notification.privacy import router as privacy_router
from rastro_notification.settings import NotificationSettings

__all__ = ["build_app", "main"]


def retention_defaults(settings: NotificationSettings) -> dict[str, float]:
    """Days per retention category without a tenant's override (the housekeeping purge applies them)."""
    return {"delivery_log": settings.log_retention_days, "recipients": settings.recipient_retention_days}


def build_app(settings: NotificationSettings) -> FastAPI:
    dispatcher = Dispatcher(settings)
    notices = NoticeDispatcher(settings)
    housekeeping = Housekeeping(settings)

    async def on_start(rt: Runtime) -> None:
        # recipients are sealed with it; refuse keys wrapped by a master key we lack (docs/privacy.md)
        await require_master_keys(settings.development, rt.pool)
        # Our own topic (owner alerts): created here, like the kit creates nothing for us.
        await apply_topics(settings.kafka_bootstrap_servers, [ENDPOINTS_TOPIC_SPEC])

    async def on_stop(_rt: Runtime) -> None:
        notices.stop()
        # let deliveries in flight finish and hand the other claims back before tasks are cancelled
        await dispatcher.stop()

    app: FastAPI = create_app(
        ServiceDefinition(
            settings=settings,
            title="Rastro notification",
            description="Signed webhooks for tracking and ETA events, with durable retries; customer "
            "messages by e-mail and messaging providers.",
            migrations=("rastro_notification.migrations",),
            routers=(
                subscriptions_router,
                deliveries_router,
                notices_router,
                privacy_router,
                retention_router("notification", "notification", retention_defaults(settings)),
            ),
            consumers=consumers,
            background=(dispatcher.run, notices.run, housekeeping.run),
            on_start=on_start,
            on_stop=on_stop,
        )
    )
    app.state.dispatcher = dispatcher
    app.state.notice_dispatcher = notices
    app.state.housekeeping = housekeeping
    return app


def main() -> None:
    settings = NotificationSettings()
    serve(build_app(settings), settings)
