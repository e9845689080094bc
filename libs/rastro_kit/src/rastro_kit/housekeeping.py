"""Housekeeping every service runs: its tables do not grow without bound.

An inbox row proves an event was handled, so a redelivery is skipped. It is needed only as long as
the event can come back — main topics keep records 7 days, dead letters 28 (replays reuse the event
id) — so rows older than ``RASTRO_INBOX_RETENTION_DAYS`` (30) are deleted. A service adds its own
retention rules (``ServiceDefinition.retention``: finished shipments, old dead letters …); they run in
the same round, after the inbox.

Every rule deletes in small batches (short transactions, no long locks) through the service's pool,
pausing ``RASTRO_HOUSEKEEPING_PAUSE_MS`` (50) between batches so the live path keeps the database,
once an hour, by one instance per service: a session advisory lock elects it, taken on a session
connection (the direct pool behind a transaction pooler). Measured rates: docs/database.md.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any

from prometheus_client import Counter

from rastro_kit.logs import get_logger

__all__ = ["BATCH", "HOUSEKEEPING_DELETED", "Housekeeper", "Purge", "delete_in_batches", "purge_inbox"]

log = get_logger(__name__)
HOUSEKEEPING_DELETED = Counter(
    "rastro_housekeeping_deleted_total", "Rows deleted by retention housekeeping", ["service", "table"]
)
BATCH = 5_000  # rows per statement: ~tens of ms on a small server, so a batch never holds locks for long

# One retention rule: given the service's pool, delete what is due (in batches) and say how many rows
# went, per table.
Purge = Callable[[Any], Awaitable[Mapping[str, int]]]

_INBOX = (
    "WITH gone AS (DELETE FROM inbox WHERE ctid = ANY(ARRAY(SELECT ctid FROM inbox"
    " WHERE processed_at < now() - $1::interval LIMIT $2)) RETURNING 1)"
    " SELECT count(*) AS inbox FROM gone"
)


async def delete_in_batches(
    pool: Any, sql: str, *args: Any, batch: int = BATCH, pause_s: float = 0.0
) -> dict[str, int]:
    """Run ``sql`` until a round deletes fewer than ``batch`` rows; the counts, summed.

    ``sql`` takes ``args`` and then the batch size as its last parameter, and returns one row of named
    counts whose first is the number of rows the round selected, e.g. ``WITH gone AS (DELETE … LIMIT
    $2 RETURNING 1) SELECT count(*) AS inbox FROM gone``. Each round is one statement, so its own short
    transaction; ``pause_s`` between rounds leaves the live path room on a busy server.
    """
    totals: dict[str, int] = {}
    while True:
        async with pool.acquire() as conn:
            row = await conn.fetchrow(sql, *args, batch)
        counts = dict(row)
        for table, count in counts.items():
            totals[table] = totals.get(table, 0) + count
        if next(iter(counts.values())) < batch:
            return totals
        if pause_s:
            await asyncio.sleep(pause_s)


async def purge_inbox(pool: Any, older_than: timedelta, batch: int = BATCH, pause_s: float = 0.0) -> int:
    """Delete inbox rows processed before ``now() - older_than``; returns how many."""
    return (await delete_in_batches(pool, _INBOX, older_than, batch=batch, pause_s=pause_s))["inbox"]


class Housekeeper:
    def __init__(
        self,
        pool: Any,
        schema: str,
        service: str,
        retention: timedelta,
        interval_s: float = 3600.0,
        *,
        session_pool: Any = None,
        purges: Sequence[Purge] = (),
        pause_s: float = 0.0,
    ) -> None:
        self._pool, self._service, self._retention, self._interval = pool, service, retention, interval_s
        self._pause_s = pause_s
        self._session = session_pool if session_pool is not None else pool
        self._purges: tuple[Purge, ...] = (self._purge_inbox, *purges)
        self._lock_id = int.from_bytes(
            hashlib.sha256(f"housekeeping:{schema}".encode()).digest()[:8], "big", signed=True
        )
        self.last_round: dict[str, int] = {}

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
        """One round: rows deleted (every table; per table in ``last_round``), or None when another
        instance holds the lock."""
        async with self._session.acquire() as conn:
            if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", self._lock_id):
                return None
            counts: dict[str, int] = {}
            try:
                for purge in self._purges:
                    counts.update(await purge(self._pool))
            finally:
                await conn.execute("SELECT pg_advisory_unlock($1)", self._lock_id)
        self.last_round = counts
        for table, count in counts.items():
            HOUSEKEEPING_DELETED.labels(self._service, table).inc(count)
        if any(counts.values()):
            log.info("retention_purged", retention_days=self._retention.days, **counts)
        return sum(counts.values())

    async def _purge_inbox(self, pool: Any) -> dict[str, int]:
        return {"inbox": await purge_inbox(pool, self._retention, pause_s=self._pause_s)}
