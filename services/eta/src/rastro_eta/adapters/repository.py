"""Postgres storage of eta (asyncpg): shipments, lane samples and states, predictions and outcomes.

Every query is bounded to a tenant; only the operator's reads may span tenants, and even they keep
each lane within its tenant. The repository wraps whatever it is given — the consumer's open
transaction, or the pool for the read API — and never commits on its own.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from rastro_eta.domain.lane_state import LaneState
from rastro_eta.domain.lanes import LaneAttributes, LaneKey, LaneLevel
from rastro_eta.domain.prediction import Prediction
from rastro_eta.domain.shipment import ShipmentFacts
from rastro_eta.domain.transit import LaneSample, Segment
from rastro_events import Status

__all__ = [
    "KPI_GROUPS",
    "KPI_PERIODS",
    "EtaErrorCount",
    "EtaRepository",
    "Kpi",
    "PublishedPrediction",
    "TenantLane",
]

_SELECT_SHIPMENT = """
    SELECT status, carrier, service, origin, destination, destination_zone, first_seen_at, last_event_at,
           created_at, shipped_at, delivered_at, promised_date, out_for_delivery_at
    FROM shipments WHERE tenant_id = $1 AND tracking_number = $2
    FOR UPDATE
"""
_UPSERT_SHIPMENT = """
    INSERT INTO shipments (tenant_id, tracking_number, status, carrier, service, origin, destination,
                           first_seen_at, last_event_at, created_at, shipped_at, delivered_at, promised_date,
                           destination_zone, out_for_delivery_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
    ON CONFLICT (tenant_id, tracking_number) DO UPDATE SET
        status = EXCLUDED.status, carrier = EXCLUDED.carrier, service = EXCLUDED.service,
        origin = EXCLUDED.origin, destination = EXCLUDED.destination,
        first_seen_at = EXCLUDED.first_seen_at, last_event_at = EXCLUDED.last_event_at,
        created_at = EXCLUDED.created_at, shipped_at = EXCLUDED.shipped_at,
        delivered_at = EXCLUDED.delivered_at, promised_date = EXCLUDED.promised_date,
        destination_zone = EXCLUDED.destination_zone, out_for_delivery_at = EXCLUDED.out_for_delivery_at,
        updated_at = now()
"""
_INSERT_SAMPLE = """
    INSERT INTO lane_samples (tenant_id, tracking_number, carrier, service, origin, destination,
                              transit_days, started_at, delivered_at, destination_zone, promised_date)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
    ON CONFLICT (tenant_id, tracking_number) DO NOTHING
    RETURNING 1
"""
_SELECT_STATES = """
    SELECT lane_key, state FROM lane_states WHERE tenant_id = $1 AND lane_key = ANY($2::text[])
"""
# Learning is a read-modify-write of several lane rows, some not yet existing (FOR UPDATE cannot lock
# a missing row): one transaction-scoped advisory lock per tenant makes a tenant's learners queue, so
# two deliveries never start from the same state and lose one update. Readers are not blocked.
_LOCK_TENANT_LANES = "SELECT pg_advisory_xact_lock(hashtextextended('eta-lanes:' || $1, 0))"
_UPSERT_STATE = """
    INSERT INTO lane_states (tenant_id, lane_key, level, carrier, service, origin, destination,
                             deliveries, state)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb)
    ON CONFLICT (tenant_id, lane_key) DO UPDATE SET
        level = EXCLUDED.level, carrier = EXCLUDED.carrier, service = EXCLUDED.service,
        origin = EXCLUDED.origin, destination = EXCLUDED.destination,
        deliveries = EXCLUDED.deliveries, state = EXCLUDED.state, updated_at = now()
"""
_ALL_STATES = """
    SELECT tenant_id, lane_key, state FROM lane_states WHERE ($1::text IS NULL OR tenant_id = $1)
    ORDER BY tenant_id, level, lane_key
"""
_INSERT_OUTCOME = """
    INSERT INTO outcomes (tenant_id, tracking_number, carrier, lane_key, lane_level, delivered_date,
                          expected_date, promise_date, shop_promised_date, milestone, model_version)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
    ON CONFLICT (tenant_id, tracking_number) DO NOTHING
"""
# group columns come from a closed set (KPI_GROUPS, KPI_PERIODS), never from input. The shipment join
# (for its service) is dropped by the planner when the group does not use it: unique key, no column read.
_OUTCOMES_IN_WINDOW = """
    FROM outcomes o
    LEFT JOIN shipments s ON s.tenant_id = o.tenant_id AND s.tracking_number = o.tracking_number
    WHERE ($1::text IS NULL OR o.tenant_id = $1)
      AND ($2::date IS NULL OR o.delivered_date >= $2) AND ($3::date IS NULL OR o.delivered_date <= $3)
