"""What each KPI means, as pure functions of one shipment, and how a group's counts become figures.

A report has two cohorts (docs/kpis.md):

- **created** — shipments whose first event falls in the window: ``shipments``, ``exception_rate``,
  ``returned_rate`` (what happened to what was sent);
- **delivered** — shipments delivered in the window: ``delivered`` and every delivery KPI (``otif``,
  ``on_time_rate``, ``avg_transit_days``, ``first_attempt_rate``, ``redelivery_rate``,
  ``cost_per_delivery``) — how deliveries went.

The per-shipment predicates here are the definition; ``repository`` counts the very same ones in SQL,
and an integration test holds the two together. A timeline here is the shipment's entries without
carrier corrections (``effect`` set); an entry a correction withdrew still counts.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, NamedTuple

from rastro_events.payloads import Money
from rastro_events.taxonomy import Status

__all__ = [
    "NOT_IN_FULL_SUBSTATUSES",
    "RETURN_STATUSES",
    "CreatedCounts",
    "DeliveredCounts",
    "KpiFigures",
    "Milestone",
    "ShipmentRecord",
    "cost_per_delivery",
    "count_created",
    "count_delivered",
    "delivered_on",
    "failed_before_delivery",
    "figures",
    "had_exception",
    "had_return",
    "in_full",
    "merge_keys",
    "on_time",
    "otif",
    "ratio",
    "transit_days",
]

RETURN_STATUSES: frozenset[Status] = frozenset({Status.RETURNING, Status.RETURNED})
NOT_IN_FULL_SUBSTATUSES: frozenset[str] = frozenset(
    {"exception.damaged", "exception.lost", "exception.stolen"}
)
"""Besides any return: a parcel damaged, lost or stolen on the way was not delivered in full."""
SECONDS_PER_DAY = 86_400
_CENT = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class Milestone:
    """One timeline entry as the KPIs read it; ``occurred_at`` keeps the carrier's UTC offset."""

    status: Status
    substatus: str
    occurred_at: datetime


@dataclass(frozen=True, slots=True)
class ShipmentRecord:
    created_at: datetime | None
    shipped_at: datetime | None
    delivered_at: datetime | None
    promised_date: date | None
    timeline: tuple[Milestone, ...] = ()
    shipping_cost: Money | None = None


def delivered_on(s: ShipmentRecord) -> date | None:
    """The delivery's calendar day where it happened (the delivery entry's own offset), else in UTC."""
    if s.delivered_at is None:
        return None
    local = [
        m.occurred_at.date()
        for m in s.timeline
        if m.status is Status.DELIVERED and m.occurred_at == s.delivered_at
    ]
    return min(local) if local else s.delivered_at.astimezone(UTC).date()


def on_time(s: ShipmentRecord) -> bool | None:
    """Delivered on or before the promised date; None when not delivered or nothing was promised."""
    day = delivered_on(s)
    if day is None or s.promised_date is None:
        return None
    return day <= s.promised_date


def in_full(s: ShipmentRecord) -> bool:
    """No return (before or after delivery) and no damage, loss or theft on the way."""
    return not any(m.status in RETURN_STATUSES or m.substatus in NOT_IN_FULL_SUBSTATUSES for m in s.timeline)


def otif(s: ShipmentRecord) -> bool | None:
    """On time and in full; None where ``on_time`` is None."""
    timely = on_time(s)
    return None if timely is None else timely and in_full(s)


def failed_before_delivery(s: ShipmentRecord) -> bool:
    """A ``failed_attempt`` entry earlier than the delivery: delivered at a second (or later) try."""
    if s.delivered_at is None:
        return False
    delivered_at = s.delivered_at
    return any(m.status is Status.FAILED_ATTEMPT and m.occurred_at < delivered_at for m in s.timeline)


def had_exception(s: ShipmentRecord) -> bool:
    return any(m.status is Status.EXCEPTION for m in s.timeline)


def had_return(s: ShipmentRecord) -> bool:
    """Entered ``returning`` or ``returned`` at some point."""
    return any(m.status in RETURN_STATUSES for m in s.timeline)


def transit_days(s: ShipmentRecord) -> float | None:
    """Carrier pickup to delivery, in days (fractional); None without both, or if out of order."""
    if s.shipped_at is None or s.delivered_at is None or s.delivered_at < s.shipped_at:
        return None
    return (s.delivered_at - s.shipped_at).total_seconds() / SECONDS_PER_DAY


class CreatedCounts(NamedTuple):
    shipments: int = 0
    exceptions: int = 0
    returned: int = 0


