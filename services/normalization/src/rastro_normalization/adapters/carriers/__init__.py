"""Carrier adapters, one package per carrier, each with its code table in ``<carrier>/codes.csv``.

``load_carrier_table`` is the only place that reads a code table: the CSV ships as package data and is
read through ``importlib.resources``; parsing and lookups are pure (``domain.codes``).
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

from rastro_normalization.domain.codes import CodeTable, parse_code_table

__all__ = ["STANDARD_TABLES", "UnknownCarrierTable", "load_carrier_table", "standard_table_for"]

_CARRIER_ID = re.compile(r"[a-z0-9_]+")
STANDARD_TABLES: dict[str, str] = {"OCOREN": "ocoren", "X12": "x12", "GEOFENCE": "geofence"}
"""Code prefix -> a table that is not one carrier's: EDI occurrence codes any carrier may send
(``OCOREN-01``, ``X12-D1``) and the geofence processor's own (``GEOFENCE-ARRIVED``)."""


class UnknownCarrierTable(LookupError):
    """No code table ships for this carrier."""


@cache
def load_carrier_table(carrier: str) -> CodeTable:
    """The code table of a canonical carrier id (``"correios"``), read once and cached."""
    if not _CARRIER_ID.fullmatch(carrier):
        raise UnknownCarrierTable(f"not a carrier id: {carrier!r}")
    source = resources.files(__name__) / carrier / "codes.csv"
    if not source.is_file():
        raise UnknownCarrierTable(f"no code table for carrier {carrier!r}")
    return parse_code_table(carrier, source.read_text(encoding="utf-8"))


def standard_table_for(status_code: str) -> CodeTable | None:
    """The standard table a prefixed code belongs to (``OCOREN-01`` -> the OCOREN table), else None."""
    prefix = status_code.strip().upper().split("-", 1)[0]
    name = STANDARD_TABLES.get(prefix)
    return load_carrier_table(name) if name and "-" in status_code else None
