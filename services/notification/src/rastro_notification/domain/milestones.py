"""Which shipment events make a customer message (seed 000, "comunicação proativa"), and the key that
makes sure a shipment's customer hears about each milestone once.

=====================  ============================================================================
milestone              made by
=====================  ============================================================================
``shipped``            the first ``in_transit`` event (carrier pickup or later progress)
``out_for_delivery``   an ``out_for_delivery`` event
``failed_attempt``     a ``failed_attempt`` event
``delivered``          a ``delivered`` event
``exception``          an ``exception`` event
``eta_changed``        an ETA whose expected date differs from the last one seen for the shipment
=====================  ============================================================================

The dedupe key is the milestone itself, except for ``eta_changed`` whose key carries the new expected
date (``eta_changed:2026-12-01``): a second change to another date is news, the same date twice is not.
A unique constraint on ``(tenant, channel, dedupe_key)`` — the key includes the tracking number —
makes the rule hold whatever the order or number of events (a second ``out_for_delivery`` after a
failed attempt does not make a second message).
"""

from __future__ import annotations

from datetime import date

__all__ = [
    "CUSTOMER_MILESTONES",
    "ETA_CHANGED",
    "LOCALES",
    "dedupe_key",
    "eta_change",
    "milestone_for",
    "pick_locale",
]

ETA_CHANGED = "eta_changed"
_BY_STATUS = {
    "in_transit": "shipped",
    "out_for_delivery": "out_for_delivery",
    "failed_attempt": "failed_attempt",
    "delivered": "delivered",
    "exception": "exception",
}
CUSTOMER_MILESTONES: tuple[str, ...] = (*_BY_STATUS.values(), ETA_CHANGED)
LOCALES: tuple[str, ...] = ("pt-BR", "en")


def milestone_for(status: str) -> str | None:
    """The customer milestone a tracking status makes, or None."""
    return _BY_STATUS.get(status)


def eta_change(previous: date | None, expected: date) -> bool:
    """An ETA is news when an earlier one was seen and the expected date moved."""
    return previous is not None and previous != expected


def dedupe_key(tracking_number: str, milestone: str, expected: date | None = None) -> str:
    if milestone == ETA_CHANGED:
        if expected is None:
            raise ValueError("an eta_changed key names the new expected date")
        return f"{tracking_number}/{milestone}:{expected.isoformat()}"
    return f"{tracking_number}/{milestone}"


def pick_locale(*candidates: str | None) -> str:
    """The first supported locale among the candidates (recipient's, tenant's), else pt-BR."""
    for candidate in candidates:
        if candidate is None:
            continue
        for locale in LOCALES:
            if candidate.lower() == locale.lower():
                return locale
        for locale in LOCALES:
            if candidate.lower().split("-")[0] == locale.lower().split("-")[0]:
                return locale
    return LOCALES[0]
