"""Postgres access for the shipment read model (schema ``normalization``).

Writes go through a ``ShipmentBatch``, a unit of work inside the caller's transaction: it locks and
loads every shipment a batch of events touches with one statement each (rows and timelines), the
events are folded in memory by the pure state machine, and ``flush`` writes the new timeline entries
and the changed shipment rows with one statement each. One event or five hundred, the statements are
the same; the consumer's isolated path uses it with one event at a time.
"""

from __future__ import annotations

import json
import random
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Any, NamedTuple

import orjson

from rastro_events import Status
from rastro_normalization.domain.state_machine import (
    Shipment,
    StatusChange,
    apply,
    build_shipment,
    new_shipment,
)
from rastro_normalization.domain.timeline import Place, TimelineEntry

__all__ = [
    "SHIPMENT_CACHE",
    "Folded",
    "ShipmentBatch",
    "ShipmentCache",
    "ShipmentFacts",
    "load_shipment",
]

Key = tuple[str, str]  # tenant id, tracking number


class ShipmentFacts(NamedTuple):  # one per event: a tuple is the cheapest immutable record to build
    """What we know of a shipment beyond its timeline; None leaves the stored value as it is."""

    carrier: str | None = None
    service: str | None = None
    order_id: str | None = None
    origin: dict[str, Any] | None = None
    destination: dict[str, Any] | None = None
    promised_date: date | None = None


class Folded(NamedTuple):
    """An entry that changed its shipment: the shipment now, the status change, the row before."""

    shipment: Shipment
    change: StatusChange | None
    row: dict[str, Any]


class ShipmentCache:
    """Shipments as this process last wrote them, by the ``revision`` it wrote with them.

    Every write of a shipment (``ShipmentBatch.flush``) stores a new random ``revision`` in its row; a
    locked row whose revision is the one cached is exactly the cached shipment, so its timeline need
    not be read and folded again. A rolled-back write leaves the stored revision as it was, and any
    other writer (another instance) a revision this one never cached: both just miss. Anything else
    that changes a timeline must set ``revision`` to NULL.
    """

    def __init__(self, max_shipments: int = 20_000) -> None:
        self._max = max_shipments
        self._entries: OrderedDict[Key, tuple[int, Shipment]] = OrderedDict()

    def get(self, key: Key, revision: int | None) -> Shipment | None:
        found = self._entries.get(key)
        if found is None or revision is None or found[0] != revision:
            return None
        self._entries.move_to_end(key)
        return found[1]

    def put(self, key: Key, revision: int, shipment: Shipment) -> None:
        self._entries[key] = (revision, shipment)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()


SHIPMENT_CACHE = ShipmentCache()
_revisions = random.Random()  # seeded from the OS; uniqueness, not secrecy


