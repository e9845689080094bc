"""Issue 13's acceptance, end to end through the gateway with the five services as processes: EDI
occurrence files (OCOREN 3.1 and 5.0, X12 214) become shipment states; a GPS trace driven through
``POST /v1/telemetry`` raises exactly one arrival per delivery, a deviation a subscriber filtered for,
and a last-mile ETA in minutes."""

from __future__ import annotations

import secrets
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from rastro_kit.testing import wait_until
from rastro_normalization.domain.traces import TracePoint, drive, road_polyline
from tests.e2e.stack import Receiver, Stack, until_known_everywhere

pytestmark = pytest.mark.e2e
EDI = Path(__file__).parents[2] / "services" / "ingest" / "tests" / "fixtures" / "edi"
DEPOT = (-23.5505, -46.6333)  # Praça da Sé
HOME = (-23.5874, -46.6576)  # near Ibirapuera, ~4.7 km as the crow flies


@pytest.fixture(scope="module")
async def tenant(e2e_stack: Stack, gateway: str, receiver: tuple[Receiver, str]) -> dict[str, Any]:
    hook, hook_url = receiver
    name = f"fleet{secrets.token_hex(3)}"
    key = await e2e_stack.create_tenant(name)
    auth = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=gateway, timeout=30) as client:
        await until_known_everywhere(client, key)
        # alerts only: the arrival and the route deviation, not every geofence event
        r = await client.post(
            "/v1/subscriptions",
            headers=auth,
            json={
                "url": hook_url,
                "event_types": ["tracking.out_for_delivery.nearby", "tracking.exception.route_deviation"],
                "description": "fleet alerts",
            },
        )
        assert r.status_code == 201, r.text
        hook.secrets.append(r.json()["secret"])
    return {"name": name, "auth": auth}


async def shipment(client: httpx.AsyncClient, auth: dict[str, str], number: str) -> dict[str, Any] | None:
    r = await client.get(f"/v1/shipments/{number}", headers=auth)
    return r.json() if r.status_code == 200 else None


async def test_edi_files_become_shipment_states_once(gateway: str, tenant: dict[str, Any]) -> None:
    auth = tenant["auth"]
    orders = {
        "PED-1": "00123456",
        "PED-2": "00123457",
        "PED-3": "00123458",
        "PED-4": "00987654",
        "PED-6": "00123459",  # ocoren_unknown_code.txt: delivered
        "PED-7": "00123460",  # ... and code 99, which no table maps
    }
    events: list[dict[str, Any]] = []
    at = "2026-03-10T09:00:00-03:00"
    for order_id, invoice in orders.items():
        events.append(
            {"type": "invoice.issued", "order_id": order_id, "occurred_at": at, "invoice_number": invoice}
        )
        events.append(
            {
                "type": "order.shipped",
                "order_id": order_id,
                "occurred_at": at,
                "tracking_number": f"EDI{order_id[-1]}BR",
                "carrier": "jadlog",
            }
        )
    key50 = "35260311222333000181550030005550031192837461"
    events.append({"type": "invoice.issued", "order_id": "PED-50", "occurred_at": at, "invoice_key": key50})
    events.append(
        {
            "type": "order.shipped",
            "order_id": "PED-50",
            "occurred_at": at,
            "tracking_number": "EDI50BR",
            "carrier": "jadlog",
        }
    )
    async with httpx.AsyncClient(base_url=gateway, timeout=30) as client:
        r = await client.post("/v1/events", headers=auth, json={"events": events})
        assert r.status_code == 202, r.text
        jobs = {}
        for name, params in (
            ("ocoren31_ok.txt", {}),
            ("ocoren50_ok.txt", {"carrier": "jadlog"}),
            ("x12_214_ok.edi", {"timezone": "America/New_York"}),
            ("ocoren_unknown_code.txt", {}),
        ):
            r = await client.post(
                "/v1/imports",
                params={"format": "edi", **params},
                headers=auth,
                content=(EDI / name).read_bytes(),
            )
            assert r.status_code == 202, r.text
            jobs[name] = r.json()
        assert jobs["x12_214_ok.edi"]["rows_accepted"] == 8

        expected = {
            "EDI1BR": ("delivered", "OCOREN-01"),  # entrega realizada
            "EDI2BR": ("failed_attempt", "OCOREN-06"),  # endereço não localizado
            "EDI3BR": ("failed_attempt", "OCOREN-03"),  # recusa
            "EDI4BR": ("exception", "OCOREN-79"),  # avaria
            "EDI50BR": ("delivered", "OCOREN-01"),  # 5.0, matched by the NF-e key
            "RST0000001BR": ("delivered", "X12-D1"),
            "RST0000002BR": ("failed_attempt", "X12-A7"),  # refused
            "EDI6BR": ("delivered", "OCOREN-01"),
        }

        async def settled() -> dict[str, dict[str, Any]] | None:
            found = {n: await shipment(client, auth, n) for n in expected}
            done = all(s and s["status"] == expected[n][0] for n, s in found.items())
            return found if done else None  # type: ignore[return-value]

        states = await wait_until(settled, timeout=60, message="EDI occurrences folded into shipments")
        for number, (_, code) in expected.items():
            assert code in [e["status_code"] for e in states[number]["timeline"]], number
        assert states["EDI1BR"]["carrier"] == "jadlog"  # the shipment's carrier, from order.shipped
        assert {e["carrier"] for e in states["RST0000001BR"]["timeline"]} == {"roadstar-logistics"}

        # an occurrence code no table maps is a dead letter with its reason, like any carrier's
        async def dead_letter() -> dict[str, Any] | None:
            r = await client.get("/v1/dead-letters", params={"reason": "unmapped_carrier_code"}, headers=auth)
            items = r.json()["items"] if r.status_code == 200 else []
            return next((i for i in items if (i.get("subject") or "").endswith("/EDI7BR")), None)

        dead = await wait_until(dead_letter, timeout=30, message="OCOREN-99 dead-lettered")
        assert "OCOREN-99" in dead["error_message"] and dead["service"] == "normalization"

        again = await client.post(
            "/v1/imports",
            params={"format": "edi"},
            headers=auth,
            content=(EDI / "ocoren31_ok.txt").read_bytes(),
        )
        assert again.json()["events_enqueued"] == 0 and again.json()["rows_duplicate"] == 4
        bad = await client.post(
            "/v1/imports",
            params={"format": "edi"},
            headers=auth,
            content=(EDI / "ocoren31_bad_date.txt").read_bytes(),
        )
        assert bad.status_code == 422 and bad.json()["errors"][0] == {
            "line": 4,
            "column": 31,
            "message": bad.json()["errors"][0]["message"],
        }

        # nothing of either reached a shipment: its EDI entries are those of the first imports
        def edi_entries(found: dict[str, Any] | None) -> int:
            assert found is not None
            return sum(e["status_code"].startswith(("OCOREN-", "X12-")) for e in found["timeline"])

        counts = {n: edi_entries(s) for n, s in states.items()}
        assert {n: edi_entries(await shipment(client, auth, n)) for n in expected} == counts


