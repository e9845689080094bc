"""Migration windows: while a breaking change of an event rolls out, every major of it is published.

``RASTRO_EVENT_MIGRATIONS="tracking.raw:1->2"`` opens a window for ``tracking.raw`` from v1 to v2
(several, comma-separated). Inside it (docs/upgrades.md):

- a producer publishes each event in every major of the window it knows, with THE SAME event id, each
  to its major's topic; always in the oldest one, which every reader of the window reads;
- a consumer reads the topics of every major it can read (those it handles, and older ones through
  upcasters) and its inbox, keyed by event id, lets it handle each event once, in whichever major
  arrives first;
- a record of a major of the window that a consumer cannot read (a v2 twin reaching a v1-only
  consumer through a retry or replay topic it shares with newer instances) is skipped, not
  dead-lettered, provided the consumer reads the window's oldest major: the event reaches it there.

Outside a window an unknown major is a dead letter (``unsupported_type``), as DESIGN §2 says.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime

from rastro_events.encoding import EncodedEvent, encode_new_event
from rastro_events.envelope import new_event_id
from rastro_events.payloads import Payload
from rastro_events.registry import ce_type_of, parse_ce_type
from rastro_events.upcasting import in_majors

__all__ = ["EventMigrations", "MigrationWindow", "encode_in_window"]

_WINDOW = re.compile(r"^\s*([a-z][a-z0-9_]*(?:\.[a-z0-9_]+)*)\s*:\s*(\d+)\s*->\s*(\d+)\s*$")


@dataclass(frozen=True)
class MigrationWindow:
    name: str
    from_major: int
    to_major: int

    @property
    def majors(self) -> tuple[int, ...]:
        return tuple(range(self.from_major, self.to_major + 1))

    def __str__(self) -> str:
        return f"{self.name}:{self.from_major}->{self.to_major}"


@dataclass(frozen=True)
class EventMigrations:
    """The open migration windows, by event name. Empty (the usual case) changes nothing anywhere."""

    windows: dict[str, MigrationWindow] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> EventMigrations:
        """``"tracking.raw:1->2, order.created:1->2"``; raises ``ValueError`` on anything else."""
        windows: dict[str, MigrationWindow] = {}
        for part in filter(str.strip, text.split(",")):
            match = _WINDOW.match(part)
            if match is None:
                raise ValueError(f"migration window {part.strip()!r} is not of the form name:N->M")
            name, start, end = match.group(1), int(match.group(2)), int(match.group(3))
            if not 1 <= start < end:
                raise ValueError(f"migration window {part.strip()!r} must go from a major to a later one")
            if name in windows:
                raise ValueError(f"two migration windows for {name}")
            windows[name] = MigrationWindow(name, start, end)
        return cls(windows)

    def __bool__(self) -> bool:
        return bool(self.windows)

    def __str__(self) -> str:
        return ",".join(str(w) for w in self.windows.values())

    def majors_to_publish(self, name: str, major: int) -> tuple[int, ...]:
        """The majors an event of ``name`` emitted as ``major`` is published in."""
        window = self.windows.get(name)
        if window is None or major not in window.majors:
            return (major,)
        return window.majors

    def is_twin(self, ce_type: str, readable: Collection[str]) -> bool:
        """Whether a consumer that reads the types ``readable`` may skip a record of ``ce_type`` it cannot
        read: ``ce_type`` is a major of an open window and the consumer reads the window's oldest major,
        where every event of the window is published (by old producers and dual-publishing new ones)."""
        parsed = parse_ce_type(ce_type)
        if parsed is None:
            return False
        window = self.windows.get(parsed[0])
        return (
            window is not None
            and parsed[1] in window.majors
            and ce_type_of(window.name, window.from_major) in readable
        )


def encode_in_window(
    payload: Payload,
    migrations: EventMigrations,
    *,
    tenant_id: str,
    source: str,
    time: datetime | None = None,
    event_id: str | None = None,
    traceparent: str | None = None,
) -> list[EncodedEvent]:
    """``encode_new_event`` for every major ``payload`` is published in: one record per major, oldest
    first, each to its major's topic, all with the same id and time (one event, several forms)."""
    majors = migrations.majors_to_publish(payload.event_name, payload.major)
    forms = in_majors(payload, majors) if len(majors) > 1 else [payload]
    event_id = event_id or new_event_id()
    time = time or datetime.now(UTC)
    return [
        encode_new_event(
            form, tenant_id=tenant_id, source=source, time=time, event_id=event_id, traceparent=traceparent
        )
        for form in forms
    ]
