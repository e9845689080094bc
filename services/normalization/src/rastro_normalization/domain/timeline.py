"""A shipment's timeline: its entries, their order, duplicates and carrier corrections.

The timeline is a *set* of entries kept as a tuple in event-time order:

- the same ``event_id`` twice is one entry (the event id is the idempotency key);
- duplicate carrier events — same carrier, code, instant (whatever the UTC offset) and place, told
  twice by webhook and polling, or by a carrier re-sending its history — collapse into one entry: the
  first one seen stays and the copy changes nothing;
- entries are sorted by ``occurred_at``; entries of the same instant by carrier, code and place, then
  ``event_id``. Copies of one carrier event share everything but the event id, so whichever copy was
  kept sits at the same place and the fold (state machine) does not depend on arrival order;
- an entry whose ``effect`` is ``withdraw_previous`` (Correios ``EST``) withdraws the nearest earlier
  entry *of the same carrier* that is still in force. Both stay in the timeline; the withdrawn one is
  marked ``withdrawn=True`` and no longer counts for the status. Marks are recomputed from the whole
  set on every change, so they too are independent of arrival order.
"""

from __future__ import annotations

import bisect
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from functools import lru_cache

from rastro_events.taxonomy import Status, is_valid_substatus
from rastro_normalization.domain.codes import EFFECTS, WITHDRAW_PREVIOUS, normalize_code

__all__ = [
    "Place",
    "TimelineEntry",
    "add_entry",
    "build_timeline",
    "duplicate_key",
    "find_duplicate",
    "in_force",
    "order_key",
]


@lru_cache(maxsize=4096)  # the same carrier names and cities come back on every event
def _fold_text(value: str | None) -> str:
    if not value:
        return ""
    decomposed = unicodedata.normalize("NFKD", value.casefold())
    return " ".join("".join(c for c in decomposed if not unicodedata.combining(c)).split())


@dataclass(frozen=True, slots=True)
class Place:
    """Where an event happened, as far as the carrier said."""

    city: str | None = None
    state: str | None = None
    country: str | None = None

    def key(self) -> tuple[str, str, str]:
        """Comparison form: ``"São Paulo"`` and ``"SAO  PAULO"`` are the same place."""
        return (_fold_text(self.city), _fold_text(self.state), _fold_text(self.country))


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    """One normalized event of a shipment.

    ``withdrawn`` is computed by the timeline (see module docstring); leave it ``False`` when creating one.
    """

    event_id: str
    carrier: str | None
    status_code: str
    status: Status
    substatus: str
    description: str | None
    occurred_at: datetime
    location: Place | None = None
    effect: str | None = None
    service: str | None = None
    withdrawn: bool = False

    def __post_init__(self) -> None:
        if not self.event_id:
            raise ValueError("a timeline entry needs an event_id")
        if self.occurred_at.tzinfo is None or self.occurred_at.utcoffset() is None:
            raise ValueError(f"occurred_at must be timezone-aware, got {self.occurred_at!r}")
        if not is_valid_substatus(self.status, self.substatus):
            raise ValueError(f"substatus {self.substatus!r} is not a {self.status} substatus")
        if self.effect is not None and self.effect not in EFFECTS:
            raise ValueError(f"unknown effect {self.effect!r}")

    @property
    def counts_for_status(self) -> bool:
        """Whether the state machine folds this entry: not withdrawn and not itself a correction."""
        return not self.withdrawn and self.effect is None


DuplicateKey = tuple[str, str, datetime, tuple[str, str, str]]


def duplicate_key(entry: TimelineEntry) -> DuplicateKey:
    """Same carrier, code, instant (any UTC offset) and place: the same carrier event."""
    place = entry.location.key() if entry.location is not None else ("", "", "")
    return (
        _fold_text(entry.carrier),
        normalize_code(entry.status_code, entry.carrier),
        entry.occurred_at,
        place,
    )


def order_key(entry: TimelineEntry) -> tuple[datetime, str, str, tuple[str, str, str], str]:
    """Timeline order: event time, then (same instant) carrier, code and place, then event id."""
    carrier, code, at, place = duplicate_key(entry)
    return (at, carrier, code, place, entry.event_id)


def find_duplicate(timeline: tuple[TimelineEntry, ...], entry: TimelineEntry) -> TimelineEntry | None:
    """The entry already in ``timeline`` that ``entry`` repeats (same event id, or same carrier event)."""
    key: DuplicateKey | None = None
    for existing in timeline:
        if existing.event_id == entry.event_id:
            return existing
        # Same instant first: it is cheap and rules out nearly every entry before folding text.
        if existing.occurred_at == entry.occurred_at:
            key = key or duplicate_key(entry)
            if duplicate_key(existing) == key:
                return existing
    return None


def add_entry(timeline: tuple[TimelineEntry, ...], entry: TimelineEntry) -> tuple[TimelineEntry, ...]:
    """``timeline`` with ``entry`` added; returns ``timeline`` itself when nothing changes."""
    if find_duplicate(timeline, entry) is not None:
        return timeline
    entry = replace(entry, withdrawn=False) if entry.withdrawn else entry
    kept = list(timeline)
    if not kept or order_key(kept[-1]) < order_key(entry):
        kept.append(entry)  # the usual case: events arrive in time order
    else:
        bisect.insort(kept, entry, key=order_key)
    return _mark_withdrawals(kept)


def build_timeline(entries: Iterable[TimelineEntry]) -> tuple[TimelineEntry, ...]:
    """A timeline made of ``entries`` in any order, with the same rules as adding them one by one."""
    timeline: tuple[TimelineEntry, ...] = ()
    for entry in entries:
        timeline = add_entry(timeline, entry)
    return timeline


def in_force(timeline: tuple[TimelineEntry, ...]) -> tuple[TimelineEntry, ...]:
    """The entries that count for the status, in time order."""
    return tuple(e for e in timeline if e.counts_for_status)


def _mark_withdrawals(ordered: list[TimelineEntry]) -> tuple[TimelineEntry, ...]:
    if not any(entry.effect == WITHDRAW_PREVIOUS or entry.withdrawn for entry in ordered):
        return tuple(ordered)  # no correction, and nothing marked: the marks are all False already
    withdrawn: set[int] = set()
    standing: list[int] = []  # indexes of entries still in force, in time order
    for index, entry in enumerate(ordered):
        if entry.effect != WITHDRAW_PREVIOUS:
            standing.append(index)
            continue
        carrier = _fold_text(entry.carrier)
        for position in range(len(standing) - 1, -1, -1):
            candidate = ordered[standing[position]]
            if _fold_text(candidate.carrier) == carrier and candidate.effect is None:
                withdrawn.add(standing.pop(position))
                break
    return tuple(
        entry if entry.withdrawn == (index in withdrawn) else replace(entry, withdrawn=index in withdrawn)
        for index, entry in enumerate(ordered)
    )
