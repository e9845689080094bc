"""The notice dispatcher: sends due customer messages and owner alerts through their channels.

A background task of the service, beside the webhook dispatcher. It wakes on ``LISTEN <schema>_notices``
and polls every ``poll_interval_s``. For each claimed notice, in order:

1. quiet hours (customer messages only, in the tenant's time zone): deferred to the end of the window,
   not an attempt, never dropped;
2. opt-out (customer messages only): ``suppressed``;
3. render (tenant override or shipped default) and send; ``sent``, or retried on
   ``notice_retry_schedule`` for a transient channel error, else ``failed``. A channel that is not
   configured makes the notice ``suppressed`` with the reason.

Logs carry the notice id, tenant, milestone and channel — never the address or the text.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from prometheus_client import Counter

from rastro_kit.db import DB_UNAVAILABLE
from rastro_kit.logs import get_logger
from rastro_kit.service import Runtime
from rastro_notification.adapters import customer_store, notice_store
from rastro_notification.adapters.channels import (
    Channel,
    ChannelError,
    ChannelNotConfigured,
    EmailChannel,
    MessagingChannel,
)
from rastro_notification.adapters.template_renderer import InvalidTemplate, render_notice
from rastro_notification.adapters.webhook_sender import WebhookSender
from rastro_notification.dispatcher import new_http_client
from rastro_notification.domain.quiet_hours import defer_until
from rastro_notification.settings import NotificationSettings

__all__ = ["NOTICES", "NoticeDispatcher"]

log = get_logger(__name__)
NOTICES = Counter(
    "rastro_notification_notices_total",
    "Customer messages and owner alerts, by outcome",
    ["channel", "outcome"],
)


class NoticeDispatcher:
    def __init__(
        self,
        settings: NotificationSettings,
        channels: Mapping[str, Channel] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._settings = settings
        self._given_channels = channels
        self._channels: Mapping[str, Channel] = {}
        self._schedule = settings.notice_schedule
        self._rng = rng or random.Random()
        self._wake = asyncio.Event()
        self._stopping = False
        self.rounds = 0
        self._listen_pool: Any = None

    async def run(self, runtime: Runtime) -> None:
        await self.serve(runtime.pool, listen_pool=runtime.session_pool)

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def serve(self, pool: Any, *, listen_pool: Any = None) -> None:
        """Until ``stop()``: the default channels (SMTP e-mail, messaging webhook) unless given.
        ``listen_pool`` (default ``pool``) holds the LISTEN: a real session, never a pooler's."""
        self._listen_pool = listen_pool if listen_pool is not None else pool
        if self._given_channels is not None:
            self._channels = self._given_channels
            await self._serve(pool)
            return
        s = self._settings
        async with new_http_client(s) as client:
            sender = WebhookSender(
                client,
                timeout_s=s.request_timeout_s,
                allow_private=s.private_urls_allowed,
                require_https=s.require_https,
            )
            self._channels = {"email": EmailChannel(s), "messaging": MessagingChannel(sender)}
            await self._serve(pool)

    async def _serve(self, pool: Any) -> None:
        while not self._stopping:
            try:
                async with self._listen_pool.acquire() as listener:
                    await listener.add_listener(self._channel_name, self._on_notify)
                    try:
                        await self._loop(pool)
                    finally:
                        with contextlib.suppress(*DB_UNAVAILABLE):
                            await listener.remove_listener(self._channel_name, self._on_notify)
            except DB_UNAVAILABLE as exc:
                log.warning("notice_dispatcher_db_unavailable", error=repr(exc))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), 2.0)

    @property
    def _channel_name(self) -> str:
        return f"{self._settings.schema}_notices"

    def _on_notify(self, *_: object) -> None:
        self._wake.set()

    async def _loop(self, pool: Any) -> None:
        while not self._stopping:
            self._wake.clear()
            claims = await notice_store.claim_notices(pool, limit=32, lease_s=self._settings.claim_lease_s)
            self.rounds += 1
            await asyncio.gather(*(self._handle(pool, c) for c in claims))
            if len(claims) < 32:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._settings.poll_interval_s)

    async def _handle(self, pool: Any, notice: notice_store.NoticeClaim) -> None:
        now = datetime.now(UTC)
        fields = {"notice_id": notice.id, "milestone": notice.milestone, "channel": notice.channel}
        if notice.kind == "customer":
            until = defer_until(notice.quiet, now)
            if until is not None:
                await notice_store.defer_notice(pool, notice.id, until, "quiet_hours")
                NOTICES.labels(notice.channel, "deferred").inc()
                log.info("notice_deferred", **fields, until=until.isoformat(), reason="quiet_hours")
                return
            if await customer_store.opted_out(pool, notice.tenant_id, [notice.address]):
                await notice_store.finish_notice(pool, notice.id, "suppressed", error="opted_out")
                NOTICES.labels(notice.channel, "suppressed").inc()
                log.info("notice_suppressed", **fields, reason="opted_out")
                return
        override = await customer_store.get_template(pool, notice.tenant_id, notice.milestone, notice.locale)
        context = {**notice.context, "tracking_url": _tracking_url(notice)}
        try:
            rendered = render_notice(
                notice.milestone, notice.locale, context, time_zone=notice.time_zone, override=override
            )
        except InvalidTemplate as exc:  # only a broken shipped default gets here
            await notice_store.finish_notice(pool, notice.id, "failed", error=str(exc))
            NOTICES.labels(notice.channel, "failed").inc()
            log.error("notice_template_error", **fields, error=str(exc))
            return
        try:
            await self._channels[notice.channel].send(notice, rendered)
        except ChannelNotConfigured as exc:
            await notice_store.finish_notice(pool, notice.id, "suppressed", error=str(exc))
            NOTICES.labels(notice.channel, "suppressed").inc()
            log.warning("notice_channel_not_configured", **fields)
            return
        except ChannelError as exc:
            delay = self._schedule.next_delay(notice.attempt_number, self._rng) if exc.transient else None
            status = "pending" if delay is not None else "failed"
            await notice_store.finish_notice(pool, notice.id, status, error=str(exc), retry_in_s=delay)
            NOTICES.labels(notice.channel, "retry" if delay is not None else "failed").inc()
            log.warning("notice_not_sent", **fields, error=str(exc), retry_in_s=delay)
            return
        await notice_store.finish_notice(pool, notice.id, "sent")
        NOTICES.labels(notice.channel, "sent").inc()
        log.info("notice_sent", **fields, attempt=notice.attempt_number)


def _tracking_url(notice: notice_store.NoticeClaim) -> str | None:
    if not notice.tracking_url or not notice.tracking_number:
        return None
    return notice.tracking_url.replace("{tracking_number}", notice.tracking_number)
