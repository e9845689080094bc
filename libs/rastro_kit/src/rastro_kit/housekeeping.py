"""Housekeeping every service runs: the inbox does not grow without bound.

An inbox row proves an event was handled, so a redelivery is skipped. It is needed only as long as
the event can come back — main topics keep records 7 days, dead letters 28 (replays reuse the event
id) — so rows older than ``RASTRO_INBOX_RETENTION_DAYS`` (30) are deleted, in small batches (short
transactions, no long locks), once an hour by one instance per service (an advisory lock elects it).
"""

from __future__ import annotations

import asyncio
import hashlib
from datetime import timedelta
from typing import Any

from prometheus_client import Counter

from rastro_kit.logs import get_logger

__all__ = ["HOUSEKEEPING_DELETED", "Housekeeper", "purge_inbox"]

log = get_logger(__name__)
HOUSEKEEPING_DELETED = Counter(
    "rastro_housekeeping_deleted_total", "Rows deleted by retention housekeeping", ["service", "table"]
)


async def purge_inbox(pool: Any, older_than: timedelta, batch: int = 5_000) -> int:
    """Delete inbox rows processed before ``now() - older_than``; returns how many."""
    deleted = 0
    while True:
        async with pool.acquire() as conn:
            status = await conn.execute(
                "DELETE FROM inbox WHERE ctid = ANY(ARRAY(SELECT ctid FROM inbox"
                " WHERE processed_at < now() - $1::interval LIMIT $2))",
                older_than,
                batch,
            )
        count = int(status.split()[-1])
        deleted += count
        if count < batch:
            return deleted


class Housekeeper:
    def __init__(
        self, pool: Any, schema: str, service: str, retention: timedelta, interval_s: float = 3600.0
    ) -> None:
        self._pool, self._service, self._retention, self._interval = pool, service, retention, interval_s
        self._lock_id = int.from_bytes(
            hashlib.sha256(f"housekeeping:{schema}".encode()).digest()[:8], "big", signed=True
        )

    async def run(self) -> None:
        while True:
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database is down: try again next round
                log.warning("housekeeping_failed", error=repr(exc))
            await asyncio.sleep(self._interval)

    async def run_once(self) -> int | None:
        """One round; None when another instance holds the lock."""
        async with self._pool.acquire() as conn:
            if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", self._lock_id):
                return None
            try:
                deleted = await purge_inbox(self._pool, self._retention)
            finally:
                await conn.execute("SELECT pg_advisory_unlock($1)", self._lock_id)
        HOUSEKEEPING_DELETED.labels(self._service, "inbox").inc(deleted)
        if deleted:
            log.info("inbox_purged", rows=deleted, retention_days=self._retention.days)
        return deleted
