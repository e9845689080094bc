"""The generic JSON push format -> raw tracking events. Pure: no I/O.

For carriers and aggregators Rastro has no adapter for: the same fields as a ``tracking.event`` of
``POST /v1/events``, one event or several::

    {"carrier": "jadlog",                     # default for events that do not name one
     "events": [{"tracking_number": "JD0001", "status_code": "ENTREGUE",
                 "description": "Entregue", "occurred_at": "2026-11-23T14:05:11-03:00",
                 "location": {"city": "Recife", "state": "PE", "country": "BR"},
                 "service": ".Package"}]}

A bare event object (no ``events``) is a batch of one. ``occurred_at`` must carry its offset. Each
event's ``raw`` is the event object as pushed.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from rastro_events import RawTrackingEvent
from rastro_ingest.adapters.carriers.models import CarrierMessage, ParsedShipment, ParseSettings

__all__ = ["parse_tracking"]

_FIELDS = {"tracking_number", "carrier", "service", "status_code", "description", "occurred_at", "location"}


def parse_tracking(
    payload: Any, settings: ParseSettings
) -> tuple[list[ParsedShipment], list[CarrierMessage]]:
    if not isinstance(payload, dict):
        return [], [CarrierMessage("invalid_payload", "expected a JSON object")]
    items = payload.get("events", [payload])
    if not isinstance(items, list):
        return [], [CarrierMessage("invalid_payload", "`events` must be an array")]
    default_carrier = payload.get("carrier") if isinstance(payload.get("carrier"), str) else None
    by_number: dict[str, list[RawTrackingEvent]] = {}
    messages: list[CarrierMessage] = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            messages.append(CarrierMessage("invalid_event", f"events[{i}]: must be an object"))
            continue
        fields = {k: v for k, v in item.items() if k in _FIELDS}
        fields.setdefault("carrier", default_carrier or settings.carrier)
        try:
            event = RawTrackingEvent.model_validate({**fields, "raw": item})
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"])
            number = item.get("tracking_number") if isinstance(item.get("tracking_number"), str) else None
            messages.append(CarrierMessage("invalid_event", f"events[{i}].{where}: {err['msg']}", number))
            continue
        by_number.setdefault(event.tracking_number, []).append(event)
    shipments = [ParsedShipment(n, sorted(evs, key=lambda e: e.occurred_at)) for n, evs in by_number.items()]
    return shipments, messages
