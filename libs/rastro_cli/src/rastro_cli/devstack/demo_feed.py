"""A small, deterministic demo: Correios shipments between Brazilian cities at different stages.

``demo_events(seed, now)`` is pure: the same seed and the same hour give the same shipments and the
same events (so a second start within the hour posts nothing new: the Idempotency-Key is the body's
hash); a later hour gives a fresh set, as a live shop would.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx

__all__ = ["BRT", "DemoFeed", "demo_events", "post_demo_events", "s10_tracking_number"]

BRT = timezone(timedelta(hours=-3), "BRT")  # Brazil has kept -03:00 all year since 2019

# city, state, the Correios treatment centre that serves it
CITIES: tuple[tuple[str, str, str], ...] = (
    ("São Paulo", "SP", "Cajamar"),
    ("Campinas", "SP", "Cajamar"),
    ("Rio de Janeiro", "RJ", "Rio de Janeiro"),
    ("Belo Horizonte", "MG", "Contagem"),
    ("Curitiba", "PR", "Curitiba"),
    ("Porto Alegre", "RS", "Porto Alegre"),
    ("Florianópolis", "SC", "São José"),
    ("Salvador", "BA", "Salvador"),
    ("Recife", "PE", "Recife"),
    ("Fortaleza", "CE", "Fortaleza"),
    ("Brasília", "DF", "Brasília"),
    ("Goiânia", "GO", "Goiânia"),
)
PREFIXES = ("QB", "OB", "NX", "AB", "LB", "SS")  # PAC / SEDEX e-commerce object prefixes
CODES = ("PO-01", "RO-01", "DO-01", "OEC-01", "BDE-01")
# how far each demo shipment got: two delivered, one out for delivery, two in transit, one just posted
PROGRESS = (5, 5, 4, 3, 2, 1)


@dataclass(frozen=True)
class DemoFeed:
    tracking_numbers: list[str]
    events: int
    status_code: int


def s10_tracking_number(prefix: str, serial: int) -> str:
    """UPU S10: two letters, eight digits, a mod-11 check digit, ``BR``."""
    digits = f"{serial:08d}"
    total = sum(int(d) * w for d, w in zip(digits, (8, 6, 4, 2, 3, 5, 9, 7), strict=True))
    check = 11 - total % 11
    check = 0 if check == 10 else 5 if check == 11 else check
    return f"{prefix}{digits}{check}BR"


def demo_events(seed: int, now: datetime) -> list[dict[str, Any]]:
    """The demo's raw tracking events, oldest first, none later than ``now``."""
    anchor = now.astimezone(BRT).replace(minute=0, second=0, microsecond=0)
    rng = random.Random(f"{seed}:{anchor.isoformat()}")
    events: list[dict[str, Any]] = []
    for progress in PROGRESS:
        origin, destination = rng.sample(CITIES, 2)
        tracking_number = s10_tracking_number(rng.choice(PREFIXES), rng.randrange(10**8))
        times = _journey(rng, anchor, progress)
        for code, at in zip(CODES, times, strict=False):
            events.append(_event(tracking_number, code, at, origin, destination))
    return sorted(events, key=lambda e: str(e["occurred_at"]))


def _journey(rng: random.Random, anchor: datetime, progress: int) -> list[datetime]:
    """Times of the first ``progress`` events, all before ``anchor``: posted in office hours, sorted
    overnight, out for delivery in the morning. The posting day is the latest that gets that far."""
    hour, minutes, seconds = rng.randrange(9, 17), rng.randrange(60), rng.randrange(60)
    gaps = (rng.uniform(2, 6), rng.uniform(10, 30), rng.randrange(180), rng.uniform(1, 6))
    times: list[datetime] = []
    for days_back in range(10):
        posted = (anchor - timedelta(days=days_back)).replace(hour=hour, minute=minutes, second=seconds)
        routed = posted + timedelta(hours=gaps[0])
        dispatched = routed + timedelta(hours=gaps[1])
        out_day = dispatched if dispatched.hour < 5 else dispatched + timedelta(days=1)
        out = out_day.replace(hour=7, minute=0) + timedelta(minutes=gaps[2])
        delivered = out + timedelta(hours=gaps[3])
        times = [t.replace(microsecond=0) for t in (posted, routed, dispatched, out, delivered)]
        times = [t for t in times if t <= anchor]
        if len(times) >= progress:
            return times[:progress]
    return times


def _event(
    tracking_number: str,
    code: str,
    at: datetime,
    origin: tuple[str, str, str],
    destination: tuple[str, str, str],
) -> dict[str, Any]:
    o_city, o_state, o_hub = origin
    d_city, d_state, _ = destination
    description, (city, state) = {
        "PO-01": ("Objeto postado", (o_city, o_state)),
        "RO-01": (f"Objeto encaminhado para Unidade de Tratamento em {o_hub}/{o_state}", (o_city, o_state)),
        "DO-01": (f"Objeto encaminhado para Unidade de Distribuição em {d_city}/{d_state}", (o_hub, o_state)),
        "OEC-01": ("Objeto saiu para entrega ao destinatário", (d_city, d_state)),
        "BDE-01": ("Objeto entregue ao destinatário", (d_city, d_state)),
    }[code]
    return {
        "type": "tracking.event",
        "carrier": "correios",
        "tracking_number": tracking_number,
        "status_code": code,
        "description": description,
        "occurred_at": at.isoformat(timespec="seconds"),
        "location": {"city": city, "state": state, "country": "BR"},
    }


async def post_demo_events(
    client: httpx.AsyncClient, base_url: str, api_key: str, events: list[dict[str, Any]]
) -> DemoFeed:
    """One batch through the gateway; raises ``httpx.HTTPStatusError`` unless ingest accepts it."""
    body = json.dumps({"events": events}, ensure_ascii=False, sort_keys=True).encode()
    response = await client.post(
        f"{base_url}/v1/events",
        content=body,
        headers={
            "Authorization": f"Bearer {api_key}",
            "Content-Type": "application/json",
            "Idempotency-Key": "demo-" + hashlib.sha256(body).hexdigest()[:32],
        },
    )
    response.raise_for_status()
    numbers = list(dict.fromkeys(str(e["tracking_number"]) for e in events))
    return DemoFeed(numbers, len(events), response.status_code)
