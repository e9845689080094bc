"""The benchmark's input: realistic Correios journeys on many distinct tracking numbers.

Every scenario sends the same kind of record: a raw tracking event as ingest publishes it (a CloudEvents
envelope of ~700 bytes with a Correios code, a description, a location and an order id). Each tracking
number gets a journey in event order (posted, forwarded twice, out for delivery, sometimes a failed
attempt and a second run, delivered), and journeys are interleaved the way a busy shop's feed is.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from rastro_events import RawTrackingEvent, encode_event, headers_for, new_event

__all__ = ["Record", "envelope_records", "http_bodies", "tracking_events"]

_BRT = timezone(timedelta(hours=-3))
_PREFIXES = ("AA", "AB", "OB", "QB", "NL", "LB", "NX", "PY", "OV", "QH")
_WEIGHTS = (8, 6, 4, 2, 3, 5, 9, 7)
_CITIES = (
    ("São Paulo", "SP", "01310-100"),
    ("Cajamar", "SP", "07790-000"),
    ("Curitiba", "PR", "80010-000"),
    ("Rio de Janeiro", "RJ", "20040-020"),
    ("Belo Horizonte", "MG", "30130-010"),
    ("Recife", "PE", "50010-000"),
    ("Porto Alegre", "RS", "90010-000"),
    ("Salvador", "BA", "40020-000"),
    ("Brasília", "DF", "70040-010"),
    ("Fortaleza", "CE", "60060-000"),
    ("Campinas", "SP", "13010-000"),
    ("Goiânia", "GO", "74003-010"),
)
# (code, description as Correios writes it); {a} and {b} are facility cities.
_POSTED = ("PO-01", "Objeto postado")
_FORWARDED = ("RO-01", "Objeto encaminhado de Unidade de Tratamento em {a} para Unidade de Tratamento em {b}")
_TO_DELIVERY_UNIT = (
    "DO-01",
    "Objeto encaminhado de Unidade de Tratamento em {a} para Unidade de Distribuição em {b}",
)
_OUT = ("OEC-01", "Objeto saiu para entrega ao destinatário")
_NOBODY_HOME = ("BDE-02", "A entrega não pode ser efetuada - Carteiro não atendido")
_DELIVERED = ("BDE-01", "Objeto entregue ao destinatário")


@dataclass(frozen=True)
class Record:
    """One Kafka record as ingest would publish it."""

    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]
    event_id: str


def _tracking_number(rng: random.Random) -> str:
    digits = [rng.randrange(10) for _ in range(8)]
    rest = sum(d * w for d, w in zip(digits, _WEIGHTS, strict=True)) % 11
    check = 0 if rest == 1 else 5 if rest == 0 else 11 - rest
    return f"{rng.choice(_PREFIXES)}{''.join(map(str, digits))}{check}BR"


def _journey(rng: random.Random) -> list[tuple[str, str]]:
    steps = [_POSTED, _FORWARDED, _TO_DELIVERY_UNIT, _OUT]
    if rng.random() < 0.15:
        steps += [_NOBODY_HOME, _OUT]
    return [*steps, _DELIVERED]


def _event(
    number: str,
    order_id: str,
    step: tuple[str, str],
    at: datetime,
    places: tuple[tuple[str, str, str], ...],
    i: int,
) -> dict[str, Any]:
    code, text = step
    here = places[min(i, len(places) - 1)]
    there = places[min(i + 1, len(places) - 1)]
    return {
        "type": "tracking.event",
        "carrier": "correios",
        "service": "SEDEX",
        "tracking_number": number,
        "status_code": code,
        "description": text.format(a=f"{here[0].upper()} / {here[1]}", b=f"{there[0].upper()} / {there[1]}"),
        "occurred_at": at.isoformat(timespec="seconds"),
        "order_id": order_id,
        "location": {"city": here[0], "state": here[1], "country": "BR", "postal_code": here[2]},
    }


def tracking_events(count: int, seed: int = 7) -> list[dict[str, Any]]:
    """``count`` events as a client posts them to ``POST /v1/events``, journeys interleaved in order."""
    rng = random.Random(seed)
    journeys: list[list[dict[str, Any]]] = []
    total = 0
    start = datetime(2026, 11, 16, 8, 0, tzinfo=_BRT)
    while total < count:
        number = _tracking_number(rng)
        places = tuple(rng.sample(_CITIES, 3))
        at = start + timedelta(minutes=rng.randrange(7 * 24 * 60))
        events = []
        for i, step in enumerate(_journey(rng)):
            at += timedelta(hours=rng.uniform(2, 30))
            events.append(_event(number, f"PED-{rng.randrange(10**9):09d}", step, at, places, i))
        events = events[: count - total]
        journeys.append(events)
        total += len(events)
    # Interleave: at each step pick a random journey that still has events; order inside one is kept.
    out: list[dict[str, Any]] = []
    cursors = [0] * len(journeys)
    live = list(range(len(journeys)))
    while live:
        j = rng.randrange(len(live))
        k = live[j]
        out.append(journeys[k][cursors[k]])
        cursors[k] += 1
        if cursors[k] == len(journeys[k]):
            live[j] = live[-1]
            live.pop()
    return out


def envelope_records(events: list[dict[str, Any]], tenant_id: str) -> list[Record]:
    """The records ingest publishes for ``events`` (same envelope, source, key and headers)."""
    records = []
    for item in events:
        payload = RawTrackingEvent.model_validate({k: v for k, v in item.items() if k != "type"})
        envelope = new_event(payload, tenant_id=tenant_id, source=f"/tenants/{tenant_id}/api")
        records.append(
            Record(envelope.subject.encode(), encode_event(envelope), headers_for(envelope), envelope.id)
        )
    return records


def http_bodies(events: list[dict[str, Any]], batch: int) -> list[bytes]:
    """Request bodies of ``{"events": [...]}`` with ``batch`` events each, encoded once up front."""
    return [
        json.dumps({"events": events[i : i + batch]}, ensure_ascii=False).encode()
        for i in range(0, len(events), batch)
    ]
