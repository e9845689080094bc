"""The issue's acceptance, end to end: five services as separate processes, real broker, real
Postgres, real HTTP through the gateway, and a receiver verifying every webhook with `standardwebhooks`."""

from __future__ import annotations

import secrets
from typing import Any

import httpx
import pytest

from rastro_kit.testing import wait_until
from tests.e2e.stack import Receiver, Stack, until_known_everywhere

pytestmark = pytest.mark.e2e
SHIPMENTS = 150  # 300 events in 3 requests; normalization is killed after the second


def event(number: str, code: str, at: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "tracking.event",
        "carrier": "correios",
        "tracking_number": number,
        "status_code": code,
        "occurred_at": at,
        "location": {"city": "São Paulo", "state": "SP", "country": "BR"},
        **extra,
    }


@pytest.fixture(scope="module")
async def tenant(e2e_stack: Stack, gateway: str, receiver: tuple[Receiver, str]) -> dict[str, Any]:
    hook, hook_url = receiver
    name = f"e2e{secrets.token_hex(3)}"
    key = await e2e_stack.create_tenant(name)
    async with httpx.AsyncClient(base_url=gateway, timeout=30) as client:
        await until_known_everywhere(client, key)
        r = await client.post(
            "/v1/subscriptions",
            headers={"Authorization": f"Bearer {key}"},
            json={"url": hook_url, "event_types": ["*"], "description": "e2e receiver"},
        )
        assert r.status_code == 201, r.text
        assert r.json()["secret"].startswith("whsec_")
        hook.secret = r.json()["secret"]
    return {"name": name, "key": key, "auth": {"Authorization": f"Bearer {key}"}}


async def test_tour_posted_delivered_webhooks_idempotency_and_dead_letter(
    gateway: str,
    tenant: dict[str, Any],
    receiver: tuple[Receiver, str],
) -> None:
    hook, _ = receiver
    number = "AA123456785BR"
    auth = tenant["auth"]
    async with httpx.AsyncClient(base_url=gateway, timeout=30) as client:
        posted = event(number, "PO-01", "2026-11-20T09:00:00-03:00")
        first = await client.post("/v1/events", json=posted, headers=auth | {"Idempotency-Key": "tour-1"})
        assert first.status_code == 202, first.text
        r = await client.post(
            "/v1/events", json=event(number, "BDE-01", "2026-11-23T14:05:11-03:00"), headers=auth
        )
        assert r.status_code == 202, r.text

        async def delivered() -> dict[str, Any] | None:
            r = await client.get(f"/v1/shipments/{number}", headers=auth)
            body = r.json() if r.status_code == 200 else None
            return body if body and body["status"] == "delivered" else None

        shipment = await wait_until(delivered, timeout=30, message="shipment delivered")
        assert len(shipment["timeline"]) == 2
        assert [e["status_code"] for e in shipment["timeline"]] == ["PO-01", "BDE-01"]

        hooks = await wait_until(
            lambda: len(hook.events_for(number)) >= 2 and hook.events_for(number),
            timeout=30,
            message="two webhooks",
        )
        assert sorted(h["type"] for h in hooks) == ["tracking.delivered", "tracking.in_transit"]
        assert hook.rejected == 0

        again = await client.post("/v1/events", json=posted, headers=auth | {"Idempotency-Key": "tour-1"})
        assert again.status_code == 202 and again.json() == first.json()

        bad = await client.post(
            "/v1/events", json=event("ZZ000000000BR", "ZZZ-99", "2026-11-23T10:00:00-03:00"), headers=auth
        )
        assert bad.status_code == 202
        bad_id = bad.json()["events"][0]["id"]

        async def dead_letter() -> dict[str, Any] | None:
            r = await client.get("/v1/dead-letters", params={"reason": "unmapped_carrier_code"}, headers=auth)
            items = r.json()["items"] if r.status_code == 200 else []
            return next((i for i in items if i.get("event_id") == bad_id), None)

        dead = await wait_until(dead_letter, timeout=30, message="dead letter listed")
        assert dead["reason"] == "unmapped_carrier_code" and dead["service"] == "normalization"

        # The replayed idempotent request changed nothing: still two timeline entries, two webhooks.
        r = await client.get(f"/v1/shipments/{number}", headers=auth)
        assert len(r.json()["timeline"]) == 2
        assert len(hook.events_for(number)) == 2


async def test_sigkill_during_a_burst_loses_and_duplicates_nothing(
    e2e_stack: Stack,
    gateway: str,
    tenant: dict[str, Any],
    receiver: tuple[Receiver, str],
) -> None:
    hook, _ = receiver
    auth = tenant["auth"]
    numbers = [f"KL{i:09d}BR" for i in range(SHIPMENTS)]
    batches = [
        [event(n, "PO-01", "2026-11-20T09:00:00-03:00") for n in numbers[i : i + 50]]
        + [event(n, "BDE-01", "2026-11-22T15:00:00-03:00") for n in numbers[i : i + 50]]
        for i in range(0, SHIPMENTS, 50)
    ]
    normalization = e2e_stack.services["normalization"]
    async with httpx.AsyncClient(base_url=gateway, timeout=60) as client:
        for i, batch in enumerate(batches):
            r = await client.post("/v1/events", json={"events": batch}, headers=auth)
            assert r.status_code == 202, r.text
            if i == 1:
                normalization.kill()  # mid-burst, while it has work in flight
        normalization.start()
        await e2e_stack.wait_ready("normalization")

        async def all_delivered() -> bool:
            r = await client.get("/v1/shipments", params={"status": "delivered", "limit": 500}, headers=auth)
            count, page = 0, r.json()
            while True:
                count += sum(1 for s in page["items"] if s["tracking_number"].startswith("KL"))
                if not page["next_cursor"]:
                    return count == SHIPMENTS
                page = (
                    await client.get(
                        "/v1/shipments",
                        params={"status": "delivered", "limit": 500, "cursor": page["next_cursor"]},
                        headers=auth,
                    )
                ).json()

        await wait_until(all_delivered, timeout=180, interval=1, message=f"{SHIPMENTS} shipments delivered")

    def burst_hooks() -> list[dict[str, Any]]:
        return [
            b
            for b in hook.bodies.values()
            if b["type"].startswith("tracking.") and b["data"].get("tracking_number", "").startswith("KL")
        ]

    webhooks = 2 * SHIPMENTS
    await wait_until(
        lambda: len(burst_hooks()) >= webhooks, timeout=120, interval=0.5, message="all webhooks"
    )
    per_event = {}
    for body in burst_hooks():
        per_event.setdefault(body["data"]["raw_event_id"], 0)
        per_event[body["data"]["raw_event_id"]] += 1
    assert len(per_event) == webhooks, "one webhook per accepted raw event"
    assert set(per_event.values()) == {1}, "no event was delivered under two webhook ids"
    assert max(hook.accepted.values()) == 1, "no webhook-id was delivered twice"
    assert hook.rejected == 0