def trace_ending_now(route: tuple[tuple[float, float], ...], seed: int, **options: Any) -> list[TracePoint]:
    """A drive along ``route`` whose last fix was a few seconds ago (ingest refuses future ones)."""
    probe = drive(route, start=datetime(2026, 1, 1, tzinfo=UTC), seed=seed, **options)
    took = probe[-1].recorded_at - probe[0].recorded_at
    return drive(route, start=datetime.now(UTC) - took - timedelta(seconds=5), seed=seed, **options)


async def send(
    client: httpx.AsyncClient, auth: dict[str, str], vehicle: str, points: list[TracePoint]
) -> None:
    for i in range(0, len(points), 200):
        batch = [p.to_api(vehicle) for p in points[i : i + 200]]
        r = await client.post("/v1/telemetry", headers=auth, json={"positions": batch})
        assert r.status_code == 202, r.text


async def ship(
    client: httpx.AsyncClient, auth: dict[str, str], number: str, vehicle: str, route_id: str
) -> None:
    order = {
        "type": "order.shipped",
        "order_id": f"O-{number}",
        "occurred_at": datetime.now(UTC).isoformat(),
        "tracking_number": number,
        "carrier": "frota-propria",
        "vehicle_id": vehicle,
        "route_id": route_id,
        "origin": {
            "city": "São Paulo",
            "state": "SP",
            "country": "BR",
            "latitude": DEPOT[0],
            "longitude": DEPOT[1],
        },
        "destination": {
            "city": "São Paulo",
            "state": "SP",
            "country": "BR",
            "latitude": HOME[0],
            "longitude": HOME[1],
        },
    }
    r = await client.post("/v1/events", headers=auth, json=order)
    assert r.status_code == 202, r.text

    async def assigned() -> bool:
        found = await shipment(client, auth, number)
        return bool(found and found["position"] and found["position"]["vehicle_id"] == vehicle)

    await wait_until(assigned, timeout=30, message=f"{number} assigned to {vehicle}")


