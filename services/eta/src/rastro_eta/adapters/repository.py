"""Postgres storage of eta (asyncpg): shipments, lane samples and published predictions.

Every query is bounded to a tenant; only the operator's reads may span tenants, and even they keep
each lane within its tenant. The repository wraps whatever it is given — the consumer's open
transaction, or the pool for the read API — and never commits on its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rastro_eta.domain.lanes import LaneAttributes, LaneKey, LaneLevel
from rastro_eta.domain.prediction import Prediction
from rastro_eta.domain.shipment import ShipmentFacts
from rastro_eta.domain.transit import LaneSample
from rastro_events import Status

__all__ = ["EtaRepository", "LaneSamples", "PublishedPrediction"]

_SELECT_SHIPMENT = """
    SELECT status, carrier, service, origin, destination, first_seen_at, last_event_at,
           created_at, shipped_at, delivered_at, promised_date
    FROM shipments WHERE tenant_id = $1 AND tracking_number = $2
    FOR UPDATE
"""
_UPSERT_SHIPMENT = """
    INSERT INTO shipments (tenant_id, tracking_number, status, carrier, service, origin, destination,
                           first_seen_at, last_event_at, created_at, shipped_at, delivered_at, promised_date)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
    ON CONFLICT (tenant_id, tracking_number) DO UPDATE SET
        status = EXCLUDED.status, carrier = EXCLUDED.carrier, service = EXCLUDED.service,
        origin = EXCLUDED.origin, destination = EXCLUDED.destination,
        first_seen_at = EXCLUDED.first_seen_at, last_event_at = EXCLUDED.last_event_at,
        created_at = EXCLUDED.created_at, shipped_at = EXCLUDED.shipped_at,
        delivered_at = EXCLUDED.delivered_at, promised_date = EXCLUDED.promised_date, updated_at = now()
