"""Which events a subscription receives (DESIGN §7, §11).

The event types a subscriber sees (the ``type`` in the webhook body and the names used in a
subscription's ``event_types``):

- ``tracking.<status>`` for every normalized tracking event, one per shipment status of DESIGN §5:
  ``tracking.pending``, ``tracking.info_received``, ``tracking.in_transit``,
  ``tracking.out_for_delivery``, ``tracking.failed_attempt``, ``tracking.available_for_pickup``,
  ``tracking.delivered``, ``tracking.exception``, ``tracking.returning``, ``tracking.returned``,
  ``tracking.expired``, ``tracking.cancelled``;
- ``eta.updated`` for every new ETA prediction.

``shipment.*`` is reserved for shipment-level events (state changes) and accepted in filters.

A filter entry (pattern) is one of:

- ``*`` — every event;
- ``<prefix>.*`` — every type that starts with ``<prefix>.``, e.g. ``tracking.*``, ``eta.*``;
- an exact type, e.g. ``tracking.delivered``;
- a tracking type narrowed to one substatus of the taxonomy, ``tracking.<substatus>``, e.g.
  ``tracking.exception.route_deviation`` or ``tracking.out_for_delivery.nearby`` (own-fleet geofence
  alerts): the ``tracking.exception`` events whose substatus is ``exception.route_deviation``.

Types are ``<family>.<name>``, so a bare ``delivered`` is refused by ``validate_event_types`` with a
hint rather than accepted as a filter that never matches.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from rastro_events.taxonomy import SUBSTATUSES

__all__ = [
    "EVENT_TYPES",
    "RESERVED_FAMILIES",
    "TRACKING_STATUSES",
    "WILDCARD",
    "InvalidEventFilter",
    "matches",
    "validate_event_types",
    "validate_subscribable",
]

WILDCARD = "*"

# Mirrors rastro_events.taxonomy.Status; a unit test keeps the two in step.
TRACKING_STATUSES: tuple[str, ...] = (
    "pending",
    "info_received",
    "in_transit",
    "out_for_delivery",
    "failed_attempt",
    "available_for_pickup",
    "delivered",
    "exception",
    "returning",
    "returned",
    "expired",
    "cancelled",
)
EVENT_TYPES: frozenset[str] = frozenset({f"tracking.{s}" for s in TRACKING_STATUSES} | {"eta.updated"})
# Families accepted in filters before we send any of their types, so subscribers can opt in early.
RESERVED_FAMILIES: tuple[str, ...] = ("shipment",)
MAX_PATTERNS = 100

_SEGMENT = r"[a-z0-9_]+"
_PATTERN = re.compile(rf"{_SEGMENT}(\.{_SEGMENT})*\.(\*|{_SEGMENT})")


class InvalidEventFilter(ValueError):
    """An ``event_types`` entry that is not ``*``, ``<prefix>.*`` or ``<family>.<name>``."""


SUBSTATUS_TYPES: frozenset[str] = frozenset(f"tracking.{s}" for s in SUBSTATUSES)
"""``tracking.<substatus>`` filter entries: one substatus of a tracking type"""


def matches(event_types: Sequence[str], event_type: str, substatus: str | None = None) -> bool:
    """Whether an event of ``event_type`` (and ``substatus``, for a tracking event) goes to a subscription
    filtering on ``event_types``."""
    return any(_matches_one(pattern, event_type, substatus) for pattern in event_types)


def _matches_one(pattern: str, event_type: str, substatus: str | None = None) -> bool:
    if pattern == WILDCARD:
        return True
    if pattern.endswith(".*"):
        return event_type.startswith(pattern[:-1])
    if substatus is not None and pattern in SUBSTATUS_TYPES:
        return pattern == f"tracking.{substatus}" and event_type == f"tracking.{substatus.split('.', 1)[0]}"
    return pattern == event_type


def validate_event_types(event_types: Sequence[str]) -> tuple[str, ...]:
    """The filter as given, once every entry is well formed; raises ``InvalidEventFilter``."""
    if isinstance(event_types, str):
        raise InvalidEventFilter('event_types is a list, e.g. ["*"] or ["tracking.delivered"]')
    if not event_types:
        raise InvalidEventFilter('event_types may not be empty; use ["*"] for every event')
    for pattern in event_types:
        if pattern != WILDCARD and not _PATTERN.fullmatch(pattern):
            raise InvalidEventFilter(_explain(pattern))
    return tuple(event_types)


def _explain(pattern: str) -> str:
    if pattern in TRACKING_STATUSES:
        return f"unknown event type {pattern!r}; did you mean 'tracking.{pattern}'?"
    return f"event type filter {pattern!r} is not '*', '<prefix>.*' or '<family>.<name>'"


def validate_subscribable(event_types: Sequence[str]) -> tuple[str, ...]:
    """``validate_event_types``, and every entry names or covers a type we send (or a reserved family),
    so a typo such as ``tracking.deliverd`` is refused rather than kept as a filter that never matches."""
    patterns = validate_event_types(event_types)
    if len(patterns) > MAX_PATTERNS:
        raise InvalidEventFilter(f"event_types has more than {MAX_PATTERNS} entries")
    for pattern in patterns:
        if not _covers_something(pattern):
            raise InvalidEventFilter(f"event type filter {pattern!r} matches no event type we send")
    return patterns


def _covers_something(pattern: str) -> bool:
    if pattern == WILDCARD or any(pattern.startswith(f"{family}.") for family in RESERVED_FAMILIES):
        return True
    if pattern in SUBSTATUS_TYPES:
        return True
    return any(_matches_one(pattern, event_type) for event_type in EVENT_TYPES)
