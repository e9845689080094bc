"""Which payload model reads which CloudEvents ``type``, and how one major of an event becomes another.

An event name (``tracking.raw``) may have several majors registered at once (``…v1`` and ``…v2``) while
a breaking change rolls out (docs/upgrades.md). Converters are registered per ``(name, from_major)``:
an *upcaster* turns a vN payload into vN+1 (every reader of vN+1 needs it, for stored vN records), a
*downcaster* turns vN+1 back into vN (only a producer that dual-publishes needs it, and only where it
is well defined). Both work on the payload as a JSON-form dict, every field present, as
``model_dump(mode="json")`` gives it, and return a dict the other major validates.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rastro_events.payloads import (
    ApiKeyRecord,
    EtaPredicted,
    InvoiceIssued,
    NormalizedTrackingEvent,
    OrderCancelled,
    OrderCreated,
    OrderShipped,
    Payload,
    RawTrackingEvent,
    ShipmentChanged,
    ShipmentPosition,
    TelemetryPosition,
)

__all__ = [
    "PAYLOAD_TYPES",
    "Converter",
    "ce_type_of",
    "downcaster_for",
    "majors_of",
    "model_for",
    "model_of",
    "parse_ce_type",
    "register",
    "register_downcaster",
    "register_upcaster",
    "unregister",
    "upcaster_for",
]

Converter = Callable[[dict[str, Any]], dict[str, Any]]
"""One step between adjacent majors of an event: a JSON-form payload dict in, the other major's out."""

PAYLOAD_TYPES: dict[str, type[Payload]] = {
    m.ce_type(): m
    for m in (
        OrderCreated,
        InvoiceIssued,
        OrderShipped,
        OrderCancelled,
        RawTrackingEvent,
        NormalizedTrackingEvent,
        ShipmentChanged,
        EtaPredicted,
        ApiKeyRecord,
        TelemetryPosition,
        ShipmentPosition,
    )
}
_UPCASTERS: dict[tuple[str, int], Converter] = {}  # (name, N) -> vN to vN+1
_DOWNCASTERS: dict[tuple[str, int], Converter] = {}  # (name, N) -> vN to vN-1


def model_for(ce_type: str) -> type[Payload] | None:
    return PAYLOAD_TYPES.get(ce_type)


def ce_type_of(name: str, major: int) -> str:
    return f"rastro.{name}.v{major}"


def parse_ce_type(ce_type: str) -> tuple[str, int] | None:
    """``rastro.tracking.raw.v2`` → ``("tracking.raw", 2)``; None for anything not of that shape."""
    prefix, _, rest = ce_type.partition(".")
    name, _, version = rest.rpartition(".")
    if prefix != "rastro" or not name or version[:1] != "v" or not version[1:].isdigit():
        return None
    return name, int(version[1:])


def model_of(name: str, major: int) -> type[Payload] | None:
    return PAYLOAD_TYPES.get(ce_type_of(name, major))


def majors_of(name: str) -> tuple[int, ...]:
    """The majors of ``name`` this code has a model for, oldest first."""
    return tuple(sorted(m.major for m in PAYLOAD_TYPES.values() if m.event_name == name))


def register(model: type[Payload]) -> type[Payload]:
    """Make ``model`` read its ``type`` (usable as a class decorator). A new major of an existing name
    is registered beside the old one, never instead of it: stored records of the old one must still read."""
    current = PAYLOAD_TYPES.setdefault(model.ce_type(), model)
    if current is not model:
        raise ValueError(f"{model.ce_type()} is already read by {current.__qualname__}")
    return model


def register_upcaster(name: str, from_major: int, upcaster: Converter) -> Converter:
    """``upcaster`` turns a ``from_major`` payload of ``name`` into ``from_major + 1``."""
    return _register(_UPCASTERS, name, from_major, upcaster)


def register_downcaster(name: str, from_major: int, downcaster: Converter) -> Converter:
    """``downcaster`` turns a ``from_major`` payload of ``name`` into ``from_major - 1``. Register one only
    if it is total (every vN+1 payload has a vN form) and gives back what the vN producer would have sent
    for the same fact: ``downcast(upcast(old)) == old``."""
    if from_major < 2:
        raise ValueError("a downcaster goes from a major >= 2 to the one before")
    return _register(_DOWNCASTERS, name, from_major, downcaster)


def upcaster_for(name: str, from_major: int) -> Converter | None:
    return _UPCASTERS.get((name, from_major))


def downcaster_for(name: str, from_major: int) -> Converter | None:
    return _DOWNCASTERS.get((name, from_major))


def unregister(*models: type[Payload]) -> None:
    """Forget models and every converter of their names (tests that register a type of their own)."""
    for model in models:
        if PAYLOAD_TYPES.get(model.ce_type()) is model:
            del PAYLOAD_TYPES[model.ce_type()]
        for table in (_UPCASTERS, _DOWNCASTERS):
            for key in [k for k in table if k[0] == model.event_name]:
                del table[key]


def _register(table: dict[tuple[str, int], Converter], name: str, major: int, fn: Converter) -> Converter:
    current = table.setdefault((name, major), fn)
    if current is not fn:
        raise ValueError(f"{name} v{major} already has a converter that way")
    return fn
