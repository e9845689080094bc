"""What an EDI file parses into: one document, its occurrences, and every problem found in it.

The parsers never raise on bad content: problems come back as ``EdiError`` values (line and column),
and a document with any error is rejected whole by the caller. ``EdiFormatError`` is only for bytes
that are not recognisable as EDI at all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = ["FORMATS", "EdiDocument", "EdiError", "EdiFormatError", "EdiOccurrence"]

FORMATS: tuple[str, ...] = ("ocoren", "x12-214")


class EdiFormatError(ValueError):
    """The bytes are not recognisable as any supported EDI format; the message says why."""


@dataclass(frozen=True)
class EdiError:
    line: int
    """1-based record (OCOREN) or segment (X12, ISA = 1) number."""
    column: int
    """OCOREN: 1-based character position; X12: element position, 0 = the whole segment."""
    message: str


@dataclass(frozen=True)
class EdiOccurrence:
    line: int
    code: str
    reason: str | None
    occurred_at: datetime
    carrier_name: str | None
    carrier_document: str | None
    invoice_series: str | None
    invoice_number: str | None
    invoice_key: str | None
    tracking_number: str | None
    description: str | None
    location: dict[str, str] | None
    raw: dict[str, Any] = field(hash=False)


@dataclass(frozen=True)
class EdiDocument:
    format: str
    """``ocoren-3.1``, ``ocoren-5.0`` or ``x12-214``."""
    sender: str | None
    recipient: str | None
    interchange_id: str | None
    occurrences: tuple[EdiOccurrence, ...]
    errors: tuple[EdiError, ...]
    """Non-empty means the whole file is rejected."""
    control: dict[str, str] = field(hash=False)
    """X12: envelope control numbers and what the 997 needs (see ``x12.py``); OCOREN: empty."""

    @property
    def ok(self) -> bool:
        return not self.errors


def strip_leading_zeros(value: str, *, none_if_zero: bool) -> str | None:
    """``" 001 "`` -> ``"1"``; blank -> None; all zeros -> None or ``"0"``."""
    text = value.strip()
    if not text:
        return None
    stripped = text.lstrip("0")
    if stripped:
        return stripped
    return None if none_if_zero else "0"
