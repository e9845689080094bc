"""Deterministic ids for carrier events, so a re-poll or a re-push of the same event has no new effect.

The same (tenant, carrier, tracking number, code, time, place) always gets the same id; every downstream
inbox deduplicates by event id, so seeing an event twice publishes it at most once in effect.
"""

from __future__ import annotations

import hashlib

from rastro_events import RawTrackingEvent

__all__ = ["carrier_event_id"]

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def carrier_event_id(tenant_id: str, event: RawTrackingEvent) -> str:
    """``ce_`` + 26 Crockford base32 characters of a SHA-256 over the event's identity.

    The time is compared as an instant (UTC), so the same event written with another offset is the same.
    """
    place = event.location
    parts = (
        tenant_id,
        (event.carrier or "").strip().lower(),
        event.tracking_number.strip().upper(),
        event.status_code.strip().upper(),
        repr(event.occurred_at.timestamp()),
        (place.city or "").strip().lower() if place else "",
        (place.state or "").strip().lower() if place else "",
    )
    digest = int.from_bytes(hashlib.sha256("\x1f".join(parts).encode()).digest()[:17], "big")
    return "ce_" + "".join(_CROCKFORD[(digest >> shift) & 31] for shift in range(125, -1, -5))
