"""The subscriptions API against the running service: tenant isolation, operator keys, CRUD and
validation (fixtures in ``conftest.py``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from rastro_kit.testing import wait_until
from rastro_notification.domain.signing import generate_secret

if TYPE_CHECKING:
    from conftest import Receiver, Service

pytestmark = pytest.mark.integration


async def test_another_tenant_sees_nothing(service: Service, receiver: Receiver) -> None:
    endpoint = receiver.endpoint()
    sub = await service.subscribe(endpoint)
    await service.publish(service.tracking(service.number()))
    await wait_until(lambda: endpoint.requests, message="delivery")
    [message] = await service.messages(sub["id"])
    base, other = f"/v1/subscriptions/{sub['id']}", service.auth(service.other_key)

    for method, path in [
        ("GET", base),
        ("PATCH", base),
        ("DELETE", base),
        ("GET", f"{base}/messages"),
        ("GET", f"{base}/attempts"),
        ("GET", f"{base}/messages/{message['id']}"),
        ("POST", f"{base}/messages/{message['id']}/resend"),
    ]:
        body = {"enabled": False} if method == "PATCH" else None
        response = await service.api.request(method, path, json=body, headers=other)
        assert response.status_code == 404, (method, path, response.text)
        assert response.headers["content-type"] == "application/problem+json"
    assert sub["id"] not in {
        s["id"] for s in (await service.get("/v1/subscriptions", service.other_key))["items"]
    }
    assert (
        await service.api.get(f"{base}?tenant={service.other_tenant}", headers=service.auth())
    ).status_code == 404

    # The other tenant's events never reach this tenant's subscription: once the other tenant's own
    # subscription has its message, this one would have had its message too (same transaction).
    theirs = receiver.endpoint()
    response = await service.api.post("/v1/subscriptions", json={"url": theirs.url}, headers=other)
    assert response.status_code == 201
    theirs.secret = response.json()["secret"]
    foreign = service.tracking(service.number(), tenant=service.other_tenant)
    await service.publish(foreign)
    await wait_until(lambda: theirs.requests, message="the other tenant's delivery")
    assert theirs.requests[0].verified
    assert [m["event_id"] for m in await service.messages(sub["id"])] == [message["event_id"]]
    assert len(endpoint.requests) == 1


async def test_an_operator_key_names_the_tenant(service: Service, receiver: Receiver) -> None:
    admin = {"authorization": f"Bearer {service.admin_key}"}
    body = {"url": receiver.endpoint().url, "event_types": ["*"]}
    response = await service.api.post("/v1/subscriptions", json=body, headers=admin)
    assert response.status_code == 422 and response.json()["type"].endswith("tenant-required")
    response = await service.api.post(
        f"/v1/subscriptions?tenant={service.other_tenant}", json=body, headers=admin
    )
    assert response.status_code == 201 and response.json()["tenant_id"] == service.other_tenant
    listed = (await service.api.get(f"/v1/subscriptions?tenant={service.other_tenant}", headers=admin)).json()
    assert response.json()["id"] in {s["id"] for s in listed["items"]}
    assert all("secret" not in s for s in listed["items"])


async def test_crud_and_validation(service: Service, receiver: Receiver) -> None:
    secret = generate_secret()
    sub = await service.subscribe(receiver.endpoint(), ["tracking.*"], secret=secret, enabled=False)
    assert sub["secret"] == secret and sub["enabled"] is False
    path = f"/v1/subscriptions/{sub['id']}"
    response = await service.api.patch(
        path, json={"event_types": ["eta.updated"], "description": None}, headers=service.auth()
    )
    assert response.status_code == 200
    assert (response.json()["event_types"], response.json()["description"]) == (["eta.updated"], None)

    for bad, field in [
        ({"url": "ftp://hooks.example.com/x"}, "url"),
        ({"url": "https://hooks.example.com/x", "event_types": ["tracking.deliverd"]}, "event_types"),
        ({"url": "https://hooks.example.com/x", "secret": "whsec_c2hvcnQ="}, "secret"),
    ]:
        response = await service.api.post("/v1/subscriptions", json=bad, headers=service.auth())
        assert response.status_code == 422, response.text
        assert response.json()["errors"][0]["field"] == field
    response = await service.api.patch(path, json={"secret": generate_secret()}, headers=service.auth())
    assert response.status_code == 422

    everything = [s["id"] for s in (await service.get("/v1/subscriptions?limit=200"))["items"]]
    paged, cursor = [], ""
    while cursor is not None:
        page = await service.get(f"/v1/subscriptions?limit=2{cursor and f'&cursor={cursor}'}")
        paged += [s["id"] for s in page["items"]]
        cursor = page["next_cursor"]
    assert paged == everything and sub["id"] in paged

    assert (await service.api.delete(path, headers=service.auth())).status_code == 204
    assert (await service.api.get(path, headers=service.auth())).status_code == 404
    assert (await service.api.get("/v1/subscriptions")).status_code == 401
