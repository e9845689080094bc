"""Postgres storage of the last mile (asyncpg): per shipment, the newest position handled and the
last-mile ETA last published (table ``last_mile``, migration 0009). Like ``EtaRepository`` it wraps the
consumer's open transaction or the pool, and never commits on its own."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from rastro_eta.domain.last_mile import LAST_MILE_STATUSES, LastMileEstimate
from rastro_eta.domain.prediction import Confidence
from rastro_events import ShipmentPosition, Status

__all__ = ["CurrentLastMile", "LastMileState", "LastMileStore"]

_Row = TypeVar("_Row", "LastMileState", "CurrentLastMile")
_COLUMNS = """l.tenant_id, l.tracking_number, l.vehicle_id, l.last_position_at, l.positions_seen,
    l.estimated_from, l.expected_at, l.promise_at, l.remaining_m, l.speed_kmh, l.confidence,
    l.model_version, l.milestone, l.predicted_at, l.event_id"""
_SELECT = f"SELECT {_COLUMNS} FROM last_mile l WHERE tenant_id = $1 AND tracking_number = $2 FOR UPDATE"
# A newer position: counted, and remembered as the newest (estimated_from only when it gave an estimate).
_RECORD_POSITION = """
    INSERT INTO last_mile (tenant_id, tracking_number, vehicle_id, last_position_at, positions_seen,
                           estimated_from)
    VALUES ($1, $2, $3, $4, 1, $5)
    ON CONFLICT (tenant_id, tracking_number) DO UPDATE SET
        vehicle_id = EXCLUDED.vehicle_id, last_position_at = EXCLUDED.last_position_at,
        positions_seen = last_mile.positions_seen + 1,
        estimated_from = coalesce(EXCLUDED.estimated_from, last_mile.estimated_from), updated_at = now()
    RETURNING positions_seen
"""
_SAVE_PUBLISHED = """
    UPDATE last_mile SET expected_at = $3, promise_at = $4, remaining_m = $5, speed_kmh = $6,
        confidence = $7, model_version = $8, milestone = $9, predicted_at = $10, event_id = $11,
        updated_at = now()
    WHERE tenant_id = $1 AND tracking_number = $2
"""
# The last-mile ETA in force: published, estimated from a position since $3, and its shipment still in
# a state positions refine (not delivered, not failed, not terminal). Per tenant, like predictions.
_CURRENT = f"""
    SELECT {_COLUMNS} FROM last_mile l
    JOIN shipments s ON s.tenant_id = l.tenant_id AND s.tracking_number = l.tracking_number
    WHERE l.tenant_id = $1 AND l.tracking_number = $2 AND l.expected_at IS NOT NULL
      AND l.estimated_from >= $3 AND s.status = ANY($4::text[])
"""


@dataclass(frozen=True)
class LastMileState:
    tenant_id: str
    tracking_number: str
    vehicle_id: str
    last_position_at: datetime
    positions_seen: int
    estimated_from: datetime | None = None
    expected_at: datetime | None = None
    """Of the last-mile ETA last published (None: none yet)."""
    promise_at: datetime | None = None
    remaining_m: int | None = None
    speed_kmh: float | None = None
    confidence: Confidence | None = None
    model_version: str | None = None
    milestone: Status | None = None
    predicted_at: datetime | None = None
    event_id: str | None = None


@dataclass(frozen=True)
class CurrentLastMile:
    """A published last-mile ETA in force (what the read API shows)."""

    tenant_id: str
    tracking_number: str
    vehicle_id: str
    positions_seen: int
    estimated_from: datetime
    expected_at: datetime
    promise_at: datetime
    remaining_m: int
    speed_kmh: float
    confidence: Confidence
    model_version: str
    milestone: Status
    predicted_at: datetime
    event_id: str


class LastMileStore:
    def __init__(self, db: Any) -> None:
        self._db = db  # an asyncpg connection (inside a transaction) or a pool

    async def state(self, tenant_id: str, tracking_number: str) -> LastMileState | None:
        """The shipment's last-mile row, locked until the transaction ends."""
        row = await self._db.fetchrow(_SELECT, tenant_id, tracking_number)
        return None if row is None else _from_row(LastMileState, row)

    async def record_position(
        self, tenant_id: str, position: ShipmentPosition, estimate: LastMileEstimate | None
    ) -> int:
        """Remember ``position`` as the newest one; how many positions the shipment has had."""
        seen: int = await self._db.fetchval(
            _RECORD_POSITION, tenant_id, position.tracking_number, position.vehicle_id,
            position.recorded_at, estimate.position_at if estimate else None,
        )  # fmt: skip
        return seen

    async def save_published(
        self,
        tenant_id: str,
        tracking_number: str,
        estimate: LastMileEstimate,
        *,
        confidence: Confidence,
        model_version: str,
        milestone: Status,
        predicted_at: datetime,
        event_id: str,
    ) -> None:
        await self._db.execute(
            _SAVE_PUBLISHED, tenant_id, tracking_number, estimate.expected_at, estimate.promise_at,
            estimate.remaining_m, estimate.speed_kmh, confidence, model_version, milestone.value,
            predicted_at, event_id,
        )  # fmt: skip

    async def current(self, tenant_id: str, tracking_number: str, since: datetime) -> CurrentLastMile | None:
        """The last-mile ETA in force, if one was estimated from a position recorded since ``since``."""
        statuses = sorted(s.value for s in LAST_MILE_STATUSES)
        row = await self._db.fetchrow(_CURRENT, tenant_id, tracking_number, since, statuses)
        if row is None:
            return None
        return _from_row(CurrentLastMile, row)


def _from_row(kind: type[_Row], row: Any) -> _Row:
    """A ``last_mile`` row as ``kind`` (its fields are columns), ``milestone`` as a ``Status``."""
    fields = {k: row[k] for k in kind.__dataclass_fields__}
    milestone = fields["milestone"]
    return kind(**(fields | {"milestone": None if milestone is None else Status(milestone)}))