"""
_INSERT_SAMPLE = """
    INSERT INTO lane_samples (tenant_id, tracking_number, carrier, service, origin, destination,
                              transit_days, started_at, delivered_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
    ON CONFLICT (tenant_id, tracking_number) DO NOTHING
    RETURNING 1
"""
# Lane columns come from LaneLevel (a closed set of identifiers), never from input.
_RECENT_OF_LANE = """
    SELECT transit_days FROM lane_samples WHERE tenant_id = $1 {conditions}
    ORDER BY delivered_at DESC, id DESC LIMIT $2
"""
_LANES_OF_LEVEL = """
    SELECT {group}, (array_agg(transit_days ORDER BY delivered_at DESC, id DESC))[1:$2] AS recent
    FROM lane_samples WHERE ($1::text IS NULL OR tenant_id = $1) {conditions}
    GROUP BY {group} ORDER BY {group}
"""
_SELECT_PREDICTIONS = """
    SELECT * FROM predictions WHERE ($1::text IS NULL OR tenant_id = $1) AND tracking_number = $2
    ORDER BY tenant_id LIMIT 10
"""
_UPSERT_PREDICTION = """
    INSERT INTO predictions (tenant_id, tracking_number, expected_date, promise_date, milestone, lane_level,
                             lane_carrier, lane_service, lane_origin, lane_destination, sample_size,
                             model_version, started_at, expected_days, promise_days, predicted_at, event_id)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
    ON CONFLICT (tenant_id, tracking_number) DO UPDATE SET
        expected_date = EXCLUDED.expected_date, promise_date = EXCLUDED.promise_date,
        milestone = EXCLUDED.milestone, lane_level = EXCLUDED.lane_level,
        lane_carrier = EXCLUDED.lane_carrier, lane_service = EXCLUDED.lane_service,
        lane_origin = EXCLUDED.lane_origin, lane_destination = EXCLUDED.lane_destination,
        sample_size = EXCLUDED.sample_size, model_version = EXCLUDED.model_version,
        started_at = EXCLUDED.started_at, expected_days = EXCLUDED.expected_days,
        promise_days = EXCLUDED.promise_days, predicted_at = EXCLUDED.predicted_at,
        event_id = EXCLUDED.event_id
"""


@dataclass(frozen=True)
class PublishedPrediction:
    tenant_id: str
    prediction: Prediction
    predicted_at: datetime
    event_id: str


@dataclass(frozen=True)
class LaneSamples:
    """One lane of one tenant with its most recent transit times, newest first."""

    tenant_id: str
    key: LaneKey
    transit_days: Sequence[float]


class EtaRepository:
    def __init__(self, db: Any) -> None:
        self._db = db  # an asyncpg connection (inside a transaction) or a pool

    async def shipment(self, tenant_id: str, tracking_number: str) -> ShipmentFacts | None:
        row = await self._db.fetchrow(_SELECT_SHIPMENT, tenant_id, tracking_number)
        return None if row is None else _shipment_from_row(tracking_number, row)

    async def save_shipment(self, tenant_id: str, s: ShipmentFacts) -> None:
        a = s.attributes
        await self._db.execute(
            _UPSERT_SHIPMENT, tenant_id, s.tracking_number, s.status.value,
            a.carrier, a.service, a.origin, a.destination, s.first_seen_at, s.last_event_at,
            s.created_at, s.shipped_at, s.delivered_at, s.promised_date,
        )  # fmt: skip

    async def add_sample(self, tenant_id: str, sample: LaneSample) -> bool:
        """Learn a delivery; False when this shipment was learned before."""
        a = sample.attributes
        inserted = await self._db.fetchval(
            _INSERT_SAMPLE, tenant_id, sample.tracking_number, a.carrier, a.service, a.origin,
            a.destination, sample.transit_days, sample.started_at, sample.delivered_at,
        )  # fmt: skip
        return inserted is not None

    async def recent_transit_days(self, tenant_id: str, key: LaneKey, limit: int) -> list[float]:
        """The lane's ``limit`` most recent transit times (by delivery), newest first."""
        filters = key.filters
        conditions = " ".join(f"AND {column} = ${i}" for i, column in enumerate(filters, start=3))
        sql = _RECENT_OF_LANE.format(conditions=conditions)
        rows = await self._db.fetch(sql, tenant_id, limit, *filters.values())
        return [float(r["transit_days"]) for r in rows]

    async def lanes(self, tenant_id: str | None, limit: int) -> list[LaneSamples]:
        """Every lane at every level with its ``limit`` most recent samples; every tenant's when None."""
        found: list[LaneSamples] = []
        for level in LaneLevel:
            columns = level.attributes
            group = ", ".join(("tenant_id", *columns))
            conditions = " ".join(f"AND {c} IS NOT NULL" for c in columns)
            rows = await self._db.fetch(
                _LANES_OF_LEVEL.format(group=group, conditions=conditions), tenant_id, limit
            )
            found += [
                LaneSamples(r["tenant_id"], LaneKey(level, **{c: r[c] for c in columns}), list(r["recent"]))
                for r in rows
            ]
        return found

    async def last_prediction(self, tenant_id: str, tracking_number: str) -> Prediction | None:
        found = await self.published_predictions(tenant_id, tracking_number)
        return found[0].prediction if found else None

    async def published_predictions(
        self, tenant_id: str | None, tracking_number: str
    ) -> list[PublishedPrediction]:
        """The prediction last published for a shipment, per tenant that has this tracking number
        (at most one when the tenant is given)."""
        rows = await self._db.fetch(_SELECT_PREDICTIONS, tenant_id, tracking_number)
        return [_published_from_row(r) for r in rows]

    async def save_prediction(
        self, tenant_id: str, p: Prediction, *, predicted_at: datetime, event_id: str
    ) -> None:
        lane = p.lane
        await self._db.execute(
            _UPSERT_PREDICTION, tenant_id, p.tracking_number, p.expected_date, p.promise_date,
            p.milestone.value, lane.level.value, lane.carrier, lane.service, lane.origin,
            lane.destination, p.sample_size, p.model_version, p.started_at, p.expected_days,
            p.promise_days, predicted_at, event_id,
        )  # fmt: skip


def _shipment_from_row(tracking_number: str, row: Any) -> ShipmentFacts:
    return ShipmentFacts(
        tracking_number=tracking_number,
        status=Status(row["status"]),
        attributes=LaneAttributes(row["carrier"], row["service"], row["origin"], row["destination"]),
        first_seen_at=row["first_seen_at"],
        last_event_at=row["last_event_at"],
        created_at=row["created_at"],
        shipped_at=row["shipped_at"],
        delivered_at=row["delivered_at"],
        promised_date=row["promised_date"],
    )


def _published_from_row(row: Any) -> PublishedPrediction:
    lane = LaneKey(
        LaneLevel(row["lane_level"]),
        row["lane_carrier"],
        row["lane_service"],
        row["lane_origin"],
        row["lane_destination"],
    )
    prediction = Prediction(
        tracking_number=row["tracking_number"],
        expected_date=row["expected_date"],
        promise_date=row["promise_date"],
        milestone=Status(row["milestone"]),
        lane=lane,
        sample_size=row["sample_size"],
        model_version=row["model_version"],
        started_at=row["started_at"],
        expected_days=row["expected_days"],
        promise_days=row["promise_days"],
    )
    return PublishedPrediction(row["tenant_id"], prediction, row["predicted_at"], row["event_id"])