"""
_KPIS = (
    """
    SELECT o.tenant_id, {group} AS key, count(*) AS deliveries,
           avg((abs(o.delivered_date - o.expected_date) <= 1)::int) AS eta_precision,
           avg((o.delivered_date <= o.promise_date)::int) AS on_time_share,
           avg(abs(o.delivered_date - o.expected_date)) AS expected_mae_days,
           avg((o.delivered_date <= o.shop_promised_date)::int) AS shop_on_time_share"""
    + _OUTCOMES_IN_WINDOW
    + "GROUP BY 1, 2 ORDER BY 1, 2"
)
KPI_GROUPS = {
    "tenant": "'*'",
    "carrier": "coalesce(o.carrier, '*')",
    "lane": "o.lane_key",
    "service": "coalesce(s.service, '*')",
    "period": "to_char(date_trunc({period}, o.delivered_date::timestamp), 'YYYY-MM-DD')",
}
KPI_PERIODS = {"day": "'day'", "week": "'week'", "month": "'month'"}
# delivered date - expected date, in days, per carrier; errors beyond ±$4 days count at ±$4.
_ERRORS = (
    """
    SELECT o.tenant_id, coalesce(o.carrier, '*') AS carrier,
           greatest(-$4::int, least($4::int, o.delivered_date - o.expected_date)) AS error_days,
           count(*) AS count"""
    + _OUTCOMES_IN_WINDOW
    + "GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
)
_SELECT_PREDICTIONS = """
    SELECT * FROM predictions WHERE ($1::text IS NULL OR tenant_id = $1) AND tracking_number = $2
    ORDER BY tenant_id LIMIT 10
"""
_PREDICTION_COLUMNS = """tenant_id, tracking_number, expected_date, promise_date, milestone, lane_level,
    lane_carrier, lane_service, lane_origin, lane_destination, sample_size, model_version, started_at,
    expected_days, promise_days, predicted_at, event_id, segment, weight, confidence, promise_quantile"""
_SELECT_HISTORY = """
    SELECT * FROM prediction_history WHERE tenant_id = $1 AND tracking_number = $2
    ORDER BY predicted_at DESC, event_id DESC LIMIT $3
"""
# The prediction in force replaces the last one; its history keeps every one (one statement, one trip).
_UPSERT_PREDICTION = f"""
    WITH history AS (
        INSERT INTO prediction_history ({_PREDICTION_COLUMNS})
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20,
                $21)
        ON CONFLICT DO NOTHING
    )
    INSERT INTO predictions (tenant_id, tracking_number, expected_date, promise_date, milestone, lane_level,
                             lane_carrier, lane_service, lane_origin, lane_destination, sample_size,
                             model_version, started_at, expected_days, promise_days, predicted_at, event_id,
                             segment, weight, confidence, promise_quantile)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)
    ON CONFLICT (tenant_id, tracking_number) DO UPDATE SET
        expected_date = EXCLUDED.expected_date, promise_date = EXCLUDED.promise_date,
        milestone = EXCLUDED.milestone, lane_level = EXCLUDED.lane_level,
        lane_carrier = EXCLUDED.lane_carrier, lane_service = EXCLUDED.lane_service,
        lane_origin = EXCLUDED.lane_origin, lane_destination = EXCLUDED.lane_destination,
        sample_size = EXCLUDED.sample_size, model_version = EXCLUDED.model_version,
        started_at = EXCLUDED.started_at, expected_days = EXCLUDED.expected_days,
        promise_days = EXCLUDED.promise_days, predicted_at = EXCLUDED.predicted_at,
        event_id = EXCLUDED.event_id, segment = EXCLUDED.segment, weight = EXCLUDED.weight,
        confidence = EXCLUDED.confidence, promise_quantile = EXCLUDED.promise_quantile