class ShipmentBatch:
    """Shipments locked and loaded together, folded in memory, written back together.

    ``lock`` takes ``SELECT ... FOR UPDATE`` row locks (creating missing shipments) in key order, so
    concurrent batches wait for each other instead of deadlocking; the rows stay locked until the
    caller's transaction ends, so what is in memory is what is stored plus this batch's folds.
    """

    def __init__(self, conn: Any) -> None:
        self._conn = conn
        self._shipments: dict[Key, Shipment] = {}
        self._rows: dict[Key, dict[str, Any]] = {}
        self._dirty: set[Key] = set()
        self._entries: list[tuple[str, str, TimelineEntry, Mapping[str, str]]] = []

    async def lock(self, keys: Iterable[Key]) -> None:
        """Lock and load these shipments (created empty if new); already loaded ones are kept."""
        missing = sorted(set(keys) - self._rows.keys())
        if not missing:
            return
        tenants, numbers = [k[0] for k in missing], [k[1] for k in missing]
        created = await self._conn.fetch(
            "INSERT INTO shipments(tenant_id, tracking_number, status, substatus)"
            " SELECT t, n, 'pending', 'pending.no_information' FROM unnest($1::text[], $2::text[]) AS k(t, n)"
            " ORDER BY t, n ON CONFLICT DO NOTHING RETURNING tenant_id, tracking_number",
            tenants,
            numbers,
        )
        new = {(r["tenant_id"], r["tracking_number"]) for r in created}
        rows = await self._conn.fetch(
            "SELECT s.* FROM shipments s JOIN unnest($1::text[], $2::text[]) AS k(t, n)"
            " ON s.tenant_id = k.t AND s.tracking_number = k.n"
            " ORDER BY s.tenant_id, s.tracking_number FOR UPDATE OF s",
            tenants,
            numbers,
        )
        stale: list[Key] = []
        for r in rows:
            key = (r["tenant_id"], r["tracking_number"])
            self._rows[key] = dict(r)
            cached = None if key in new else SHIPMENT_CACHE.get(key, r["revision"])
            if key in new:
                self._shipments[key] = new_shipment(*key)
            elif cached is not None:
                self._shipments[key] = cached
            else:
                stale.append(key)
        if stale:
            await self._load_timelines(stale)

    async def _load_timelines(self, keys: list[Key]) -> None:
        # Read after the locks: a batch that committed these shipments meanwhile is seen whole.
        stored = await self._conn.fetch(
            "SELECT e.tenant_id, e.tracking_number, e.event_id, e.carrier, e.service, e.status_code,"
            " e.status, e.substatus, e.description, e.occurred_at_local, e.location, e.effect"
            " FROM timeline_entries e JOIN unnest($1::text[], $2::text[]) AS k(t, n)"
            " ON e.tenant_id = k.t AND e.tracking_number = k.n",
            [k[0] for k in keys],
            [k[1] for k in keys],
        )
        entries: dict[Key, list[TimelineEntry]] = {}
        for r in stored:
            entries.setdefault((r["tenant_id"], r["tracking_number"]), []).append(_entry(r))
        for key in keys:
            found = entries.get(key)
            self._shipments[key] = build_shipment(*key, found) if found else new_shipment(*key)

    def fold(
        self,
        tenant_id: str,
        tracking_number: str,
        entry: TimelineEntry,
        descriptions: Mapping[str, str],
        facts: ShipmentFacts,
    ) -> Folded | None:
        """Fold one entry into a locked shipment; None when it was a duplicate and changed nothing."""
        key = (tenant_id, tracking_number)
        shipment = self._shipments[key]
        updated, change = apply(shipment, entry)
        if updated is shipment:
            return None
        before = self._rows[key]
        self._shipments[key] = updated
        self._rows[key] = _saved_row(before, updated, facts)
        self._dirty.add(key)
        self._entries.append((tenant_id, tracking_number, entry, descriptions))
        return Folded(updated, change, before)

    async def flush(self) -> None:
        """Write the folded entries and the changed shipments (one statement each)."""
        if self._entries:
            await self._insert_entries(self._entries)
            self._entries = []
        if self._dirty:
            dirty = sorted(self._dirty)
            for key in dirty:
                self._rows[key]["revision"] = _revisions.getrandbits(63)
            await self._update_shipments([self._rows[key] for key in dirty])
            for key in dirty:
                SHIPMENT_CACHE.put(key, self._rows[key]["revision"], self._shipments[key])
            self._dirty = set()

    async def _insert_entries(self, entries: list[tuple[str, str, TimelineEntry, Mapping[str, str]]]) -> None:
        # Many rows as one JSON array of arrays: one parameter, where Postgres arrays cost a Python check
        # per element and JSON objects a key per value. ``->>`` gives NULL for a JSON null.
        rows = []
        for tenant_id, tracking_number, e, descriptions in entries:
            place = e.location
            local = e.occurred_at.isoformat()
            rows.append(
                (
                    tenant_id,
                    tracking_number,
                    e.event_id,
                    e.carrier,
                    e.service,
                    e.status_code,
                    e.status.value,
                    e.substatus,
                    e.description,
                    descriptions,
                    local,
                    local,
                    _place(place) if place else None,
                    e.effect,
                )
            )
        await self._conn.execute(
            "INSERT INTO timeline_entries(tenant_id, tracking_number, event_id, carrier, service,"
            " status_code, status, substatus, description, descriptions, occurred_at, occurred_at_local,"
            " location, effect)"
            " SELECT r->>0, r->>1, r->>2, r->>3, r->>4, r->>5, r->>6, r->>7, r->>8, (r->>9)::jsonb,"
            " (r->>10)::timestamptz, r->>11, (r->>12)::jsonb, r->>13"
            " FROM json_array_elements($1::json) AS r ON CONFLICT DO NOTHING",
            orjson.dumps(rows, default=dict).decode(),
        )

    async def _update_shipments(self, rows: list[dict[str, Any]]) -> None:
        changed = [
            (
                r["tenant_id"],
                r["tracking_number"],
                r["status"],
                r["substatus"],
                r["carrier"],
                r["service"],
                r["order_id"],
                r["origin"],  # jsonb text as stored: a JSON string here, parsed again by ::jsonb
                r["destination"],
                _iso(r["promised_date"]),
                _iso(r["created_at"]),
                _iso(r["shipped_at"]),
                _iso(r["delivered_at"]),
                _iso(r["status_since"]),
                r["revision"],
            )
            for r in rows
        ]
        # An upsert, not ``UPDATE ... FROM json_array_elements``: every row exists and is locked (``lock``),
        # so this always takes the DO UPDATE path, and ON CONFLICT finds each row through the primary key.
        # The UPDATE's join was left to the planner, whose cached generic plan (made while the table was
        # small) hash-joined a sequential scan of the whole table: 5 ms per batch at 30,000 shipments,
        # growing with the table.
        await self._conn.execute(
            "INSERT INTO shipments AS s (tenant_id, tracking_number, status, substatus, carrier, service,"
            " order_id, origin, destination, promised_date, created_at, shipped_at, delivered_at,"
            " status_since, revision)"
            " SELECT u->>0, u->>1, u->>2, u->>3, u->>4, u->>5, u->>6, (u->>7)::jsonb, (u->>8)::jsonb,"
            " (u->>9)::date, (u->>10)::timestamptz, (u->>11)::timestamptz, (u->>12)::timestamptz,"
            " (u->>13)::timestamptz, (u->>14)::bigint"
            " FROM json_array_elements($1::json) AS u"
            " ON CONFLICT (tenant_id, tracking_number) DO UPDATE SET status = excluded.status,"
            " substatus = excluded.substatus, carrier = excluded.carrier, service = excluded.service,"
            " order_id = excluded.order_id, origin = excluded.origin, destination = excluded.destination,"
            " promised_date = excluded.promised_date, created_at = excluded.created_at,"
            " shipped_at = excluded.shipped_at, delivered_at = excluded.delivered_at,"
            " status_since = excluded.status_since, revision = excluded.revision, updated_at = now()",
            orjson.dumps(changed).decode(),
        )