async def test_a_gps_trace_raises_one_arrival_and_a_last_mile_eta_in_minutes(
    gateway: str, tenant: dict[str, Any], receiver: tuple[Receiver, str]
) -> None:
    hook, _ = receiver
    auth = tenant["auth"]
    route = road_polyline(DEPOT, HOME, seed=11)
    trace = trace_ending_now(route, 11, speed_kmh=30, stops=[(0.45, 720)])
    half = len(trace) // 2
    number = f"VAN{secrets.token_hex(4).upper()}"
    async with httpx.AsyncClient(base_url=gateway, timeout=30) as client:
        r = await client.put("/v1/routes/R-11", headers=auth, json={"points": [list(p) for p in route]})
        assert r.status_code == 200, r.text
        await ship(client, auth, number, "VAN-11", "R-11")

        await send(client, auth, "VAN-11", trace[:half])

        async def midway() -> dict[str, Any] | None:
            r = await client.get(f"/v1/shipments/{number}/eta", headers=auth)
            eta = r.json() if r.status_code == 200 else {}
            return eta if eta.get("expected_at") and eta.get("remaining_m") else None

        first = await wait_until(midway, timeout=60, message="a last-mile ETA")
        last_fix = trace[half - 1].recorded_at
        minutes = (datetime.fromisoformat(first["expected_at"]) - last_fix).total_seconds() / 60
        assert 1 < minutes < 90, first  # minutes away, not days

        await send(client, auth, "VAN-11", trace[half:])

        async def arrived() -> dict[str, Any] | None:
            found = await shipment(client, auth, number)
            last = (found or {}).get("position", {}).get("last") or {}
            done = last.get("recorded_at") == trace[-1].recorded_at.isoformat()  # every fix stepped
            # ...and the arrival, raised by one of them, folded into the timeline after the others
            return found if done and found and found["substatus"] == "out_for_delivery.nearby" else None

        final = await wait_until(arrived, timeout=60, message="the whole trace processed")
        codes = Counter(e["status_code"] for e in final["timeline"])
        assert codes["GEOFENCE-ARRIVED"] == 1 and codes["GEOFENCE-DEPARTED"] == 1, codes
        assert codes["GEOFENCE-LONG-STOP"] == 1 and codes["GEOFENCE-DEVIATION"] == 0, codes
        assert (final["status"], final["substatus"]) == ("out_for_delivery", "out_for_delivery.nearby")
        assert final["position"]["last"]["arrived"] and final["position"]["last"]["remaining_m"] < 500

        async def closer() -> dict[str, Any] | None:
            r = await client.get(f"/v1/shipments/{number}/eta", headers=auth)
            eta = r.json()
            return (
                eta
                if eta.get("remaining_m") is not None and eta["remaining_m"] < first["remaining_m"]
                else None
            )

        eta = await wait_until(closer, timeout=30, message="the ETA follows the vehicle")
        left = (datetime.fromisoformat(eta["expected_at"]) - trace[-1].recorded_at).total_seconds() / 60
        assert 0 <= left <= 15 and left < minutes, eta

        hooks = await wait_until(
            lambda: hook.events_for(number) or None, timeout=30, message="arrival webhook"
        )
        assert [(h["type"], h["data"]["substatus"]) for h in hooks] == [
            ("tracking.out_for_delivery", "out_for_delivery.nearby")
        ]


async def test_a_detour_raises_one_route_deviation_for_the_subscriber(
    gateway: str, tenant: dict[str, Any], receiver: tuple[Receiver, str]
) -> None:
    hook, _ = receiver
    auth = tenant["auth"]
    route = road_polyline(DEPOT, HOME, seed=5)
    trace = trace_ending_now(route, 5, speed_kmh=35, detour=(0.3, 0.6, 2500.0))
    number = f"VAN{secrets.token_hex(4).upper()}"
    async with httpx.AsyncClient(base_url=gateway, timeout=30) as client:
        r = await client.put(
            "/v1/routes/R-5", headers=auth, json={"points": [list(p) for p in route], "corridor_m": 800}
        )
        assert r.status_code == 200, r.text
        await ship(client, auth, number, "VAN-5", "R-5")
        await send(client, auth, "VAN-5", trace)

        async def arrived() -> dict[str, Any] | None:
            found = await shipment(client, auth, number)
            return (
                found
                if found and any(e["status_code"] == "GEOFENCE-ARRIVED" for e in found["timeline"])
                else None
            )

        final = await wait_until(arrived, timeout=60, message="the detoured vehicle arrives")
        codes = Counter(e["status_code"] for e in final["timeline"])
        assert codes["GEOFENCE-DEVIATION"] == 1 and codes["GEOFENCE-BACK-ON-ROUTE"] == 1, codes
        assert codes["GEOFENCE-ARRIVED"] == 1

        hooks = await wait_until(
            lambda: len(hook.events_for(number)) >= 2 and hook.events_for(number),
            timeout=30,
            message="alerts",
        )
        assert sorted(h["data"]["substatus"] for h in hooks) == [
            "exception.route_deviation",
            "out_for_delivery.nearby",
        ]
