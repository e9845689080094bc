"""The shipment state machine (DESIGN §5): a pure function of the set of timeline entries.

``apply`` adds one entry to the timeline (see ``timeline.py`` for duplicates and carrier corrections)
and recomputes the state by folding every entry still in force in timeline order (event time; ties
broken by content, then event id). Because the fold always starts from the sorted set, the same events
in any arrival order give the same state, and applying an entry twice changes nothing.

The fold keeps a *floor*: the progress rank reached so far. For one entry, in time order:

1. **Terminal** (``delivered``, ``returned``, ``cancelled``): nothing moves the state, except that
   ``returning`` or ``returned`` may follow ``delivered``.
2. **Side states** (``exception``, and ``expired``, which says nothing about progress either) are
   entered from any non-terminal state and leave the floor where it was.
3. **Progress**: an entry whose rank is at least the floor moves the state (equal rank too, so a
   later substatus of the same status wins) and raises the floor; a lower one joins the timeline only.
   So an event older than the current state never moves it back, ``in_transit`` never goes back to
   ``info_received``, and an exception is left by any later entry that is progress from where the
   shipment stood before the exception.

Rank vs time in the delivery stage: ``out_for_delivery`` (40), ``available_for_pickup`` (35) and
``failed_attempt`` (30) share one progress rank, the lowest of the three. Among them the *later event
wins*: courier out, nobody home, out again, parcel waiting at the branch — each is the truth at its own
time, and a delivery that took three tries ends ``out_for_delivery`` before it ends ``delivered``.
Ranks still order the stage against the rest: an ``in_transit`` event after an attempt (the parcel
moved to the branch) joins the timeline but keeps the shipment in the delivery stage.

Where late arrivals meet terminals: the state is what the events say in event order, so a late event
dated *before* the terminal one can replace it. A ``cancelled`` dated before a ``delivered`` that
arrives after it turns ``delivered`` into ``cancelled`` (the earliest terminal wins); a ``returning``
dated before it makes the delivery a step backwards (rank 50 < 60). With order independence no other
answer exists: the same two events the other way round must give the same state. Told in event order,
a terminal state is only ever left for a return after delivery (the property tests check both).
A carrier correction (``EST``) that withdraws a ``delivered`` entry is the one deliberate way back out
of a terminal state: the carrier said the delivery did not happen.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from rastro_events.taxonomy import RANK, TERMINAL, Status
from rastro_normalization.domain.timeline import Place, TimelineEntry, add_entry, build_timeline, in_force

__all__ = [
    "DELIVERY_STAGE",
    "RETURNS",
    "SIDE_STATES",
    "Place",
    "Shipment",
    "StatusChange",
    "TimelineEntry",
    "apply",
    "build_shipment",
    "new_shipment",
]

PENDING_SUBSTATUS = "pending.no_information"
DELIVERY_STAGE: frozenset[Status] = frozenset(
    {Status.OUT_FOR_DELIVERY, Status.FAILED_ATTEMPT, Status.AVAILABLE_FOR_PICKUP}
)
SIDE_STATES: frozenset[Status] = frozenset({Status.EXCEPTION, Status.EXPIRED})
RETURNS: frozenset[Status] = frozenset({Status.RETURNING, Status.RETURNED})
_DELIVERY_STAGE_RANK = min(RANK[status] for status in DELIVERY_STAGE)


@dataclass(frozen=True, slots=True)
class StatusChange:
    old_status: Status
    new_status: Status
    substatus: str
    occurred_at: datetime
    """Event time since which the shipment is in ``new_status``/``substatus``."""


@dataclass(frozen=True, slots=True)
class Shipment:
    tenant_id: str
    tracking_number: str
    carrier: str | None = None
    service: str | None = None
    status: Status = Status.PENDING
    substatus: str = PENDING_SUBSTATUS
    timeline: tuple[TimelineEntry, ...] = ()
    created_at: datetime | None = None
    """Event time of the first entry."""
    shipped_at: datetime | None = None
    """First ``in_transit.picked_up`` entry, else first ``in_transit`` one."""
    delivered_at: datetime | None = None
    updated_at: datetime | None = None
    """Event time of the last change of status or substatus."""


def new_shipment(tenant_id: str, tracking_number: str) -> Shipment:
    return Shipment(tenant_id=tenant_id, tracking_number=tracking_number)


def apply(shipment: Shipment, entry: TimelineEntry) -> tuple[Shipment, StatusChange | None]:
    """Fold one entry into a shipment; older entries join the timeline without moving the state back.

    Returns the shipment (the same object when the entry changes nothing: same event id, or a
    duplicate carrier event) and a ``StatusChange`` when the status or substatus moved.
    """
    timeline = add_entry(shipment.timeline, entry)
    if timeline is shipment.timeline:
        return shipment, None
    updated = _derive(shipment.tenant_id, shipment.tracking_number, timeline)
    if (updated.status, updated.substatus) == (shipment.status, shipment.substatus):
        return updated, None
    change = StatusChange(
        old_status=shipment.status,
        new_status=updated.status,
        substatus=updated.substatus,
        occurred_at=updated.updated_at or entry.occurred_at,
    )
    return updated, change


def build_shipment(tenant_id: str, tracking_number: str, entries: Iterable[TimelineEntry]) -> Shipment:
    """The shipment these entries make, whatever their order (e.g. loading a stored timeline)."""
    return _derive(tenant_id, tracking_number, build_timeline(entries))


@dataclass(frozen=True, slots=True)
class _State:
    status: Status = Status.PENDING
    substatus: str = PENDING_SUBSTATUS
    floor: int = RANK[Status.PENDING]
    since: datetime | None = None
    delivered_at: datetime | None = None


def _progress_rank(status: Status) -> int:
    rank: int = _DELIVERY_STAGE_RANK if status in DELIVERY_STAGE else RANK[status]
    return rank


def _accepts(state: _State, entry: TimelineEntry) -> bool:
    if state.status in TERMINAL:
        return state.status is Status.DELIVERED and entry.status in RETURNS
    if entry.status in SIDE_STATES:
        return True
    return _progress_rank(entry.status) >= state.floor


def _step(state: _State, entry: TimelineEntry) -> _State:
    if not _accepts(state, entry) or (entry.status, entry.substatus) == (state.status, state.substatus):
        return state
    floor = state.floor if entry.status in SIDE_STATES else _progress_rank(entry.status)
    delivered_at = state.delivered_at
    if delivered_at is None and entry.status is Status.DELIVERED:
        delivered_at = entry.occurred_at
    return _State(entry.status, entry.substatus, floor, entry.occurred_at, delivered_at)


def _derive(tenant_id: str, tracking_number: str, timeline: tuple[TimelineEntry, ...]) -> Shipment:
    counted = in_force(timeline)
    state = _State()
    for entry in counted:
        state = _step(state, entry)
    return Shipment(
        tenant_id=tenant_id,
        tracking_number=tracking_number,
        carrier=_latest(e.carrier for e in timeline),
        service=_latest(e.service for e in timeline),
        status=state.status,
        substatus=state.substatus,
        timeline=timeline,
        created_at=timeline[0].occurred_at if timeline else None,
        shipped_at=_shipped_at(counted),
        delivered_at=state.delivered_at,
        updated_at=state.since,
    )


def _latest(values: Iterable[str | None]) -> str | None:
    found: str | None = None
    for value in values:
        if value:
            found = value
    return found


def _shipped_at(counted: tuple[TimelineEntry, ...]) -> datetime | None:
    picked_up = (e.occurred_at for e in counted if e.substatus == "in_transit.picked_up")
    moving = (e.occurred_at for e in counted if e.status is Status.IN_TRANSIT)
    return next(picked_up, None) or next(moving, None)
