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
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

from rastro_events.taxonomy import RANK, TERMINAL, Status
from rastro_normalization.domain.timeline import Place, TimelineEntry, add_entry, build_timeline

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
# Hot path: an enum member read through its class goes through a descriptor; these are plain globals.
_DELIVERED, _IN_TRANSIT = Status.DELIVERED, Status.IN_TRANSIT
_PROGRESS_RANK: dict[Status, int] = {
    status: _DELIVERY_STAGE_RANK if status in DELIVERY_STAGE else RANK[status] for status in Status
}


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
    progress: _Fold | None = field(default=None, compare=False, repr=False)
    """Where the fold of ``timeline`` ended (None: unknown, ``apply`` folds the whole timeline again)."""


def new_shipment(tenant_id: str, tracking_number: str) -> Shipment:
    return Shipment(tenant_id=tenant_id, tracking_number=tracking_number, progress=_START)


def apply(shipment: Shipment, entry: TimelineEntry) -> tuple[Shipment, StatusChange | None]:
    """Fold one entry into a shipment; older entries join the timeline without moving the state back.

    Returns the shipment (the same object when the entry changes nothing: same event id, or a
    duplicate carrier event) and a ``StatusChange`` when the status or substatus moved.
    """
    timeline = add_entry(shipment.timeline, entry)
    if timeline is shipment.timeline:
        return shipment, None
    if _appended(shipment, timeline):
        updated = _extend(shipment, timeline)  # the usual case: one more event, later than the rest
    else:
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


class _State(NamedTuple):  # a tuple: built at every step of every fold, so cheap to build
    status: Status = Status.PENDING
    substatus: str = PENDING_SUBSTATUS
    floor: int = RANK[Status.PENDING]
    since: datetime | None = None
    delivered_at: datetime | None = None


class _Fold(NamedTuple):
    """The fold's end: the state, and the first pickup and first transit among the entries in force."""

    state: _State
    picked_up_at: datetime | None = None
    moving_at: datetime | None = None

    def then(self, entry: TimelineEntry) -> _Fold:
        """The fold one entry (in force, later than every entry so far) further."""
        picked_up_at, moving_at = self.picked_up_at, self.moving_at
        if picked_up_at is None and entry.substatus == PICKED_UP:
            picked_up_at = entry.occurred_at
        if moving_at is None and entry.status is _IN_TRANSIT:
            moving_at = entry.occurred_at
        return _Fold(_step(self.state, entry), picked_up_at, moving_at)


PICKED_UP = "in_transit.picked_up"
_START = _Fold(_State())


def _appended(shipment: Shipment, timeline: tuple[TimelineEntry, ...]) -> bool:
    """Whether ``timeline`` is ``shipment``'s with one entry that counts added after all the others:
    then the fold so far stands and only goes one step further (a correction, or an entry that sorts
    earlier, can change what came before it and needs the whole fold)."""
    last = timeline[-1]
    return (
        shipment.progress is not None
        and len(timeline) == len(shipment.timeline) + 1
        and last.effect is None
        and not last.withdrawn
        and timeline[:-1] == shipment.timeline
    )


def _extend(shipment: Shipment, timeline: tuple[TimelineEntry, ...]) -> Shipment:
    assert shipment.progress is not None
    entry = timeline[-1]
    fold = shipment.progress.then(entry)
    return _shipment(
        shipment.tenant_id,
        shipment.tracking_number,
        timeline,
        fold,
        carrier=entry.carrier or shipment.carrier,
        service=entry.service or shipment.service,
    )


def _progress_rank(status: Status) -> int:
    return _PROGRESS_RANK[status]


def _accepts(state: _State, entry: TimelineEntry) -> bool:
    if state.status in TERMINAL:
        return state.status is _DELIVERED and entry.status in RETURNS
    if entry.status in SIDE_STATES:
        return True
    return _progress_rank(entry.status) >= state.floor


def _step(state: _State, entry: TimelineEntry) -> _State:
    if not _accepts(state, entry) or (entry.status, entry.substatus) == (state.status, state.substatus):
        return state
    floor = state.floor if entry.status in SIDE_STATES else _progress_rank(entry.status)
    delivered_at = state.delivered_at
    if delivered_at is None and entry.status is _DELIVERED:
        delivered_at = entry.occurred_at
    return _State(entry.status, entry.substatus, floor, entry.occurred_at, delivered_at)


def _derive(tenant_id: str, tracking_number: str, timeline: tuple[TimelineEntry, ...]) -> Shipment:
    fold = _START
    for entry in timeline:
        if entry.counts_for_status:
            fold = fold.then(entry)
    return _shipment(
        tenant_id,
        tracking_number,
        timeline,
        fold,
        carrier=_latest(e.carrier for e in timeline),
        service=_latest(e.service for e in timeline),
    )


def _shipment(
    tenant_id: str,
    tracking_number: str,
    timeline: tuple[TimelineEntry, ...],
    fold: _Fold,
    *,
    carrier: str | None,
    service: str | None,
) -> Shipment:
    state = fold.state
    return Shipment(
        tenant_id=tenant_id,
        tracking_number=tracking_number,
        carrier=carrier,
        service=service,
        status=state.status,
        substatus=state.substatus,
        timeline=timeline,
        created_at=timeline[0].occurred_at if timeline else None,
        shipped_at=fold.picked_up_at or fold.moving_at,
        delivered_at=state.delivered_at,
        updated_at=state.since,
        progress=fold,
    )


def _latest(values: Iterable[str | None]) -> str | None:
    found: str | None = None
    for value in values:
        if value:
            found = value
    return found
