"""CSV rows as events: which column feeds which field, and one row turned into an event dict.

The dict a row becomes is exactly what ``POST /v1/events`` accepts, so ``read_event`` validates both.
Columns are found by our field name (``tracking_number``, ``location.city``…) or through a mapping
``{our field: the file's header}``, so an ERP's own export headers work unchanged.

Event ids are deterministic: a row's id is a UUID5 of its tenant, its event type and its validated
content (or of an ``event_id`` column when the file has one). Re-uploading a file therefore yields
the same ids, and two identical rows, in one file or in two, are the same event.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from rastro_events.ids import scoped_event_id

__all__ = [
    "FIELDS",
    "Columns",
    "CsvOptionsError",
    "RowDefaults",
    "RowProblem",
    "event_key",
    "parse_mapping",
    "resolve_columns",
    "row_to_event",
    "sniff_delimiter",
]

_PLACES = ("location", "origin", "destination")
_PLACE_PARTS = ("city", "state", "country", "postal_code")
FIELDS: frozenset[str] = frozenset(
    {
        "type",
        "event_id",
        "tracking_number",
        "carrier",
        "service",
        "status_code",
        "description",
        "occurred_at",
        "order_id",
        "invoice_number",
        "invoice_key",
        "promised_date",
        "reason",
        "sales_channel",
        "shipping_cost.amount",  # a decimal with a dot: 12.50
        "shipping_cost.currency",
        *(f"{place}.{part}" for place in _PLACES for part in _PLACE_PARTS),
    }
)
DELIMITERS = (",", ";", "\t", "|")
_NAMESPACE = uuid.UUID("5b0f6f0e-3c1a-5d7e-9a43-7a3e2c0d1b55")  # fixed forever: ids depend on it
_DAY_FIRST = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?)?$")


class CsvOptionsError(ValueError):
    """The options or the header make the whole file unreadable (answered with 422)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field, self.message = field, message


class RowProblem(ValueError):
    """One row cannot become an event; its neighbours still can."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field, self.message = field, message


@dataclass(frozen=True)
class Columns:
    index: dict[str, int]
    """our field → position in the row"""
    width: int
    ignored: tuple[str, ...]


@dataclass(frozen=True)
class RowDefaults:
    event_type: str = "tracking.event"
    timezone: tzinfo | None = None
    """given to timestamps written without an offset (ERP exports rarely carry one)"""


def parse_mapping(text: str | None) -> dict[str, str]:
    if not text:
        return {}
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CsvOptionsError("mapping", f"not valid JSON: {exc.msg}") from None
    if not isinstance(raw, dict) or not all(isinstance(v, str) and v.strip() for v in raw.values()):
        raise CsvOptionsError("mapping", 'must be an object of {"our field": "the file\'s header"}')
    unknown = sorted(set(raw) - FIELDS)
    if unknown:
        raise CsvOptionsError("mapping", f"unknown field(s) {unknown}; known: {sorted(FIELDS)}")
    return {k: v.strip() for k, v in raw.items()}


def sniff_delimiter(header_line: str) -> str:
    """The most frequent of ``, ; TAB |`` outside quotes in the header; ``,`` when none appears."""
    counts = dict.fromkeys(DELIMITERS, 0)
    quoted = False
    for char in header_line:
        if char == '"':
            quoted = not quoted
        elif not quoted and char in counts:
            counts[char] += 1
    best = max(DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ","


def resolve_columns(header: list[str], mapping: dict[str, str]) -> Columns:
    names = [_fold(h) for h in header]
    index: dict[str, int] = {}
    for field, wanted in mapping.items():
        if _fold(wanted) not in names:
            raise CsvOptionsError("mapping", f"{field!r} is mapped to {wanted!r}, which is not a column")
        index[field] = names.index(_fold(wanted))
    taken = set(index.values())
    for position, name in enumerate(names):
        field = name.replace("_", ".", 1) if name.replace("_", ".", 1) in FIELDS else name
        if position not in taken and field in FIELDS and field not in index:
            index[field] = position
    if not index:
        raise CsvOptionsError(
            "(header)", f"no column matches a field; name them as {sorted(FIELDS)} or send a mapping"
        )
    ignored = tuple(h for i, h in enumerate(header) if i not in set(index.values()) and h.strip())
    return Columns(index=index, width=len(header), ignored=ignored)


def row_to_event(cells: list[str], columns: Columns, defaults: RowDefaults) -> dict[str, Any]:
    if len(cells) > columns.width and any(c.strip() for c in cells[columns.width :]):
        raise RowProblem("(row)", f"has {len(cells)} columns; the header has {columns.width}")
    event: dict[str, Any] = {}
    for field, position in columns.index.items():
        value = cells[position].strip() if position < len(cells) else ""
        if not value:
            continue
        if field == "occurred_at":
            value = _timestamp(value, defaults.timezone)
        elif field == "promised_date":
            value = _date(value)
        place, _, part = field.partition(".")
        if part:
            event.setdefault(place, {})[part] = value
        else:
            event[field] = value
    event.setdefault("type", defaults.event_type)
    return event


def event_key(tenant_id: str, event_type: str, content: str, explicit_id: str | None = None) -> uuid.UUID:
    """The row's identity: its own ``event_id`` when given (the id the API would give it too), else its
    validated content."""
    if explicit_id is not None:
        return uuid.UUID(scoped_event_id(tenant_id, explicit_id))
    return uuid.uuid5(_NAMESPACE, f"{tenant_id}\x1f{event_type}\x1f{content}")


def _fold(name: str) -> str:
    return name.strip().lower()


def _timestamp(value: str, zone: tzinfo | None) -> str:
    """ISO 8601 or day-first ``DD/MM/YYYY[ HH:MM[:SS]]``; a zone-less time gets ``zone`` if there is one."""
    match = _DAY_FIRST.match(value)
    try:
        if match:
            day, month, year, hour, minute, second = (int(g) if g else 0 for g in match.groups())
            moment = datetime(year, month, day, hour, minute, second)
        else:
            moment = datetime.fromisoformat(value)
    except ValueError:
        return value  # the event model reports it in its own words
    if moment.tzinfo is None:
        if zone is None:
            raise RowProblem(
                "occurred_at",
                f"{value!r} has no UTC offset: write one (e.g. -03:00) or send the import's timezone "
                "option (e.g. America/Sao_Paulo)",
            )
        moment = moment.replace(tzinfo=zone)
    return moment.isoformat()


def _date(value: str) -> str:
    match = _DAY_FIRST.match(value)
    if match and match.group(4) is None:
        day, month, year = match.group(1, 2, 3)
        return f"{year}-{int(month):02d}-{int(day):02d}"
    return value
