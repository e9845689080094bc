"""Carrier adapters, one package per carrier, each with its code table in ``<carrier>/codes.csv``.

``load_carrier_table`` is the only place that reads a code table: the CSV ships as package data and is
read through ``importlib.resources``; parsing and lookups are pure (``domain.codes``).
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

from rastro_normalization.domain.codes import CodeTable, parse_code_table

__all__ = ["UnknownCarrierTable", "load_carrier_table"]

_CARRIER_ID = re.compile(r"[a-z0-9_]+")


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
