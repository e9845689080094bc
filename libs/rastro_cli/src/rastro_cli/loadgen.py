"""``rastro loadgen``: realistic shipment lifecycles for load, chaos and demo runs.

``lifecycles()`` is pure and deterministic (a seed): each lifecycle is one shipment of one tenant —
order created → invoice → shipped (for about half of them) → Correios scans (posted, forwarded, out
for delivery, delivered, with failed attempts, pickups, returns and losses in realistic shares) — and
says which status it must end in. ``send_plan()`` turns them into what is actually sent, in order:
events interleaved across shipments as a live feed would, some re-sent with the same ``event_id``
(a client retry), some told twice by the carrier with a new id, some shipments out of order, and a
few poison events (an unmapped carrier code) on shipments of their own.

Drivers post the plan through ``POST /v1/events`` in batches at a target rate, or publish it to the
upstream topic, and write a manifest (JSON lines) that ``rastro check`` (``rastro_cli.checker``)
reads to prove that nothing was lost or applied twice.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from rastro_cli.devstack.demo_feed import BRT, CITIES, s10_tracking_number
from rastro_events.ids import scoped_event_id

__all__ = [
    "TEMPLATES",
    "Lifecycle",
    "Mix",
    "Plan",
    "lifecycles",
    "post_plan",
    "produce_plan",
    "read_manifest",
    "send_plan",
    "write_manifest",
]

# name: (Correios codes in time order, the status the shipment ends in, share of shipments)
TEMPLATES: dict[str, tuple[tuple[str, ...], str, float]] = {
    "delivered": (("PO-01", "RO-01", "DO-01", "OEC-01", "BDE-01"), "delivered", 0.55),
    "failed_attempt_then_delivered": (
        ("PO-01", "RO-01", "DO-01", "OEC-01", "BDE-02", "OEC-01", "BDE-01"),
        "delivered",
        0.12,
    ),
    "out_for_delivery": (("PO-01", "RO-01", "DO-01", "OEC-01"), "out_for_delivery", 0.08),
    "in_transit": (("PO-01", "RO-01", "DO-01"), "in_transit", 0.12),
    "awaiting_pickup": (("PO-01", "RO-01", "DO-01", "LDI-01"), "available_for_pickup", 0.06),
    "returned": (("PO-01", "RO-01", "DO-01", "OEC-01", "BDE-04", "BDE-23"), "returned", 0.04),
    "lost": (("PO-01", "RO-01", "IDC-01"), "exception", 0.03),
}
POISON_CODE = "ZZZ-99"  # no carrier table maps it: normalization dead-letters it (unmapped_carrier_code)


@dataclass(frozen=True)
class Mix:
    """Shares of the perturbations a live feed has."""

    with_order_events: float = 0.5
    client_retries: float = 0.03  # an event sent again with the same event_id
    carrier_repeats: float = 0.03  # the carrier tells the same scan twice (a new event_id)
    out_of_order: float = 0.10  # a shipment whose events arrive shuffled
    poison: float = 0.01  # shipments whose only event has an unmapped code


@dataclass
class Lifecycle:
    tenant: str
    tracking_number: str
    kind: str
    expected_status: str | None  # None: a poison shipment, no state expected
    events: list[dict[str, Any]] = field(default_factory=list)  # API bodies, in time order
    order_id: str | None = None

    @property
    def poison(self) -> bool:
        return self.expected_status is None


@dataclass
class Plan:
    """What is sent, in order: (tenant, API body) pairs; re-sends included."""

    lifecycles: list[Lifecycle]
    sends: list[tuple[str, dict[str, Any]]]


def lifecycles(
    *, tenants: Sequence[str], shipments: int, seed: int = 1, run: str = "lg", mix: Mix | None = None
) -> list[Lifecycle]:
    """``shipments`` lifecycles spread over ``tenants``, deterministic for a seed and run id."""
    mix = mix or Mix()
    rng = random.Random(f"{seed}:{run}")
    names = list(TEMPLATES)
    weights = [TEMPLATES[n][2] for n in names]
    start = datetime(2026, 11, 2, 9, tzinfo=BRT)
    found: list[Lifecycle] = []
    for n in range(shipments):
        tenant = tenants[n % len(tenants)]
        number = s10_tracking_number(rng.choice(("QB", "OB", "NX", "AB")), rng.randrange(10**8))
        posted = start + timedelta(minutes=rng.randrange(14 * 24 * 60))
        (o_city, o_state, _), (d_city, d_state, _) = rng.sample(CITIES, 2)
        if rng.random() < mix.poison:
            life = Lifecycle(tenant, number, "poison", None)
            life.events.append(_scan(run, n, 0, number, POISON_CODE, posted, d_city, d_state))
            found.append(life)
            continue
        kind = rng.choices(names, weights)[0]
        codes, expected, _ = TEMPLATES[kind]
        life = Lifecycle(tenant, number, kind, expected)
        at = posted
        if rng.random() < mix.with_order_events:
            life.order_id = f"PED-{run}-{n}"
            life.events += _order_events(
                run, n, life.order_id, number, posted, (o_city, o_state), (d_city, d_state)
            )
        for i, code in enumerate(codes):
            city, state = (o_city, o_state) if i < 2 else (d_city, d_state)
            life.events.append(_scan(run, n, i, number, code, at, city, state))
            at += timedelta(hours=rng.uniform(2, 30))
        found.append(life)
    return found


def send_plan(found: Sequence[Lifecycle], *, seed: int = 1, mix: Mix | None = None) -> Plan:
    """Interleave the lifecycles' events into one feed, with re-sends and shuffles (deterministic)."""
    mix = mix or Mix()
    rng = random.Random(f"send:{seed}")
    queues: list[list[dict[str, Any]]] = []
    for life in found:
        events = list(life.events)
        if rng.random() < mix.out_of_order:
            rng.shuffle(events)
        queue: list[dict[str, Any]] = []
        for event in events:
            queue.append(event)
            if rng.random() < mix.client_retries:
                queue.append(dict(event))  # the same event_id: applied once
            if event["type"] == "tracking.event" and rng.random() < mix.carrier_repeats:
                queue.append({**event, "event_id": event["event_id"] + "-again"})  # same scan, new id
        queues.append(queue)
    sends: list[tuple[str, dict[str, Any]]] = []
    cursors = [0] * len(queues)
    live = [i for i, q in enumerate(queues) if q]
    while live:
        pick = rng.randrange(len(live))
        i = live[pick]
        sends.append((found[i].tenant, queues[i][cursors[i]]))
        cursors[i] += 1
        if cursors[i] == len(queues[i]):
            live[pick] = live[-1]
            live.pop()
    return Plan(list(found), sends)


