"""KPI definitions, windows and buckets as pure functions (docs/kpis.md)."""

from __future__ import annotations

import ast
import sys
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from rastro_events import Status
from rastro_events.payloads import Money
from rastro_normalization.kpis import definitions as kpi
from rastro_normalization.kpis.definitions import (
    CreatedCounts,
    DeliveredCounts,
    Milestone,
    ShipmentRecord,
    count_created,
    count_delivered,
    figures,
    merge_keys,
)
from rastro_normalization.kpis.windows import (
    MAX_DAYS,
    KpiWindow,
    WindowError,
    period_start,
    period_starts,
    resolve_window,
)

pytestmark = pytest.mark.unit
BRT = timezone(timedelta(hours=-3))
SHIPPED = datetime(2026, 11, 2, 10, 0, tzinfo=BRT)


def at(day: int, hour: int = 10, tz: timezone = BRT) -> datetime:
    return datetime(2026, 11, day, hour, 0, tzinfo=tz)


def m(status: Status, when: datetime, substatus: str | None = None) -> Milestone:
    return Milestone(status, substatus or f"{status.value}.other", when)


def shipment(
    *timeline: Milestone, promised: date | None = date(2026, 11, 6), cost: str | None = None
) -> ShipmentRecord:
    delivered = next((x.occurred_at for x in timeline if x.status is Status.DELIVERED), None)
    return ShipmentRecord(
        created_at=SHIPPED - timedelta(days=1),
        shipped_at=SHIPPED,
        delivered_at=delivered,
        promised_date=promised,
        timeline=(m(Status.IN_TRANSIT, SHIPPED, "in_transit.picked_up"), *timeline),
        shipping_cost=Money(amount=Decimal(cost), currency="BRL") if cost else None,
    )


def test_on_time_compares_the_local_day_of_the_delivery_with_the_promise() -> None:
    late_evening = shipment(m(Status.DELIVERED, at(6, 22)))  # 01:00 UTC on the 7th, still the 6th in SP
    assert kpi.delivered_on(late_evening) == date(2026, 11, 6)
    assert kpi.on_time(late_evening) is True
    assert kpi.on_time(shipment(m(Status.DELIVERED, at(7, 8)))) is False
    assert kpi.on_time(shipment(m(Status.DELIVERED, at(5)), promised=None)) is None
    assert kpi.on_time(shipment(m(Status.OUT_FOR_DELIVERY, at(5)))) is None  # not delivered


def test_otif_needs_on_time_and_in_full() -> None:
    assert kpi.otif(shipment(m(Status.DELIVERED, at(5)))) is True
    damaged = shipment(m(Status.EXCEPTION, at(4), "exception.damaged"), m(Status.DELIVERED, at(5)))
    assert (kpi.on_time(damaged), kpi.in_full(damaged), kpi.otif(damaged)) == (True, False, False)
    returned_after = shipment(m(Status.DELIVERED, at(5)), m(Status.RETURNING, at(6), "returning.refused"))
    assert kpi.otif(returned_after) is False
    delayed_only = shipment(
        m(Status.EXCEPTION, at(4), "exception.held_by_carrier"), m(Status.DELIVERED, at(5))
    )
    assert kpi.otif(delayed_only) is True  # an exception that caused no damage or return is still in full
    assert kpi.otif(shipment(m(Status.DELIVERED, at(8)))) is False


def test_first_attempt_and_redelivery_split_the_deliveries() -> None:
    first = shipment(m(Status.OUT_FOR_DELIVERY, at(5, 8)), m(Status.DELIVERED, at(5)))
    second = shipment(m(Status.FAILED_ATTEMPT, at(4)), m(Status.DELIVERED, at(5)))
    failed_after = shipment(m(Status.DELIVERED, at(5)), m(Status.FAILED_ATTEMPT, at(6)))  # a stray late scan
    assert [kpi.failed_before_delivery(s) for s in (first, second, failed_after)] == [False, True, False]
    counts = count_delivered([first, second, failed_after])
    assert (counts.first_attempt, counts.redelivered, counts.delivered) == (2, 1, 3)


def test_transit_days_run_from_pickup_to_delivery() -> None:
    assert kpi.transit_days(shipment(m(Status.DELIVERED, SHIPPED + timedelta(days=2, hours=12)))) == 2.5
    assert kpi.transit_days(shipment(m(Status.IN_TRANSIT, at(4)))) is None
    backwards = ShipmentRecord(None, at(5), at(4), None)
    assert kpi.transit_days(backwards) is None


def test_created_cohort_counts_exceptions_and_returns_once_per_shipment() -> None:
    records = [
        shipment(m(Status.EXCEPTION, at(3)), m(Status.EXCEPTION, at(4), "exception.address_issue")),
        shipment(
            m(Status.RETURNING, at(4), "returning.refused"), m(Status.RETURNED, at(6), "returned.to_sender")
        ),
        shipment(m(Status.DELIVERED, at(5))),
        shipment(),
    ]
    assert count_created(records) == CreatedCounts(shipments=4, exceptions=1, returned=1)


