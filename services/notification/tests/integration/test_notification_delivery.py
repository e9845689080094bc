"""Deliveries end to end within the service: real broker, real Postgres, real HTTP both ways.

Events go onto ``rastro.tracking.normalized.v1`` / ``rastro.eta.v1`` as normalization and eta publish
them; subscriptions are made through the API; deliveries land on a real receiver that verifies every
signature with the official ``standardwebhooks`` library (fixtures in ``conftest.py``).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pytest

from rastro_events import Status
from rastro_kit.testing import wait_until

if TYPE_CHECKING:
    from conftest import Receiver, Service

pytestmark = pytest.mark.integration


async def test_an_event_is_delivered_signed_and_verifies(service: Service, receiver: Receiver) -> None:
    endpoint = receiver.endpoint()
    sub = await service.subscribe(endpoint)
    assert sub["id"].startswith("sub_") and sub["secret"].startswith("whsec_")
    event = service.tracking(service.number())
    await service.publish(event)

    await wait_until(lambda: endpoint.requests, message="delivery")
    [request] = endpoint.requests
    assert request.verified
    body = json.loads(request.body)
    assert body["type"] == "tracking.delivered"
    assert datetime.fromisoformat(body["timestamp"]) == event.time
    assert body["data"]["tenant_id"] == service.tenant and body["data"]["event_id"] == event.id
    assert body["data"]["tracking_number"] == event.data["tracking_number"]
    assert body["data"]["location"]["city"] == "São Paulo"
    assert request.headers["content-type"] == "application/json"

    async def recorded() -> list[dict[str, Any]]:
        return [m for m in await service.messages(sub["id"]) if m["status"] == "delivered"]

    [message] = await wait_until(recorded, message="message marked delivered")
    assert (
        message["id"] == request.webhook_id and message["event_id"] == event.id and message["attempts"] == 1
    )
    [attempt] = await service.attempts(sub["id"])
    assert (attempt["status_code"], attempt["outcome"], attempt["response_excerpt"]) == (
        200,
        "delivered",
        "answered 200",
    )
    metrics = (await service.api.get("/metrics")).text
    assert 'rastro_webhook_attempts_total{outcome="delivered"}' in metrics
    assert "rastro_webhook_latency_seconds_count" in metrics


async def test_an_event_type_the_filter_excludes_is_not_delivered(
    service: Service, receiver: Receiver
) -> None:
    endpoint = receiver.endpoint()
    sub = await service.subscribe(endpoint, ["tracking.delivered", "eta.*"])
    shipment = service.number()
    # Same shipment and topic, so same partition: the excluded event is consumed before the delivery,
    # and had it made a message, per-shipment ordering would have sent it first.
    await service.publish(service.tracking(shipment, Status.IN_TRANSIT, "in_transit.in_route"))
    await service.publish(service.eta(shipment))  # another topic: no order relative to the others
    await service.publish(service.tracking(shipment))

    def types() -> list[str]:
        return sorted(json.loads(r.body)["type"] for r in endpoint.requests)

    await wait_until(lambda: {"eta.updated", "tracking.delivered"} <= set(types()), message="two deliveries")
    assert types() == ["eta.updated", "tracking.delivered"]
    assert all(r.verified for r in endpoint.requests)
    assert sorted(m["event_type"] for m in await service.messages(sub["id"])) == [
        "eta.updated",
        "tracking.delivered",
    ]


async def test_a_failing_receiver_gets_it_on_the_third_try_with_the_same_id(
    service: Service, receiver: Receiver
) -> None:
    endpoint = receiver.endpoint(500, 503)
    sub = await service.subscribe(endpoint)
    await service.publish(service.tracking(service.number()))

    await wait_until(lambda: len(endpoint.requests) >= 3, message="three attempts")

    async def three_recorded() -> list[dict[str, Any]]:
        found = await service.attempts(sub["id"])
        return found if len(found) == 3 else []

    recorded = list(reversed(await wait_until(three_recorded, message="attempts recorded")))
    assert len(endpoint.requests) == 3
    assert len({r.webhook_id for r in endpoint.requests}) == 1
    assert all(r.verified for r in endpoint.requests)
    assert [a["status_code"] for a in recorded] == [500, 503, 200]
    assert [a["outcome"] for a in recorded] == ["retry", "retry", "delivered"]
    assert [a["attempt_number"] for a in recorded] == [1, 2, 3]
    assert all(a["latency_ms"] > 0 and a["attempted_at"] for a in recorded)
    [message] = await service.messages(sub["id"])
    assert (message["status"], message["attempts"], message["id"]) == (
        "delivered",
        3,
        endpoint.requests[0].webhook_id,
    )


async def test_a_message_fails_when_the_schedule_is_used_up(service: Service, receiver: Receiver) -> None:
    endpoint = receiver.endpoint(then=500)
    sub = await service.subscribe(endpoint)
    await service.publish(service.tracking(service.number()))

    async def failed() -> list[dict[str, Any]]:
        return [m for m in await service.messages(sub["id"]) if m["status"] == "failed"]

    [message] = await wait_until(failed, message="message failed")
    assert message["attempts"] == 4 and message["last_error"].startswith("HTTP 500")
    assert len(endpoint.requests) == 4
    assert (await service.get(f"/v1/subscriptions/{sub['id']}"))["enabled"] is True


async def test_the_same_event_published_twice_makes_one_message(service: Service, receiver: Receiver) -> None:
    endpoint = receiver.endpoint()
    sub = await service.subscribe(endpoint)
    shipment = service.number()
    event = service.tracking(shipment, Status.IN_TRANSIT, "in_transit.in_route")
    await service.publish(event)
    await service.publish(event)
    marker = service.tracking(shipment)  # same key: consumed after both copies
    await service.publish(marker)

    await wait_until(lambda: any(marker.id in r.body.decode() for r in endpoint.requests), message="marker")
    assert [m["event_id"] for m in await service.messages(sub["id"])] == [marker.id, event.id]
    assert sum(event.id in r.body.decode() for r in endpoint.requests) == 1


async def test_410_gone_disables_the_subscription(service: Service, receiver: Receiver) -> None:
    endpoint = receiver.endpoint(410)
    sub = await service.subscribe(endpoint)
    await service.publish(service.tracking(service.number()))

    async def disabled() -> dict[str, Any] | None:
        shown: dict[str, Any] = await service.get(f"/v1/subscriptions/{sub['id']}")
        return None if shown["enabled"] else shown

    shown = await wait_until(disabled, message="subscription disabled")
    assert shown["disabled_reason"].startswith("endpoint_gone")
    [message] = await service.messages(sub["id"])
    assert message["status"] == "failed" and message["attempts"] == 1
    assert len(endpoint.requests) == 1

    response = await service.api.patch(
        f"/v1/subscriptions/{sub['id']}", json={"enabled": True}, headers=service.auth()
    )
    assert response.status_code == 200 and response.json()["disabled_reason"] is None


async def test_events_of_one_shipment_arrive_in_order_despite_a_retry(
    service: Service, receiver: Receiver
) -> None:
    endpoint = receiver.endpoint(500)
    await service.subscribe(endpoint)
    shipment = service.number()
    steps = [
        (Status.IN_TRANSIT, "in_transit.in_route"),
        (Status.OUT_FOR_DELIVERY, "out_for_delivery.with_courier"),
        (Status.DELIVERED, "delivered.signed"),
    ]
    for status, substatus in steps:
        await service.publish(service.tracking(shipment, status, substatus))

    await wait_until(lambda: len(endpoint.requests) >= 4, message="four requests")
    types = [json.loads(r.body)["type"] for r in endpoint.requests]
    assert types == [
        "tracking.in_transit",
        "tracking.in_transit",
        "tracking.out_for_delivery",
        "tracking.delivered",
    ]


async def test_a_hanging_endpoint_does_not_delay_a_healthy_one(service: Service, receiver: Receiver) -> None:
    stuck, healthy = receiver.endpoint(then="hang"), receiver.endpoint()
    await service.subscribe(stuck)
    await service.subscribe(healthy)
    shipments = [service.number() for _ in range(8)]
    for shipment in shipments:
        await service.publish(service.tracking(shipment))

    await wait_until(lambda: len(healthy.requests) == len(shipments), message="healthy endpoint served")
    await wait_until(lambda: len(stuck.requests) == service.per_endpoint, message="stuck endpoint at its cap")
    assert len(stuck.requests) == service.per_endpoint  # never more in flight than the per-endpoint cap
    stuck.open_gate()
    await wait_until(lambda: len(stuck.requests) == len(shipments), message="stuck endpoint catches up")


async def test_a_message_can_be_resent_with_the_same_webhook_id(service: Service, receiver: Receiver) -> None:
    endpoint = receiver.endpoint()
    sub = await service.subscribe(endpoint)
    await service.publish(service.tracking(service.number()))

    async def delivered() -> list[dict[str, Any]]:
        return [m for m in await service.messages(sub["id"]) if m["status"] == "delivered"]

    [message] = await wait_until(delivered, message="first delivery")
    response = await service.api.post(
        f"/v1/subscriptions/{sub['id']}/messages/{message['id']}/resend", headers=service.auth()
    )
    assert response.status_code == 202, response.text
    await wait_until(lambda: len(endpoint.requests) == 2, message="resent")
    assert {r.webhook_id for r in endpoint.requests} == {message["id"]}
    assert endpoint.requests[0].body == endpoint.requests[1].body and endpoint.requests[1].verified
