"""Reading what upstream systems post into typed payloads.

An incoming event names its kind in ``type``: ``tracking.event`` (a carrier event) or one of the
order events. Each is validated alone, so one bad event in a batch never spoils its neighbours.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from rastro_events import InvoiceIssued, OrderCancelled, OrderCreated, OrderShipped, Payload, RawTrackingEvent

__all__ = ["EVENT_KINDS", "Accepted", "Rejected", "read_event", "read_events"]

EVENT_KINDS: dict[str, type[Payload]] = {
    "tracking.event": RawTrackingEvent,
    "order.created": OrderCreated,
    "invoice.issued": InvoiceIssued,
    "order.shipped": OrderShipped,
    "order.cancelled": OrderCancelled,
}
_ENVELOPE_FIELDS = {"type", "event_id"}


@dataclass(frozen=True)
class Accepted:
    index: int
    payload: Payload
    event_id: str | None


@dataclass(frozen=True)
class Rejected:
    index: int
    errors: list[dict[str, str]]


# ``type`` and ``event_id`` belong to the request, not to the payload: no payload may have a field of
# those names, so an item is validated as it came (payloads ignore keys they do not know).
if any(_ENVELOPE_FIELDS & model.model_fields.keys() for model in EVENT_KINDS.values()):
    raise TypeError(f"payload fields must not be named {sorted(_ENVELOPE_FIELDS)}")


def read_event(index: int, item: Any) -> Accepted | Rejected:
    if not isinstance(item, dict):
        return Rejected(index, [{"field": "(event)", "message": "an event must be a JSON object"}])
    kind = item.get("type")
    model = EVENT_KINDS.get(kind) if isinstance(kind, str) else None
    if model is None:
        known = ", ".join(sorted(EVENT_KINDS))
        return Rejected(
            index, [{"field": "type", "message": f"unknown event type {kind!r}; expected one of {known}"}]
        )
    event_id = item.get("event_id")
    if event_id is not None and (not isinstance(event_id, str) or not 1 <= len(event_id) <= 128):
        return Rejected(index, [{"field": "event_id", "message": "must be a string of 1 to 128 characters"}])
    try:
        payload = model.__pydantic_validator__.validate_python(item)
    except ValidationError as exc:
        return Rejected(index, [field_error(e) for e in exc.errors()])
    nul = _nul_field(item)
    if nul is not None:  # Postgres stores no NUL in text or jsonb: refused here, by index, not the batch
        return Rejected(index, [{"field": nul, "message": "must not contain NUL characters (\\u0000)"}])
    return Accepted(index, payload, event_id)


def read_events(items: list[Any]) -> tuple[list[Accepted], list[Rejected]]:
    accepted: list[Accepted] = []
    rejected: list[Rejected] = []
    for i, item in enumerate(items):
        result = read_event(i, item)
        (accepted if isinstance(result, Accepted) else rejected).append(result)  # type: ignore[arg-type]
    return accepted, rejected


def _nul_field(value: Any, path: str = "") -> str | None:
    """The first field (``location.city``, ``raw.items.0``) whose name or text holds a NUL, if any."""
    if isinstance(value, str):
        return (path or "(event)") if "\x00" in value else None
    if isinstance(value, dict):
        children: Iterable[tuple[Any, Any]] = value.items()
    elif isinstance(value, list):
        children = enumerate(value)
    else:
        return None
    for key, child in children:
        where = f"{path}.{key}" if path else str(key)
        if "\x00" in str(key):
            return where.replace("\x00", "\\u0000")  # the answer (maybe stored) holds no NUL either
        found = _nul_field(child, where)
        if found is not None:
            return found
    return None


def field_error(err: Any, whole: str = "(event)") -> dict[str, str]:
    """One pydantic error as ``{"field", "message"}``; ``whole`` names an error of the item itself."""
    loc = ".".join(str(p) for p in err.get("loc", ())) or whole
    return {"field": loc, "message": err.get("msg", "invalid")}
