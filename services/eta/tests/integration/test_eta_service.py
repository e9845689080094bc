"""eta against the real broker and Postgres: learning from deliveries, publishing predictions only when
they change, learning a delivery once, keeping tenants apart, and the HTTP API (harness: conftest.py)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import pytest

from rastro_eta.domain.prediction import Prediction
from rastro_eta.domain.quantiles import nearest_rank
from rastro_events import Envelope, EtaPredicted, Lane, Status
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
    assert set(lanes) == {FULL_LANE, "correios/*/SP/RJ", "correios/*/*/*", "*/*/*/*"}
    for lane in lanes.values():
        assert lane["tenant"] == tenant
        assert (lane["sample_size"], lane["p50_days"], lane["p90_days"]) == (
            5, nearest_rank(TRANSIT, 0.5), nearest_rank(TRANSIT, 0.9),
        )  # fmt: skip
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
    assert predicted.model_version == want.model_version == "lane-quantile-v1.w200.m5"
    assert (envelope.subject, envelope.source) == (f"{tenant}/{tracking}", "/rastro/eta")
    await assert_api_shows(eta, tenant, tracking, envelope, want)

    # Out for delivery: same base time, same dates, so nothing new is published.
    out = eta.event(tenant, tracking, Status.OUT_FOR_DELIVERY, shipped_at + timedelta(days=1),
                    created_at=T0, shipped_at=shipped_at)  # fmt: skip
    await eta.publish(out)
    await eta.settled(out)
    assert len(await eta.topic.predictions(tenant, tracking)) == 2


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
    assert (basis["expected_days"], basis["promise_days"]) == (
        nearest_rank(TRANSIT, 0.5),
        nearest_rank(TRANSIT, 0.9),
    )


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
    assert lanes[FULL_LANE]["p50_days"] == 3.0
    learned = await eta.pool.fetchval("SELECT count(*) FROM lane_samples WHERE tenant_id = $1", tenant)
    assert learned == 1
    assert await eta.topic.predictions(tenant, tracking) == []
    assert (await eta.get(f"/v1/shipments/{tracking}/eta", tenant=tenant)).status_code == 404


async def test_one_tenant_s_deliveries_never_shape_another_s_prediction(eta: EtaHarness) -> None:
    teacher, other, tracking = eta.new_tenant(), eta.new_tenant(), "AA300000003BR"
    await eta.teach(teacher, [1.0] * 5)
    await eta.publish(eta.event(other, tracking, Status.IN_TRANSIT, T0, created_at=T0, shipped_at=T0))
    _, predicted = await nth_prediction(eta, other, tracking, 1)
    settings = eta.settings
    assert (predicted.sample_size, predicted.lane) == (0, Lane())
    assert predicted.expected_date == (T0 + timedelta(days=settings.default_transit_days)).date()
    assert predicted.promise_date == (T0 + timedelta(days=settings.default_promise_days)).date()
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
