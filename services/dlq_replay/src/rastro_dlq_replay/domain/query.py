"""Which dead letters a list, a count, an export, a bulk replay or a purge is about, and where a page ends.

Lists are ordered newest failure first, ties broken by id, so a cursor is the (last failure, id)
of the last item shown. It is opaque to clients: base64url of a small JSON object.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from rastro_dlq_replay.domain.dead_letter import Status

__all__ = ["Cursor", "DeadLetterFilter", "GroupBy", "InvalidCursor", "decode_cursor", "encode_cursor"]


class GroupBy(StrEnum):
    REASON = "reason"
    SERVICE = "service"
    TENANT = "tenant"


@dataclass(frozen=True)
class DeadLetterFilter:
    """Every field narrows the selection; None means "any". ``tenant`` None is every tenant (operators)."""

    service: str | None = None
    reason: str | None = None
    tenant: str | None = None
    event_type: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    text: str | None = None
    statuses: tuple[Status, ...] = (Status.NEW, Status.REPLAYED, Status.FAILED_AFTER_REPLAY)


@dataclass(frozen=True)
class Cursor:
    last_failed_at: datetime
    id: str


class InvalidCursor(ValueError):
    pass


def encode_cursor(cursor: Cursor) -> str:
    raw = json.dumps({"t": cursor.last_failed_at.isoformat(), "id": cursor.id}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(token: str) -> Cursor:
    try:
        raw = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        cursor = Cursor(datetime.fromisoformat(raw["t"]), str(raw["id"]))
    except (binascii.Error, UnicodeDecodeError, ValueError, TypeError, KeyError) as exc:
        raise InvalidCursor("the cursor is not one this service gave out") from exc
    if cursor.last_failed_at.tzinfo is None:
        raise InvalidCursor("the cursor is not one this service gave out")
    return cursor