def _scan(
    run: str, n: int, i: int, number: str, code: str, at: datetime, city: str, state: str
) -> dict[str, Any]:
    return {
        "type": "tracking.event",
        "event_id": f"{run}-{n}-{i}-{code}",
        "carrier": "correios",
        "tracking_number": number,
        "status_code": code,
        "occurred_at": at.isoformat(timespec="seconds"),
        "location": {"city": city, "state": state, "country": "BR"},
    }


def _order_events(
    run: str,
    n: int,
    order_id: str,
    number: str,
    posted: datetime,
    origin: tuple[str, str],
    destination: tuple[str, str],
) -> list[dict[str, Any]]:
    o = {"city": origin[0], "state": origin[1], "country": "BR"}
    d = {"city": destination[0], "state": destination[1], "country": "BR"}
    created = posted - timedelta(hours=20)
    return [
        {
            "type": "order.created",
            "event_id": f"{run}-{n}-order-created",
            "order_id": order_id,
            "occurred_at": created.isoformat(timespec="seconds"),
            "origin": o,
            "destination": d,
        },
        {
            "type": "invoice.issued",
            "event_id": f"{run}-{n}-invoice",
            "order_id": order_id,
            "invoice_number": str(100000 + n),
            "occurred_at": (created + timedelta(hours=2)).isoformat(timespec="seconds"),
        },
        {
            "type": "order.shipped",
            "event_id": f"{run}-{n}-order-shipped",
            "order_id": order_id,
            "tracking_number": number,
            "carrier": "Correios",
            "service": "SEDEX",
            "occurred_at": (posted - timedelta(hours=2)).isoformat(timespec="seconds"),
            "origin": o,
            "destination": d,
        },
    ]


# -- drivers ---------------------------------------------------------------------------------------


@dataclass
class SendReport:
    events_sent: int = 0
    requests: int = 0
    retried_requests: int = 0
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.events_sent / self.seconds if self.seconds else 0.0


class _Pacer:
    """Spaces out ``count`` units so the average is ``rate`` per second (0: as fast as possible)."""

    def __init__(self, rate: float) -> None:
        self._rate, self._start, self._sent = rate, time.monotonic(), 0

    async def take(self, count: int) -> None:
        self._sent += count
        if self._rate > 0:
            ahead = self._sent / self._rate - (time.monotonic() - self._start)
            if ahead > 0:
                await asyncio.sleep(ahead)


