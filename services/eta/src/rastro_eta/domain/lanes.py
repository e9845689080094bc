"""Lanes: the groups of shipments whose transit times are pooled, from the finest to the coarsest.

A shipment's lane attributes are its carrier, service, origin region and destination region, where a
region is a state code (``SP``) or, finer, a postal zone inside it (``RJ:240``: the first three digits
of the CEP). Statistics are kept at every level below; a prediction walks the chain finest first and
skips the levels whose attributes the shipment lacks (Olist orders, for one, have no carrier):

    carrier+service+origin+destination → carrier+origin+destination → carrier
      → origin+destination zone → origin+destination → destination → origin → global

A ``LaneKey`` names one lane at one level: the attributes its level does not use are ``None``, which
reads as "any" (its text form writes them as ``*``: ``correios/*/SP/RJ``, ``*/*/SP/RJ:240``). Lanes
are always scoped to one tenant by whoever stores them; nothing here mixes tenants.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from enum import StrEnum

from rastro_events import Lane, Location

__all__ = [
    "WILDCARD",
    "LaneAttributes",
    "LaneKey",
    "LaneLevel",
    "lane_chain",
    "normalize_code",
    "region",
    "zone",
]

WILDCARD = "*"
ZONE_SEPARATOR = ":"
_ATTRIBUTES = ("carrier", "service", "origin", "destination")
_ZONE_DIGITS = 3


class LaneLevel(StrEnum):
    """Lane levels, finest first: the order of the fallback chain."""

    CARRIER_SERVICE_ROUTE = "carrier_service_route"
    CARRIER_ROUTE = "carrier_route"
    CARRIER = "carrier"
    ZONE_ROUTE = "zone_route"
    ROUTE = "route"
    DESTINATION = "destination"
    ORIGIN = "origin"
    GLOBAL = "global"

    @property
    def attributes(self) -> tuple[str, ...]:
        """The lane attributes this level groups by (``destination_zone`` stands in the destination)."""
        return _LEVEL_ATTRIBUTES[self]


_LEVEL_ATTRIBUTES: dict[LaneLevel, tuple[str, ...]] = {
    LaneLevel.CARRIER_SERVICE_ROUTE: ("carrier", "service", "origin", "destination"),
    LaneLevel.CARRIER_ROUTE: ("carrier", "origin", "destination"),
    LaneLevel.CARRIER: ("carrier",),
    LaneLevel.ZONE_ROUTE: ("origin", "destination_zone"),
    LaneLevel.ROUTE: ("origin", "destination"),
    LaneLevel.DESTINATION: ("destination",),
    LaneLevel.ORIGIN: ("origin",),
    LaneLevel.GLOBAL: (),
}


def normalize_code(value: str | None) -> str | None:
    """Carrier and service codes compare case-insensitively; blank means unknown."""
    cleaned = (value or "").strip().lower()
    return cleaned or None


def region(location: Location | None) -> str | None:
    """The region of a location for lane purposes: its state code, upper-cased (``SP``, ``RJ``)."""
    if location is None:
        return None
    cleaned = (location.state or "").strip().upper()
    return cleaned or None


def zone(location: Location | None) -> str | None:
    """The postal zone of a location: ``STATE:NNN`` from its CEP's first three digits, else None."""
    state = region(location)
    if state is None or location is None:
        return None
    digits = re.sub(r"\D", "", location.postal_code or "")
    if len(digits) < _ZONE_DIGITS:
        return None
    return f"{state}{ZONE_SEPARATOR}{digits[:_ZONE_DIGITS]}"


@dataclass(frozen=True)
class LaneAttributes:
    """What a shipment contributes to lane grouping (already normalized)."""

    carrier: str | None = None
    service: str | None = None
    origin: str | None = None
    destination: str | None = None
    destination_zone: str | None = None

    def value(self, attribute: str) -> str | None:
        value: str | None = getattr(self, attribute)
        return value


@dataclass(frozen=True)
class LaneKey:
    level: LaneLevel
    carrier: str | None = None
    service: str | None = None
    origin: str | None = None
    destination: str | None = None
    """A state, or at the zone_route level a postal zone (``RJ:240``)."""

    def __post_init__(self) -> None:
        used = {"destination" if a == "destination_zone" else a for a in self.level.attributes}
        for attribute in _ATTRIBUTES:
            present = getattr(self, attribute) is not None
            if present != (attribute in used):
                raise ValueError(f"a {self.level} lane {'needs' if not present else 'has no'} {attribute}")
        is_zone = self.destination is not None and ZONE_SEPARATOR in self.destination
        if is_zone != (self.level is LaneLevel.ZONE_ROUTE):
            raise ValueError(f"only a zone_route lane has a postal zone as destination: {self.destination}")

    @classmethod
    def for_level(cls, level: LaneLevel, attributes: LaneAttributes) -> LaneKey | None:
        """This shipment's lane at ``level``, or None when an attribute the level needs is unknown."""
        values = {name: attributes.value(name) for name in level.attributes}
        if any(v is None for v in values.values()):
            return None
        if "destination_zone" in values:
            values["destination"] = values.pop("destination_zone")
        return cls(level, **values)

    @classmethod
    def global_lane(cls) -> LaneKey:
        return cls(LaneLevel.GLOBAL)

    @classmethod
    def parse(cls, text: str) -> LaneKey:
        """The inverse of ``text``: ``correios/*/SP/RJ`` → the carrier_route lane."""
        parts = text.split("/")
        if len(parts) != len(_ATTRIBUTES):
            raise ValueError(f"a lane key has {len(_ATTRIBUTES)} parts: {text!r}")
        values = {
            name: (None if part == WILDCARD else part) for name, part in zip(_ATTRIBUTES, parts, strict=True)
        }
        zoned = ZONE_SEPARATOR in (values["destination"] or "")
        used = tuple(
            "destination_zone" if name == "destination" and zoned else name
            for name in _ATTRIBUTES
            if values[name] is not None
        )
        for level in LaneLevel:
            if level.attributes == used:
                return cls(level, **values)
        raise ValueError(f"no lane level groups by {used}: {text!r}")

    @property
    def filters(self) -> dict[str, str]:
        """Attribute → value for the attributes this lane pins down (the rest match anything)."""
        return {name: value for name in _ATTRIBUTES if (value := getattr(self, name)) is not None}

    @property
    def text(self) -> str:
        return "/".join(getattr(self, name) or WILDCARD for name in _ATTRIBUTES)

    def to_lane(self) -> Lane:
        return Lane(
            carrier=self.carrier, service=self.service, origin=self.origin, destination=self.destination
        )


@functools.lru_cache(maxsize=65_536)  # pure, and called for every event: shipments share lanes
def lane_chain(attributes: LaneAttributes) -> tuple[LaneKey, ...]:
    """The lanes a shipment belongs to, finest first, skipping levels whose attributes are unknown.

    The global lane is always last, so the chain is never empty.
    """
    keys = (LaneKey.for_level(level, attributes) for level in LaneLevel)
    return tuple(key for key in keys if key is not None)
