"""Pure normalization logic: carrier code tables, carrier aliases, the timeline and the state machine.

Imports only the standard library and ``rastro_events``; nothing here does I/O.
"""

from __future__ import annotations

from rastro_normalization.domain.carriers import resolve_carrier
from rastro_normalization.domain.codes import (
    WITHDRAW_PREVIOUS,
    CodeEntry,
    CodeTable,
    CodeTableError,
    build_code_table,
    normalize_code,
    parse_code_table,
)
from rastro_normalization.domain.state_machine import (
    Shipment,
    StatusChange,
    apply,
    build_shipment,
    new_shipment,
)
from rastro_normalization.domain.timeline import Place, TimelineEntry, find_duplicate

__all__ = [
    "WITHDRAW_PREVIOUS",
    "CodeEntry",
    "CodeTable",
    "CodeTableError",
    "Place",
    "Shipment",
    "StatusChange",
    "TimelineEntry",
    "apply",
    "build_code_table",
    "build_shipment",
    "find_duplicate",
    "new_shipment",
    "normalize_code",
    "parse_code_table",
    "resolve_carrier",
]