"""


@dataclass(frozen=True)
class PublishedPrediction:
    tenant_id: str
    prediction: Prediction
    predicted_at: datetime
    event_id: str


@dataclass(frozen=True)
class TenantLane:
    """One lane of one tenant with its learned state."""

    tenant_id: str
    state: LaneState


@dataclass(frozen=True)
class EtaErrorCount:
    tenant_id: str
    carrier: str
    error_days: int
    count: int


@dataclass(frozen=True)
class Kpi:
    tenant_id: str
    key: str
    deliveries: int
    eta_precision: float
    on_time_share: float
    expected_mae_days: float
    shop_on_time_share: float | None


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
            s.created_at, s.shipped_at, s.delivered_at, s.promised_date, a.destination_zone,
            s.out_for_delivery_at,
        )  # fmt: skip

    async def add_sample(self, tenant_id: str, sample: LaneSample) -> bool:
        """Remember a delivery; False when this shipment was learned before (learn it only on True)."""
        a = sample.attributes
        inserted = await self._db.fetchval(
            _INSERT_SAMPLE, tenant_id, sample.tracking_number, a.carrier, a.service, a.origin,
            a.destination, sample.transit_days, sample.started_at, sample.delivered_at,
            a.destination_zone, sample.promised_date,
        )  # fmt: skip
        return inserted is not None

    async def lane_states(
        self, tenant_id: str, keys: Iterable[LaneKey], *, for_update: bool = False
    ) -> dict[LaneKey, LaneState]:
        """The learned states of ``keys`` (those that exist). ``for_update`` first takes the tenant's
        learning lock (until the transaction ends): take it before reading what you will write."""
        by_text = {k.text: k for k in set(keys)}
        if for_update:
            await self._db.execute(_LOCK_TENANT_LANES, tenant_id)
        rows = await self._db.fetch(_SELECT_STATES, tenant_id, list(by_text))
        return {
            by_text[r["lane_key"]]: LaneState.from_state(by_text[r["lane_key"]], _json(r["state"]))
            for r in rows
        }

    async def save_lane_states(self, tenant_id: str, states: Iterable[LaneState]) -> None:
        for st in states:
            k = st.key
            await self._db.execute(
                _UPSERT_STATE, tenant_id, k.text, k.level.value, k.carrier, k.service, k.origin,
                k.destination, st.deliveries, json.dumps(st.to_state()),
            )  # fmt: skip

    async def all_lanes(self, tenant_id: str | None) -> list[TenantLane]:
        """Every lane at every level with its state; every tenant's when ``tenant_id`` is None."""
        rows = await self._db.fetch(_ALL_STATES, tenant_id)
        found = []
        for r in rows:
            key = LaneKey.parse(r["lane_key"])
            found.append(TenantLane(r["tenant_id"], LaneState.from_state(key, _json(r["state"]))))
        return found

    async def record_outcome(
        self, tenant_id: str, shipment: ShipmentFacts, in_force: Prediction, delivered_date: date
    ) -> None:
        """The prediction in force when ``shipment`` was delivered, beside the delivery (once)."""
        await self._db.execute(
            _INSERT_OUTCOME, tenant_id, shipment.tracking_number, shipment.attributes.carrier,
            in_force.lane.text, in_force.lane.level.value, delivered_date, in_force.expected_date,
            in_force.promise_date, shipment.promised_date, in_force.milestone.value, in_force.model_version,
        )  # fmt: skip

    async def kpis(
        self,
        tenant_id: str | None,
        group_by: str,
        *,
        period: str = "week",
        first: date | None = None,
        last: date | None = None,
    ) -> list[Kpi]:
        """Per tenant and group, over the outcomes delivered from ``first`` to ``last`` (both included)."""
        group = KPI_GROUPS[group_by].format(period=KPI_PERIODS[period])
        rows = await self._db.fetch(_KPIS.format(group=group), tenant_id, first, last)
        return [
            Kpi(
                r["tenant_id"],
                r["key"],
                r["deliveries"],
                float(r["eta_precision"]),
                float(r["on_time_share"]),
                float(r["expected_mae_days"]),
                None if r["shop_on_time_share"] is None else float(r["shop_on_time_share"]),
            )
            for r in rows
        ]

    async def eta_errors(
        self, tenant_id: str | None, *, first: date | None, last: date | None, clamp_days: int
    ) -> list[EtaErrorCount]:
        """How many deliveries came ``error_days`` after (negative: before) their expected date, per tenant
        and carrier, errors clamped to ±``clamp_days``."""
        rows = await self._db.fetch(_ERRORS, tenant_id, first, last, clamp_days)
        return [EtaErrorCount(r["tenant_id"], r["carrier"], r["error_days"], r["count"]) for r in rows]

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

    async def prediction_history(
        self, tenant_id: str, tracking_number: str, limit: int = 100
    ) -> list[PublishedPrediction]:
        """Every prediction published for a shipment, newest first."""
        rows = await self._db.fetch(_SELECT_HISTORY, tenant_id, tracking_number, limit)
        return [_published_from_row(r) for r in rows]

    async def save_prediction(
        self, tenant_id: str, p: Prediction, *, predicted_at: datetime, event_id: str
    ) -> None:
        lane = p.lane
        await self._db.execute(
            _UPSERT_PREDICTION, tenant_id, p.tracking_number, p.expected_date, p.promise_date,
            p.milestone.value, lane.level.value, lane.carrier, lane.service, lane.origin,
            lane.destination, p.sample_size, p.model_version, p.started_at, p.expected_days,
            p.promise_days, predicted_at, event_id, p.segment.value, p.weight, p.confidence,
            p.promise_quantile,
        )  # fmt: skip


def _json(value: Any) -> dict[str, Any]:
    """asyncpg returns jsonb as text unless a codec is set; accept both."""
    loaded: dict[str, Any] = json.loads(value) if isinstance(value, str) else value
    return loaded


def _shipment_from_row(tracking_number: str, row: Any) -> ShipmentFacts:
    return ShipmentFacts(
        tracking_number=tracking_number,
        status=Status(row["status"]),
        attributes=LaneAttributes(
            row["carrier"], row["service"], row["origin"], row["destination"], row["destination_zone"]
        ),
        first_seen_at=row["first_seen_at"],
        last_event_at=row["last_event_at"],
        created_at=row["created_at"],
        shipped_at=row["shipped_at"],
        delivered_at=row["delivered_at"],
        promised_date=row["promised_date"],
        out_for_delivery_at=row["out_for_delivery_at"],
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
        segment=Segment(row["segment"]),
        weight=row["weight"],
        confidence=row["confidence"],
        promise_quantile=row["promise_quantile"],
    )
    return PublishedPrediction(row["tenant_id"], prediction, row["predicted_at"], row["event_id"])
