"""What every carrier adapter speaks: parse results, carrier messages, the client interface, errors.

Parsing follows Karrio: ``parse(payload, settings) -> (shipments, messages)``; a carrier's errors (an
unknown tracking number, a malformed event) come back as ``CarrierMessage`` data, never as exceptions,
so one bad object never spoils its neighbours.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from rastro_events import RawTrackingEvent

__all__ = [
    "CarrierClient",
    "CarrierError",
    "CarrierMessage",
    "CarrierRejected",
    "CarrierThrottled",
    "CarrierUnavailable",
    "CircuitOpen",
    "ParseSettings",
    "ParsedShipment",
    "Parser",
]


@dataclass(frozen=True)
class ParseSettings:
    carrier: str
    """The carrier name written into each event (``generic`` payloads may name their own)."""


@dataclass(frozen=True)
class ParsedShipment:
    tracking_number: str
    events: list[RawTrackingEvent] = field(default_factory=list)
    delivered: bool = False
    """A polling hint only (poll daily, then stop); normalization stays the authority on status."""


@dataclass(frozen=True)
class CarrierMessage:
    code: str
    message: str
    tracking_number: str | None = None

    def public(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "tracking_number": self.tracking_number}


Parser = Callable[[Any, ParseSettings], tuple[list[ParsedShipment], list[CarrierMessage]]]


class CarrierClient(Protocol):
    """One carrier account's tracking API. ``track`` returns the carrier's own payload, untouched."""

    carrier: str

    async def track(self, numbers: Sequence[str]) -> Any: ...

    async def aclose(self) -> None: ...


class CarrierError(Exception):
    """Base of every error a carrier client raises."""


class CarrierUnavailable(CarrierError):
    """5xx, timeout, connection refused: retried with backoff, and counted by the circuit breaker."""


class CarrierThrottled(CarrierUnavailable):
    """429: retried after the carrier's ``Retry-After`` (bounded)."""

    def __init__(self, message: str, retry_after_s: float | None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class CarrierRejected(CarrierError):
    """Any other 4xx (bad credentials, bad request): not retried, and not a sign the carrier is down."""


class CircuitOpen(CarrierError):
    """The carrier's circuit is open: no call was made."""
