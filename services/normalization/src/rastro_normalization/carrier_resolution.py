"""Which carrier a raw event belongs to when it does not say, and the errors that name a failure.

A raw event without a carrier is resolved from its tracking number (``domain.detection``): exactly one
strong candidate that Rastro has a carrier for is used; anything else — no candidate, several strong
ones, only weak ones, or a foreign post Rastro has no table for — is dead-lettered as
``unknown_carrier`` with the candidates in the message. The event is flagged, never guessed: after a
fix (an ``order.shipped`` with the carrier, or a corrected event) the dead letter can be replayed.
"""

from __future__ import annotations

from rastro_kit.errors import PermanentError, Reason
from rastro_normalization.domain.carriers import CARRIERS
from rastro_normalization.domain.detection import Candidate, detect_carriers
from rastro_normalization.metrics import UNMAPPED_CODES

__all__ = ["detect_event_carrier", "unmapped_code"]


def _describe(candidates: list[Candidate]) -> str:
    return "; ".join(f"{c.carrier} ({c.confidence:.2f}: {c.reason})" for c in candidates) or "none"


def detect_event_carrier(tracking_number: str) -> str:
    """The carrier id detected from ``tracking_number``; ``PermanentError(UNKNOWN_CARRIER)`` otherwise."""
    candidates = detect_carriers(tracking_number)
    strong = [c for c in candidates if c.strong]
    if len(strong) == 1 and strong[0].carrier in CARRIERS:
        return strong[0].carrier
    if len(strong) > 1:
        problem = "ambiguous tracking number"
    elif strong:
        problem = f"detected {strong[0].carrier}, which Rastro has no carrier for yet"
    else:
        problem = "carrier missing and not recognisable from the tracking number"
    raise PermanentError(Reason.UNKNOWN_CARRIER, f"{problem}; candidates: {_describe(candidates)}")


def unmapped_code(carrier: str, code: str) -> PermanentError:
    """The dead-letter error for a code no table knows; counts it in ``rastro_unmapped_codes_total``."""
    UNMAPPED_CODES.labels(carrier=carrier).inc()
    return PermanentError(Reason.UNMAPPED_CARRIER_CODE, f"carrier {carrier!r} code {code!r} has no mapping")