def _batches(plan: Plan, size: int) -> list[tuple[str, list[dict[str, Any]]]]:
    """Consecutive sends of one tenant grouped into requests of at most ``size``, order kept."""
    out: list[tuple[str, list[dict[str, Any]]]] = []
    pending: dict[str, list[dict[str, Any]]] = {}
    for tenant, body in plan.sends:
        batch = pending.setdefault(tenant, [])
        batch.append(body)
        if len(batch) == size:
            out.append((tenant, batch))
            pending[tenant] = []
    out += [(t, b) for t, b in pending.items() if b]
    return out


async def post_plan(
    plan: Plan,
    base_url: str,
    keys: dict[str, str],
    *,
    rate: float = 0,
    batch: int = 500,
    concurrency: int = 4,
    timeout: float = 60.0,
    on_progress: Any = None,
) -> SendReport:
    """POST the plan; each tenant's requests go one after another (order kept), tenants in parallel.

    A 429 or 503 (or a transport error) is retried with the same body until accepted: a 202 is the
    only proof of acceptance, and the events' own ids make the retry harmless.
    """
    report = SendReport()
    pacer = _Pacer(rate)
    by_tenant: dict[str, list[list[dict[str, Any]]]] = {}
    for tenant, events in _batches(plan, batch):
        by_tenant.setdefault(tenant, []).append(events)
    gate = asyncio.Semaphore(concurrency)
    started = time.monotonic()

    async with httpx.AsyncClient(base_url=base_url, timeout=timeout) as client:

        async def one_tenant(tenant: str, requests: list[list[dict[str, Any]]]) -> None:
            headers = {"Authorization": f"Bearer {keys[tenant]}"}
            for events in requests:
                await pacer.take(len(events))
                async with gate:
                    await _post_until_accepted(client, headers, events, report)
                report.events_sent += len(events)
                report.requests += 1
                if on_progress is not None:
                    on_progress(len(events))

        await asyncio.gather(*(one_tenant(t, r) for t, r in by_tenant.items()))
    report.seconds = time.monotonic() - started
    return report


async def _post_until_accepted(
    client: httpx.AsyncClient, headers: dict[str, str], events: list[dict[str, Any]], report: SendReport
) -> None:
    delay = 0.2
    while True:
        try:
            response = await client.post("/v1/events", json={"events": events}, headers=headers)
        except httpx.TransportError:
            response = None
        if response is not None and response.status_code in (200, 202):
            return
        if response is not None and response.status_code not in (429, 502, 503, 504):
            raise RuntimeError(f"ingest refused a batch: {response.status_code} {response.text[:500]}")
        report.retried_requests += 1
        retry_after = response.headers.get("Retry-After", "") if response is not None else ""
        # Seconds, as our services send it; an HTTP date (a proxy's) falls back to our own backoff.
        await asyncio.sleep(min(float(retry_after), 5.0) if retry_after.isdigit() else delay)
        delay = min(delay * 2, 5.0)


async def produce_plan(plan: Plan, producer: Any, topic: str, *, rate: float = 0) -> SendReport:
    """Publish the plan to the upstream topic (one record per event, key tenant/shipment)."""
    report = SendReport()
    pacer = _Pacer(rate)
    started = time.monotonic()
    futures = []
    for tenant, body in plan.sends:
        await pacer.take(1)
        key = f"{tenant}/{body.get('tracking_number') or body.get('order_id')}".encode()
        value = json.dumps({"tenant_id": tenant, **body}).encode()
        futures.append(await producer.send(topic, value=value, key=key))
        report.events_sent += 1
    await asyncio.gather(*futures)
    report.seconds = time.monotonic() - started
    return report


# -- the manifest ----------------------------------------------------------------------------------


def write_manifest(path: Path, plan: Plan) -> None:
    """One JSON line per lifecycle: what ``rastro check`` needs, with the envelope ids it will find."""
    owner: dict[tuple[str, str], int] = {}
    for i, life in enumerate(plan.lifecycles):
        for event in life.events:
            owner[(life.tenant, event["event_id"])] = i
            owner[(life.tenant, event["event_id"] + "-again")] = i
    ids: list[set[str]] = [set() for _ in plan.lifecycles]
    for tenant, body in plan.sends:
        ids[owner[(tenant, body["event_id"])]].add(scoped_event_id(tenant, body["event_id"]))
    with path.open("w", encoding="utf-8") as out:
        for life, sent in zip(plan.lifecycles, ids, strict=True):
            line = asdict(life)
            line["distinct_events"] = len(line.pop("events"))
            line["event_ids"] = sorted(sent)
            out.write(json.dumps(line) + "\n")


def read_manifest(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
