"""The last mile against the real broker and Postgres: own-fleet positions on ``rastro.positions.v1``
become last-mile ETAs on ``rastro.eta.v1`` (minutes away, falling as the vehicle approaches, throttled),
the read API shows them in front of the day-level prediction, and positions that are older, for an
unknown shipment or after delivery change nothing (harness: conftest.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import pytest

from rastro_events import (
    Envelope,
    EtaPredicted,
    ShipmentPosition,
    Status,
    encode_event,
    headers_for,
    new_event,
)
from rastro_events.topics import POSITIONS

if TYPE_CHECKING:
    from conftest import EtaHarness  # the fixture's type, for readers and mypy only

pytestmark = pytest.mark.integration

SAO_PAULO = ZoneInfo("America/Sao_Paulo")


def position_event(tenant: str, tracking: str, at: datetime, **fields: Any) -> Envelope:
    """A ``ShipmentPosition`` as the geofence processor publishes it: a van at 30 km/h on its route."""
    values: dict[str, Any] = {"vehicle_id": "VAN-7", "latitude": -22.9, "longitude": -43.1, "speed_kmh": 30.0}
    payload = ShipmentPosition(tracking_number=tracking, recorded_at=at, **(values | fields))
    return new_event(payload, tenant_id=tenant, source="/rastro/normalization", time=at)


async def publish_positions(eta: EtaHarness, *envelopes: Envelope) -> None:
    for e in envelopes:
        await eta.producer.send_and_wait(
            POSITIONS, encode_event(e), key=e.subject.encode(), headers=headers_for(e)
        )


def last_mile_etas(eta: EtaHarness, tenant: str, tracking: str) -> list[tuple[str, EtaPredicted]]:
    """The last-mile ETAs of a shipment read from ``rastro.eta.v1`` (call after ``settled``), with ids."""
    return [(e.id, p) for e, p in eta.topic.read(tenant, tracking) if p.lane_level == "last_mile"]


async def shipment_eta(eta: EtaHarness, tenant: str, tracking: str) -> dict[str, Any]:
    response = await eta.get(f"/v1/shipments/{tracking}/eta", tenant=tenant)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_positions_become_last_mile_etas_until_delivery(eta: EtaHarness) -> None:
    tenant, tracking = eta.new_tenant(), "FLEET0000001BR"
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    minute = timedelta(minutes=1)
    fleet: dict[str, Any] = {"carrier": "frota", "created_at": t0 - timedelta(days=1), "shipped_at": t0}
    out = eta.event(tenant, tracking, Status.OUT_FOR_DELIVERY, t0, **fleet)
    stranger = position_event(tenant, "NOSUCH0001BR", t0 + minute, route_remaining_m=3_000)
    await eta.publish(out)
    await publish_positions(eta, stranger)
    _t = __import__("time").monotonic()
    await eta.settled(out, stranger)
    print("settled", round(__import__("time").monotonic() - _t, 2))
    assert len(eta.topic.read(tenant, tracking)) == 1  # the day-level prediction
    assert eta.topic.read(tenant, "NOSUCH0001BR") == []  # a position of an unknown shipment: ignored

    # 30 km/h, +5 min at the door: 12 km → 29 min, 9 km → 23, 8 km → 21 (arrival moved < 2 min:
    # throttled), 4 km → 13; then a position older than the newest one (1 km, would move it): ignored.
    drive = [position_event(tenant, tracking, t0 + n * minute, route_remaining_m=m)
             for n, m in ((1, 12_000), (3, 9_000), (5, 8_000), (7, 4_000))]  # fmt: skip
    older = position_event(tenant, tracking, t0 + 4 * minute, route_remaining_m=1_000)
    await publish_positions(eta, *drive, older)
    _t = __import__("time").monotonic()
    await eta.settled(*drive, older)
    print("settled", round(__import__("time").monotonic() - _t, 2))
    etas = [p for _, p in last_mile_etas(eta, tenant, tracking)]
    assert [p.remaining_m for p in etas] == [12_000, 9_000, 4_000]
    assert [p.expected_at for p in etas] == [t0 + n * minute for n in (30, 26, 20)]  # falling
    for p in etas:
        assert p.expected_at is not None and p.expected_at - t0 < timedelta(hours=1)  # minutes, not days
        assert p.expected_date == p.expected_at.astimezone(SAO_PAULO).date()
        assert (p.milestone, p.basis_milestone, p.lane.carrier) == (
            Status.OUT_FOR_DELIVERY, "out_for_delivery", "frota",
        )  # fmt: skip
        assert p.model_version.startswith("last-mile-1")
    assert [p.sample_size for p in etas] == [1, 2, 4]  # positions seen

    # A later scan of the shipment (a day-level re-prediction, if its dates moved) does not hide the
    # fresher last-mile ETA in the read API.
    scan = eta.event(tenant, tracking, Status.OUT_FOR_DELIVERY, t0 + 8 * minute, **fleet)
    await eta.publish(scan)
    _t = __import__("time").monotonic()
    await eta.settled(scan)
    print("settled", round(__import__("time").monotonic() - _t, 2))
    body = await shipment_eta(eta, tenant, tracking)
    last_id, last = last_mile_etas(eta, tenant, tracking)[-1]
    assert (body["event_id"], datetime.fromisoformat(body["expected_at"])) == (last_id, last.expected_at)
    assert (body["remaining_m"], body["last_mile"]["positions_seen"]) == (4_000, 4)
    assert 0 <= body["minutes_remaining"] <= 20
    assert body["expected_date"] == last.expected_date.isoformat()
    assert body["basis"]["milestone"] == "out_for_delivery"  # the day-level basis stays beneath

    # Inside the destination's geofence: only the handling time is left.
    inside = position_event(tenant, tracking, t0 + 9 * minute, route_remaining_m=0, inside_destination=True)
    await publish_positions(eta, inside)
    _t = __import__("time").monotonic()
    await eta.settled(inside)
    print("settled", round(__import__("time").monotonic() - _t, 2))
    _, final = last_mile_etas(eta, tenant, tracking)[-1]
    assert (final.remaining_m, final.expected_at) == (0, t0 + 14 * minute)

    # Delivered: no more last-mile ETAs, and the API is back to the day-level prediction.
    delivered = eta.event(tenant, tracking, Status.DELIVERED, t0 + 12 * minute, **fleet)
    await eta.publish(delivered)
    _t = __import__("time").monotonic()
    await eta.settled(delivered)
    print("settled", round(__import__("time").monotonic() - _t, 2))
    after = position_event(tenant, tracking, t0 + 13 * minute, route_remaining_m=5_000)
    await publish_positions(eta, after)
    _t = __import__("time").monotonic()
    await eta.settled(after)
    print("settled", round(__import__("time").monotonic() - _t, 2))
    assert len(last_mile_etas(eta, tenant, tracking)) == 4
    body = await shipment_eta(eta, tenant, tracking)
    assert (body["last_mile"], body["expected_at"], body["remaining_m"]) == (None, None, None)
