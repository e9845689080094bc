"""Housekeeping, a background task of the service: refreshes the queue gauges every
``metrics_interval_s`` and runs the retention purge every ``purge_interval_s`` (one instance at a time:
a session advisory lock elects it, the others skip the round). The purge applies each tenant's
``delivery_log`` and ``recipients`` retention (``rastro_kit.retention``); rows deleted are counted in
``rastro_notification_purged_total`` and the kit's ``rastro_housekeeping_deleted_total``.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from rastro_kit.db import DB_UNAVAILABLE
from rastro_kit.housekeeping import HOUSEKEEPING_DELETED
from rastro_kit.logs import get_logger
from rastro_kit.service import Runtime
from rastro_notification.adapters.retention import purge, queue_stats
from rastro_notification.metrics import (
    CIRCUITS_OPEN,
    ENDPOINTS_DISABLED,
    NOTICES_PENDING,
    PURGED,
    QUEUE_DEPTH,
    QUEUE_OLDEST_DUE_SECONDS,
)
from rastro_notification.settings import NotificationSettings

__all__ = ["Housekeeping"]

log = get_logger(__name__)


class Housekeeping:
    def __init__(self, settings: NotificationSettings) -> None:
        self._settings = settings
        self._next_purge = 0.0

    async def run(self, runtime: Runtime) -> None:
        while True:
            try:
                await self.refresh_gauges(runtime.pool)
                if time.monotonic() >= self._next_purge:
                    await self.purge_once(runtime.session_pool)  # its lock needs a real session
                    self._next_purge = time.monotonic() + self._settings.purge_interval_s
            except DB_UNAVAILABLE as exc:
                log.warning("housekeeping_db_unavailable", error=repr(exc))
            await asyncio.sleep(self._settings.metrics_interval_s)

    async def refresh_gauges(self, pool: Any) -> None:
        stats = await queue_stats(pool)
        QUEUE_DEPTH.set(stats["queue_depth"])
        QUEUE_OLDEST_DUE_SECONDS.set(stats["oldest_due_s"])
        ENDPOINTS_DISABLED.set(stats["disabled"])
        CIRCUITS_OPEN.set(stats["circuits_open"])
        NOTICES_PENDING.set(stats["notices_pending"])

    async def purge_once(self, pool: Any) -> dict[str, int] | None:
        """Purge if no other instance is purging; the counts, or None when skipped."""
        async with pool.acquire() as conn:
            if not await conn.fetchval("SELECT pg_try_advisory_lock(hashtext(current_schema() || ':purge'))"):
                return None
            try:
                counts = await purge(
                    conn,
                    log_retention_days=self._settings.log_retention_days,
                    recipient_retention_days=self._settings.recipient_retention_days,
                )
            finally:
                await conn.execute("SELECT pg_advisory_unlock(hashtext(current_schema() || ':purge'))")
        for table, count in counts.items():
            PURGED.labels(table).inc(count)
            HOUSEKEEPING_DELETED.labels("notification", table).inc(count)  # the metric every service has
        log.info("retention_purge", **counts)
        return counts