class DeliveredCounts(NamedTuple):
    delivered: int = 0
    promised: int = 0
    on_time: int = 0
    otif: int = 0
    first_attempt: int = 0
    redelivered: int = 0
    transit_count: int = 0
    transit_days: float = 0.0
    costed: int = 0
    cost_total: Decimal = Decimal(0)
    currencies: tuple[str, ...] = ()


def count_created(records: Iterable[ShipmentRecord]) -> CreatedCounts:
    shipments = exceptions = returned = 0
    for s in records:
        shipments += 1
        exceptions += had_exception(s)
        returned += had_return(s)
    return CreatedCounts(shipments, exceptions, returned)


def count_delivered(records: Iterable[ShipmentRecord]) -> DeliveredCounts:
    """The counts of delivered shipments (others are skipped)."""
    n = promised = timely = full = first = again = transits = costed = 0
    days, total, currencies = 0.0, Decimal(0), set()
    for s in records:
        if s.delivered_at is None:
            continue
        n += 1
        promised += s.promised_date is not None
        timely += on_time(s) is True
        full += otif(s) is True
        retried = failed_before_delivery(s)
        first, again = first + (not retried), again + retried
        transit = transit_days(s)
        if transit is not None:
            transits, days = transits + 1, days + transit
        if s.shipping_cost is not None:
            costed, total = costed + 1, total + s.shipping_cost.amount
            currencies.add(s.shipping_cost.currency)
    return DeliveredCounts(
        n, promised, timely, full, first, again, transits, days, costed, total, tuple(sorted(currencies))
    )


def ratio(part: int, whole: int) -> float | None:
    """``part / whole`` rounded to 4 places; None when nothing is there to measure."""
    return round(part / whole, 4) if whole else None


@dataclass(frozen=True, slots=True)
class KpiFigures:
    key: str | None
    shipments: int
    delivered: int
    otif: float | None
    on_time_rate: float | None
    avg_transit_days: float | None
    first_attempt_rate: float | None
    redelivery_rate: float | None
    exception_rate: float | None
    returned_rate: float | None
    cost_per_delivery: Money | None

    def to_json(self) -> dict[str, Any]:
        cost = self.cost_per_delivery
        return {
            "key": self.key,
            "shipments": self.shipments,
            "delivered": self.delivered,
            "otif": self.otif,
            "on_time_rate": self.on_time_rate,
            "avg_transit_days": self.avg_transit_days,
            "first_attempt_rate": self.first_attempt_rate,
            "redelivery_rate": self.redelivery_rate,
            "exception_rate": self.exception_rate,
            "returned_rate": self.returned_rate,
            "cost_per_delivery": {"amount": str(cost.amount), "currency": cost.currency} if cost else None,
        }


def cost_per_delivery(d: DeliveredCounts) -> Money | None:
    """Mean shipping cost of the delivered shipments that have one, to the cent; None without any, or
    when they mix currencies (amounts in two currencies do not add up)."""
    if not d.costed or len(d.currencies) != 1:
        return None
    amount = (d.cost_total / d.costed).quantize(_CENT, rounding=ROUND_HALF_EVEN)
    return Money(amount=amount, currency=d.currencies[0])


def figures(key: str | None, c: CreatedCounts, d: DeliveredCounts) -> KpiFigures:
    return KpiFigures(
        key=key,
        shipments=c.shipments,
        delivered=d.delivered,
        otif=ratio(d.otif, d.promised),
        on_time_rate=ratio(d.on_time, d.promised),
        avg_transit_days=round(d.transit_days / d.transit_count, 2) if d.transit_count else None,
        first_attempt_rate=ratio(d.first_attempt, d.delivered),
        redelivery_rate=ratio(d.redelivered, d.delivered),
        exception_rate=ratio(c.exceptions, c.shipments),
        returned_rate=ratio(c.returned, c.shipments),
        cost_per_delivery=cost_per_delivery(d),
    )


def merge_keys(
    created: dict[str | None, CreatedCounts],
    delivered: dict[str | None, DeliveredCounts],
    keys: Sequence[str | None] = (),
) -> list[KpiFigures]:
    """One row per key of either cohort (and per ``keys``, present or not), sorted by key, None last."""
    wanted = set(created) | set(delivered) | set(keys)
    ordered = sorted(wanted, key=lambda k: (k is None, k or ""))
    return [figures(k, created.get(k, CreatedCounts()), delivered.get(k, DeliveredCounts())) for k in ordered]
