"""The demo's own-fleet van: a planned route across São Paulo, an ``order.shipped`` naming the van, and
the van's GPS positions of the last minutes, two thirds of the way there — so ``make run`` shows a
vehicle on the shipment page, its departure (and a long stop) on the timeline and a last-mile ETA in
minutes. Deterministic per seed and hour, like the rest of the demo feed."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from rastro_normalization.domain.geo import haversine_m
from rastro_normalization.domain.traces import TracePoint, drive, road_polyline

__all__ = ["DEPOT", "DemoFleet", "demo_fleet", "post_demo_fleet"]

DEPOT = (-23.5505, -46.6333)  # Praça da Sé
HOMES = ((-23.5874, -46.6576), (-23.5329, -46.6395), (-23.5613, -46.6562), (-23.6020, -46.6760))
VEHICLE = "VAN-DEMO-1"
SHARE_LEFT = 1 / 3  # how much of the way the van still has ahead when the demo starts


@dataclass(frozen=True)
class DemoFleet:
    tracking_number: str
    route_id: str
    route: tuple[tuple[float, float], ...]
    order: dict[str, Any]
    positions: list[TracePoint]


def demo_fleet(seed: int, now: datetime) -> DemoFleet:
    """The van, its route and its positions so far, the last one a few seconds before ``now``."""
    hour = now.astimezone(UTC).strftime("%Y%m%d%H")
    home = HOMES[(seed + int(hour)) % len(HOMES)]
    route = road_polyline(DEPOT, home, seed=seed)
    options: dict[str, Any] = {"speed_kmh": 28, "stops": [(0.3, 660)], "dwell_s": 0}
    whole = drive(route, start=datetime(2026, 1, 1, tzinfo=UTC), seed=seed, **options)
    # up to the first fix past two thirds of the way (as the crow flies): moving again after its stop
    left = SHARE_LEFT * haversine_m(*DEPOT, *home)
    end = next(
        (i for i, p in enumerate(whole) if haversine_m(p.latitude, p.longitude, *home) <= left), len(whole)
    )
    shown = whole[: max(end + 1, 2)]
    took = shown[-1].recorded_at - shown[0].recorded_at
    start = now - took - timedelta(seconds=5)
    positions = drive(route, start=start, seed=seed, **options)[: len(shown)]
    tracking_number = f"FROTA{hour}"
    order = {
        "type": "order.shipped",
        "order_id": f"DEMO-FROTA-{hour}",
        "occurred_at": (start - timedelta(minutes=10)).isoformat(timespec="seconds"),
        "tracking_number": tracking_number,
        "carrier": "frota-propria",
        "vehicle_id": VEHICLE,
        "route_id": f"R-{hour}",
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
            "latitude": home[0],
            "longitude": home[1],
        },
    }
    return DemoFleet(tracking_number, f"R-{hour}", route, order, positions)


async def post_demo_fleet(
    client: httpx.AsyncClient, base_url: str, api_key: str, fleet: DemoFleet, wait_s: float = 20.0
) -> bool:
    """Route, shipment, then positions once normalization knows which van carries it (positions of a van
    that carries nothing yet are not followed). False if that did not happen within ``wait_s``."""
    auth = {"Authorization": f"Bearer {api_key}"}
    r = await client.put(
        f"{base_url}/v1/routes/{fleet.route_id}",
        json={"points": [list(p) for p in fleet.route]},
        headers=auth,
    )
    r.raise_for_status()
    r = await client.post(f"{base_url}/v1/events", json=fleet.order, headers=auth)
    r.raise_for_status()
    deadline = time.monotonic() + wait_s
    while True:
        r = await client.get(f"{base_url}/v1/shipments/{fleet.tracking_number}", headers=auth)
        if r.status_code == 200 and (r.json().get("position") or {}).get("vehicle_id") == VEHICLE:
            break
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.25)
    positions = [p.to_api(VEHICLE) for p in fleet.positions]
    r = await client.post(f"{base_url}/v1/telemetry", json={"positions": positions}, headers=auth)
    r.raise_for_status()
    return True
