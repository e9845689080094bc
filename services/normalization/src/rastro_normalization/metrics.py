"""Normalization's own Prometheus metrics (the shared ones live in ``rastro_kit.metrics``)."""

from __future__ import annotations

from prometheus_client import Counter

__all__ = ["UNMAPPED_CODES"]

UNMAPPED_CODES = Counter(
    "rastro_unmapped_codes_total",
    "Carrier codes no table (nor tenant mapping) knows, dead-lettered as unmapped_carrier_code",
    ["carrier"],
)
