"""The evaluator's pieces: the in-memory model learns a delivery once, and the error summary."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from rastro_eta.domain.clock import CalendarClock
from rastro_eta.domain.lanes import LaneKey
from rastro_eta.domain.prediction import ModelParameters
from rastro_eta.evaluation import OnlineModel, summarize
from rastro_eta.olist import OlistOrder, shipment_events
from rastro_events import Location, Status

pytestmark = pytest.mark.unit

BRT = timezone(timedelta(hours=-3))
T0 = datetime(2018, 1, 8, 10, tzinfo=BRT)


def order(n: int, handover: float | None = 1.0, delivered: float | None = 5.0) -> OlistOrder:
    start = T0 + timedelta(days=n)
    return OlistOrder(
        order_id=f"o{n}", status="delivered", purchased_at=start,
        shipped_at=start + timedelta(days=handover) if handover is not None else None,
        delivered_at=start + timedelta(days=delivered) if delivered is not None else None,
        estimated_date=(start + timedelta(days=20)).date(),
        origin=Location(state="SP", postal_code="13023"),
        destination=Location(state="RJ", postal_code="24020"),
    )  # fmt: skip


def test_an_order_becomes_the_events_normalization_would_publish() -> None:
    created, shipped, delivered = shipment_events(order(0))
    assert (created.new_status, shipped.new_status, delivered.new_status) == (
        Status.INFO_RECEIVED, Status.IN_TRANSIT, Status.DELIVERED,
    )  # fmt: skip
    assert delivered.shipped_at == shipped.occurred_at and delivered.promised_date == date(2018, 1, 28)
    assert [e.new_status for e in shipment_events(order(0, handover=9.0))] == [
        Status.INFO_RECEIVED, Status.DELIVERED,  # a hand-over after the delivery is not believed
    ]  # fmt: skip


def test_the_model_learns_a_delivery_once_and_predicts_from_each_milestone() -> None:
    model = OnlineModel(ModelParameters(half_life_days=None, clock=CalendarClock(BRT)))
    for n in range(6):
        for event in shipment_events(order(n)):
            model.observe(event)
    model.observe(shipment_events(order(5))[-1])  # the same delivery again
    assert model.states[LaneKey.global_lane()].deliveries == 6
    created, shipped, _ = shipment_events(order(10, handover=2.0))
    at_purchase = model.observe(created)
    at_handover = model.observe(shipped)
    assert at_purchase is not None and at_handover is not None
    assert at_purchase.lane.text == "*/*/SP/RJ:240"
    assert at_purchase.expected_days == pytest.approx(5.0, abs=0.25)
    assert at_handover.expected_days == pytest.approx(4.0, abs=0.25)
    assert at_handover.expected_date == (T0 + timedelta(days=16)).date()


def test_summary_of_errors() -> None:
    figures = summarize([-2, 0, 1, 3, 10])
    assert figures["mae_days"] == pytest.approx(3.2)
    assert (figures["median_abs_days"], figures["p90_abs_days"]) == (2.0, 10.0)
    assert (figures["on_time_share"], figures["within_1_day_share"], figures["within_3_days_share"]) == (
        0.4, 0.4, 0.8,
    )  # fmt: skip
    assert figures["bias_days"] == pytest.approx(2.4)
    assert summarize([]) == {"n": 0}