def test_figures_give_null_where_nothing_is_measured() -> None:
    empty = figures("correios", CreatedCounts(), DeliveredCounts())
    assert empty.to_json() == {
        "key": "correios",
        "shipments": 0,
        "delivered": 0,
        "otif": None,
        "on_time_rate": None,
        "avg_transit_days": None,
        "first_attempt_rate": None,
        "redelivery_rate": None,
        "exception_rate": None,
        "returned_rate": None,
        "cost_per_delivery": None,
    }
    no_promise = figures(
        None, CreatedCounts(3, 0, 0), count_delivered([shipment(m(Status.DELIVERED, at(5)), promised=None)])
    )
    assert (no_promise.otif, no_promise.on_time_rate, no_promise.first_attempt_rate) == (None, None, 1.0)
    assert no_promise.exception_rate == 0.0


def test_figures_of_a_mixed_group() -> None:
    records = [
        shipment(m(Status.DELIVERED, at(5)), cost="10.00"),  # on time, first attempt
        shipment(
            m(Status.FAILED_ATTEMPT, at(5)), m(Status.DELIVERED, at(7)), cost="20.01"
        ),  # late, second try
        shipment(m(Status.DELIVERED, at(6)), promised=None),  # no promise, no cost
    ]
    f = figures("x", count_created(records), count_delivered(records))
    assert (f.shipments, f.delivered) == (3, 3)
    assert (f.on_time_rate, f.otif) == (0.5, 0.5)
    assert (f.first_attempt_rate, f.redelivery_rate) == (0.6667, 0.3333)
    assert f.cost_per_delivery == Money(amount=Decimal("15.00"), currency="BRL")  # 15.005 to the even cent
    assert f.to_json()["cost_per_delivery"] == {"amount": "15.00", "currency": "BRL"}
    assert f.avg_transit_days == 4.0  # (3 + 5 + 4) days from pickup / 3


def test_cost_per_delivery_is_null_when_currencies_mix() -> None:
    mixed = DeliveredCounts(delivered=2, costed=2, cost_total=Decimal(30), currencies=("BRL", "USD"))
    assert kpi.cost_per_delivery(mixed) is None
    assert kpi.cost_per_delivery(mixed._replace(currencies=("USD",))) == Money(
        amount=Decimal("15.00"), currency="USD"
    )


def test_merge_keys_joins_both_cohorts_and_fills_the_asked_keys() -> None:
    rows = merge_keys(
        {"b": CreatedCounts(2, 1, 0), None: CreatedCounts(1, 0, 0)},
        {"a": DeliveredCounts(delivered=1, first_attempt=1)},
        ["c"],
    )
    assert [(r.key, r.shipments, r.delivered) for r in rows] == [
        ("a", 0, 1),
        ("b", 2, 0),
        ("c", 0, 0),
        (None, 1, 0),
    ]


def test_window_defaults_to_the_last_90_days_and_is_bounded() -> None:
    today = date(2026, 11, 30)
    assert resolve_window(None, None, today) == KpiWindow(date(2026, 9, 2), today)
    assert resolve_window(None, date(2026, 3, 31), today).first == date(2026, 1, 1)
    assert resolve_window(date(2026, 11, 1), None, today) == KpiWindow(date(2026, 11, 1), today)
    window = KpiWindow(date(2026, 11, 1), date(2026, 11, 2))
    assert (window.start.isoformat(), window.end.isoformat()) == (
        "2026-11-01T00:00:00+00:00",
        "2026-11-03T00:00:00+00:00",
    )
    with pytest.raises(WindowError):
        resolve_window(date(2026, 11, 2), date(2026, 11, 1), today)
    with pytest.raises(WindowError):
        resolve_window(today - timedelta(days=MAX_DAYS), today, today)
    assert resolve_window(today - timedelta(days=MAX_DAYS - 1), today, today).first.year == 2024


def test_period_buckets_are_whole_calendar_periods_named_by_their_first_day() -> None:
    assert period_start(date(2026, 11, 5), "week") == date(2026, 11, 2)  # a Thursday -> its Monday
    assert period_start(date(2026, 11, 5), "month") == date(2026, 11, 1)
    window = KpiWindow(date(2026, 10, 28), date(2026, 11, 10))
    assert period_starts(window, "week") == [date(2026, 10, 26), date(2026, 11, 2), date(2026, 11, 9)]
    assert period_starts(window, "month") == [date(2026, 10, 1), date(2026, 11, 1)]
    assert len(period_starts(window, "day")) == 14
    year_end = KpiWindow(date(2026, 12, 15), date(2027, 1, 20))
    assert period_starts(year_end, "month") == [date(2026, 12, 1), date(2027, 1, 1)]


PURE_MODULES = ("definitions.py", "windows.py")


@pytest.mark.parametrize("name", PURE_MODULES)
def test_kpi_definitions_stay_pure(name: str) -> None:
    """The domain rule (CONVENTIONS 1) for the KPI package's pure modules, which live outside domain/."""
    path = Path(kpi.__file__).with_name(name)
    imported: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            imported.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module)
    allowed = ("rastro_events", "rastro_normalization.kpis.definitions", "rastro_normalization.kpis.windows")
    outside = {
        n for n in imported if n.split(".")[0] not in sys.stdlib_module_names and not n.startswith(allowed)
    }
    assert not outside, f"{name} imports {sorted(outside)}"