def _iso(value: date | datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _place(place: Place) -> dict[str, str | None]:
    return {"city": place.city, "state": place.state, "country": place.country}


_SAVED_COLUMNS = (
    "status",
    "substatus",
    "carrier",
    "service",
    "order_id",
    "origin",
    "destination",
    "promised_date",
    "created_at",
    "shipped_at",
    "delivered_at",
    "status_since",
)


def _saved_row(before: dict[str, Any], s: Shipment, facts: ShipmentFacts) -> dict[str, Any]:
    """The row once ``s`` is saved with ``facts``: derived columns replaced, a known fact kept unless a
    new value comes (``coalesce(new, stored)``)."""
    row = dict(before)
    row.update(
        status=s.status.value,
        substatus=s.substatus,
        created_at=s.created_at,
        shipped_at=s.shipped_at,
        delivered_at=s.delivered_at,
        status_since=s.updated_at,
    )
    for column, value in (
        ("carrier", facts.carrier or s.carrier),
        ("service", facts.service or s.service),
        ("order_id", facts.order_id),
        ("origin", json.dumps(facts.origin) if facts.origin else None),
        ("destination", json.dumps(facts.destination) if facts.destination else None),
        ("promised_date", facts.promised_date),
    ):
        if value is not None:
            row[column] = value
    return row


async def load_shipment(
    conn: Any, tenant_id: str, tracking_number: str
) -> tuple[Shipment, dict[str, Any], dict[str, Any]] | None:
    """A shipment with its row, and per-event extras (localized descriptions, local time) for display.

    Row and timeline are read in one snapshot: read apart, a handler committing in between would pair
    an old row (no order id yet) with a newer timeline.
    """
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        row = await conn.fetchrow(
            "SELECT * FROM shipments WHERE tenant_id = $1 AND tracking_number = $2",
            tenant_id,
            tracking_number,
        )
        if row is None:
            return None
        rows = await conn.fetch(
            "SELECT * FROM timeline_entries WHERE tenant_id = $1 AND tracking_number = $2",
            tenant_id,
            tracking_number,
        )
    shipment = build_shipment(tenant_id, tracking_number, [_entry(r) for r in rows])
    extras = {
        r["event_id"]: {"descriptions": json.loads(r["descriptions"]), "recorded_at": r["recorded_at"]}
        for r in rows
    }
    return shipment, dict(row), extras


def _entry(r: Any) -> TimelineEntry:
    loc = json.loads(r["location"]) if r["location"] else None
    return TimelineEntry(
        event_id=r["event_id"],
        carrier=r["carrier"],
        status_code=r["status_code"],
        status=Status(r["status"]),
        substatus=r["substatus"],
        description=r["description"],
        occurred_at=datetime.fromisoformat(r["occurred_at_local"]),
        location=Place(loc.get("city"), loc.get("state"), loc.get("country")) if loc else None,
        effect=r["effect"],
        service=r["service"],
    )
