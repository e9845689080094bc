"""eta against the real broker and Postgres: learning from deliveries, publishing predictions only when
they change, learning a delivery once, keeping tenants apart, the HTTP API, and the last mile: own-fleet
positions on ``rastro.positions.v1`` become last-mile ETAs (minutes away, falling as the vehicle
approaches, throttled) shown in front of the day-level prediction, while positions that are older, for
an unknown shipment or after delivery change nothing (harness: conftest.py). One module, so one
consumer-group join for all of them."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import pytest

from rastro_eta.domain.lanes import LaneKey
from rastro_eta.domain.prediction import Prediction, prediction_changed
from rastro_eta.evaluation import OnlineModel
from rastro_eta.olist import read_orders, shipment_events
from rastro_events import (
    Envelope,
    EtaPredicted,
    Lane,
    ShipmentPosition,
    Status,
    encode_event,
    headers_for,
    new_event,
)
from rastro_events.topics import POSITIONS
from rastro_kit.testing import publish_api_key, wait_until

if TYPE_CHECKING:
    from conftest import EtaHarness  # the fixture's type, for readers and mypy only

pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone(timedelta(hours=-3)))
TRANSIT = [2.0, 3.0, 3.5, 4.25, 6.0]
FULL_LANE = "correios/sedex/SP/RJ"


async def nth_prediction(
    eta: EtaHarness, tenant: str, tracking: str, n: int
) -> tuple[Envelope, EtaPredicted]:
    async def enough() -> list[tuple[Envelope, EtaPredicted]]:
        found = await eta.topic.predictions(tenant, tracking)
        return found if len(found) >= n else []

    return (await wait_until(enough, message=f"prediction {n} of {tracking}"))[n - 1]


async def test_deliveries_teach_every_lane_of_the_chain(eta: EtaHarness) -> None:
    tenant = eta.new_tenant()
    await eta.teach(tenant, TRANSIT)
    lanes = await eta.lanes(tenant)
    assert set(lanes) == {FULL_LANE, "correios/*/SP/RJ", "correios/*/*/*", "*/*/SP/RJ", "*/*/*/RJ",
                          "*/*/SP/*", "*/*/*/*"}  # fmt: skip
    for lane in lanes.values():
        assert lane["tenant"] == tenant
        assert lane["sample_size"] == 5
        assert 0 < lane["p50_days"] <= lane["p90_days"]
        assert lane["segments"]["shipped"]["sample_size"] == 5
    assert lanes[FULL_LANE]["lane"] == {"carrier": "correios", "service": "sedex", "origin": "SP",
                                        "destination": "RJ"}  # fmt: skip


async def test_an_open_shipment_gets_an_eta_from_its_lane_and_a_new_one_only_when_it_changes(
    eta: EtaHarness,
) -> None:
    tenant, tracking = eta.new_tenant(), "AA100000001BR"
    await eta.teach(tenant, TRANSIT)
    created = eta.event(tenant, tracking, Status.INFO_RECEIVED, T0, created_at=T0)
    await eta.publish(created)
    _, first = await nth_prediction(eta, tenant, tracking, 1)
    want = eta.domain_prediction([created], TRANSIT)
    assert (first.expected_date, first.promise_date, first.milestone) == (
        want.expected_date, want.promise_date, Status.INFO_RECEIVED,
    )  # fmt: skip

    shipped_at = T0 + timedelta(days=2, hours=3)  # pickup moves the base time: new dates
    picked_up = eta.event(
        tenant, tracking, Status.IN_TRANSIT, shipped_at, created_at=T0, shipped_at=shipped_at
    )
    await eta.publish(picked_up)
    envelope, predicted = await nth_prediction(eta, tenant, tracking, 2)
    want = eta.domain_prediction([created, picked_up], TRANSIT)
    assert want.started_at == shipped_at
    assert (predicted.expected_date, predicted.promise_date) == (want.expected_date, want.promise_date)
    assert predicted.lane == Lane(carrier="correios", service="sedex", origin="SP", destination="RJ")
    assert (predicted.sample_size, predicted.milestone) == (5, Status.IN_TRANSIT)
    assert predicted.model_version == want.model_version
    assert (predicted.confidence, predicted.basis_milestone) == (want.confidence, "shipped")
    assert (envelope.subject, envelope.source) == (f"{tenant}/{tracking}", "/rastro/eta")
    await assert_api_shows(eta, tenant, tracking, envelope, want)

    # A repeated pickup scan: same base time, same dates, so nothing new is published.
    scan = eta.event(tenant, tracking, Status.IN_TRANSIT, shipped_at + timedelta(hours=5),
                     created_at=T0, shipped_at=shipped_at)  # fmt: skip
    await eta.publish(scan)
    await eta.settled(scan)
    assert len(await eta.topic.predictions(tenant, tracking)) == 2

    # Out for delivery: a new milestone, a new base; nothing learned from it yet, so today/tomorrow.
    out = eta.event(tenant, tracking, Status.OUT_FOR_DELIVERY, shipped_at + timedelta(days=1),
                    created_at=T0, shipped_at=shipped_at)  # fmt: skip
    await eta.publish(out)
    _, last = await nth_prediction(eta, tenant, tracking, 3)
    want = eta.domain_prediction([created, picked_up, scan, out], TRANSIT)
    assert (last.expected_date, last.promise_date) == (want.expected_date, want.promise_date)
    assert (last.basis_milestone, last.milestone) == ("out_for_delivery", Status.OUT_FOR_DELIVERY)
    assert last.promise_date <= predicted.promise_date

    # The history keeps all three published predictions, newest first; the repeated scan added none.
    await wait_until(lambda: _history_size(eta, tenant, tracking, 3), timeout=20, message="3 in history")
    history = (await eta.get(f"/v1/shipments/{tracking}/eta/history", tenant=tenant)).json()["items"]
    published = await eta.topic.predictions(tenant, tracking)
    assert [h["event_id"] for h in history] == [e.id for e, _ in reversed(published)]
    assert [h["milestone"] for h in history] == ["out_for_delivery", "in_transit", "info_received"]
    assert history[1]["promise_date"] == predicted.promise_date.isoformat()
    other = await eta.get(f"/v1/shipments/{tracking}/eta/history", tenant=eta.new_tenant())
    assert other.status_code == 404


async def _history_size(eta: EtaHarness, tenant: str, tracking: str, size: int) -> bool:
    response = await eta.get(f"/v1/shipments/{tracking}/eta/history", tenant=tenant)
    return response.status_code == 200 and len(response.json()["items"]) == size


async def assert_api_shows(
    eta: EtaHarness, tenant: str, tracking: str, envelope: Envelope, want: Prediction
) -> None:
    response = await eta.get(f"/v1/shipments/{tracking}/eta", tenant=tenant)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["tenant"], body["tracking_number"], body["event_id"]) == (tenant, tracking, envelope.id)
    assert (body["expected_date"], body["promise_date"], body["milestone"]) == (
        want.expected_date.isoformat(), want.promise_date.isoformat(), "in_transit",
    )  # fmt: skip
    basis = body["basis"]
    assert (basis["lane_key"], basis["level"], basis["source"]) == (
        FULL_LANE,
        "carrier_service_route",
        "lane",
    )
    assert (basis["sample_size"], basis["model_version"]) == (5, want.model_version)
    assert (basis["expected_days"], basis["promise_days"]) == (want.expected_days, want.promise_days)


async def test_a_delivery_seen_twice_is_learned_once_and_a_delivered_shipment_gets_no_eta(
    eta: EtaHarness,
) -> None:
    tenant, tracking = eta.new_tenant(), "AA200000002BR"
    shipped = T0 - timedelta(days=5)
    delivered_at = shipped + timedelta(days=3)
    fields: dict[str, Any] = {"created_at": shipped, "shipped_at": shipped, "delivered_at": delivered_at}
    delivered = eta.event(tenant, tracking, Status.DELIVERED, delivered_at, **fields)
    again_new_id = eta.event(tenant, tracking, Status.DELIVERED, delivered_at + timedelta(hours=1), **fields)
    # a return after delivery, later on the same key: once it is handled, so are the ones before it
    returning = eta.event(tenant, tracking, Status.RETURNING, delivered_at + timedelta(days=1), **fields)
    await eta.publish(delivered, delivered, again_new_id, returning)
    await eta.settled(delivered, again_new_id, returning)

    lanes = await eta.lanes(tenant)
    assert {key: lane["sample_size"] for key, lane in lanes.items()} == dict.fromkeys(lanes, 1)
    assert lanes[FULL_LANE]["sample_size"] == 1
    learned = await eta.pool.fetchval("SELECT count(*) FROM lane_samples WHERE tenant_id = $1", tenant)
    assert learned == 1
    assert await eta.topic.predictions(tenant, tracking) == []
    assert (await eta.get(f"/v1/shipments/{tracking}/eta", tenant=tenant)).status_code == 404


async def test_one_tenant_s_deliveries_never_shape_another_s_prediction(eta: EtaHarness) -> None:
    teacher, other, tracking = eta.new_tenant(), eta.new_tenant(), "AA300000003BR"
    await eta.teach(teacher, [1.0] * 5)
    started = eta.event(other, tracking, Status.IN_TRANSIT, T0, created_at=T0, shipped_at=T0)
    await eta.publish(started)
    _, predicted = await nth_prediction(eta, other, tracking, 1)
    want = eta.domain_prediction([started], [])
    assert (predicted.sample_size, predicted.lane, predicted.confidence) == (0, Lane(), "low")
    assert (predicted.expected_date, predicted.promise_date) == (want.expected_date, want.promise_date)
    assert (await eta.lanes(other)) == {}
    body = (await eta.get(f"/v1/shipments/{tracking}/eta", tenant=other)).json()
    assert (body["basis"]["source"], body["basis"]["lane_key"]) == ("default", "*/*/*/*")


async def test_the_api_is_tenant_scoped_and_speaks_problem_json(eta: EtaHarness) -> None:
    tenant, tracking = eta.new_tenant(), "AA400000004BR"
    started = eta.event(tenant, tracking, Status.IN_TRANSIT, T0, created_at=T0, shipped_at=T0)
    await eta.publish(started)
    await eta.settled(started)
    own, stranger, writer = [
        await publish_api_key(eta.bootstrap, owner, scopes, idempotence=eta.idempotence)
        for owner, scopes in ((tenant, ["shipments:read"]), (eta.new_tenant(), ["shipments:read"]),
                              (tenant, ["events:write"]))
    ]  # fmt: skip
    path = f"/v1/shipments/{tracking}/eta"
    # each key reaches eta through rastro.auth.keys.v1; until then it is unknown (401)
    await wait_until(lambda: eta.answers(path, own, 200), message="tenant key known")
    await wait_until(lambda: eta.answers(path, stranger, 404), message="other tenant's key known")
    await wait_until(lambda: eta.answers(path, writer, 403), message="key without shipments:read known")
    assert (await eta.get(path, key=own, tenant=tenant)).json()["tenant"] == tenant
    assert (await eta.get(path)).json()["tenant"] == tenant  # the operator, without ?tenant=: unambiguous

    cases = [
        (await eta.get(path, key=None), 401),
        (await eta.get(path, key=own, tenant=eta.new_tenant()), 404),
        (await eta.get("/v1/shipments/NOPE0000BR/eta", tenant=tenant), 404),
        (await eta.get("/v1/eta/lanes", key="rk_test_not-a-key"), 401),
    ]
    for response, status in cases:
        assert response.status_code == status, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["status"] == status

    # the same tracking number in a second tenant: the operator must now say which one
    twin = eta.event(eta.new_tenant(), tracking, Status.IN_TRANSIT, T0, created_at=T0, shipped_at=T0)
    await eta.publish(twin)
    await eta.settled(twin)
    ambiguous = await eta.get(path)
    assert ambiguous.status_code == 409, ambiguous.text
    assert sorted(ambiguous.json()["tenants"]) == sorted([tenant, twin.tenantid])


async def test_kpis_compare_each_delivery_with_the_prediction_in_force(eta: EtaHarness) -> None:
    tenant, tracking = eta.new_tenant(), "AA500000005BR"
    created = eta.event(tenant, tracking, Status.INFO_RECEIVED, T0, created_at=T0)
    await eta.publish(created)
    _, first = await nth_prediction(eta, tenant, tracking, 1)
    delivered_at = datetime.combine(first.promise_date, datetime.min.time(), tzinfo=T0.tzinfo) + timedelta(
        hours=12
    )
    delivered = eta.event(tenant, tracking, Status.DELIVERED, delivered_at, created_at=T0,
                          delivered_at=delivered_at)  # fmt: skip
    await eta.publish(delivered, delivered)  # a re-delivered event is learned and counted once
    await eta.settled(created, delivered)
    response = await eta.get("/v1/eta/kpis", tenant=tenant, group_by="carrier")
    assert response.status_code == 200, response.text
    (item,) = response.json()["items"]
    assert (item["key"], item["deliveries"], item["on_time_share"]) == ("correios", 1, 1.0)
    late = (first.promise_date - first.expected_date).days > 1
    assert item["eta_precision"] == (0.0 if late else 1.0)
    assert (await eta.lanes(tenant))["*/*/*/*"]["sample_size"] == 1


async def test_live_predictions_for_real_olist_orders_equal_the_evaluator_s(
    eta: EtaHarness, olist_dir: Path
) -> None:
    """One code path: real orders through Kafka and Postgres give the dates ``rastro eta evaluate``
    computes in memory for the same history (learned deliveries first, then open orders)."""
    tenant = eta.new_tenant()
    zone = eta.settings.prediction_parameters().clock.zone
    assert zone is not None
    orders = [o for o in read_orders(olist_dir, zone) if o.origin is not None and o.delivered_at is not None]
    cut = datetime(2018, 1, 1, tzinfo=zone)
    history = sorted((o for o in orders if cut - timedelta(days=60) <= o.purchased_at < cut),
                     key=lambda o: o.purchased_at)[:80]  # fmt: skip
    open_orders = [o for o in orders if o.purchased_at >= cut and o.valid_shipped_at][:8]

    model = OnlineModel(eta.settings.prediction_parameters())
    deliveries = [shipment_events(o)[-1] for o in history]  # the last event carries every milestone
    for event in deliveries:
        model.observe(event)
    await eta.publish(*[new_event(e, tenant_id=tenant, source="/rastro/normalization", time=e.occurred_at)
                        for e in deliveries])  # fmt: skip
    learned = model.states[LaneKey.global_lane()].deliveries

    async def all_learned() -> bool:
        return bool((await eta.lanes(tenant)).get("*/*/*/*", {}).get("sample_size") == learned)

    await wait_until(all_learned, message=f"{learned} Olist deliveries learned")

    want: dict[str, list[tuple[date, date]]] = {}
    envelopes = []
    for order in open_orders:
        published: list[tuple[date, date]] = []
        previous = None
        for event in shipment_events(order)[:2]:  # created, handed over: still open
            prediction = model.observe(event)
            assert prediction is not None
            if prediction_changed(previous, prediction):
                published.append((prediction.expected_date, prediction.promise_date))
                previous = prediction
            envelopes.append(new_event(event, tenant_id=tenant, source="/rastro/normalization",
                                       time=event.occurred_at))  # fmt: skip
        want[order.order_id] = published
    await eta.publish(*envelopes)
    await eta.settled(*envelopes)
    for tracking, dates in want.items():
        got = [(p.expected_date, p.promise_date) for _, p in await eta.topic.predictions(tenant, tracking)]
        assert got == dates, tracking
    assert any(len(d) == 2 for d in want.values())  # the hand-over re-predicted at least one


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
