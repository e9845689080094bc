"""A tenant's mappings (de-para): its carrier aliases, service aliases and status overrides.

Like the mapping screen of an ERP integration, a tenant says what its own words mean:

- carrier aliases: ``"Transportadora ECT"`` -> ``correios``;
- service aliases: ``"SEDEX 10 CONTRATO"`` -> ``sedex_10``;
- status overrides: carrier ``correios`` code ``BDE-20`` -> ``exception.address_issue`` (a code the
  table maps differently, or one it lacks: an unmapped code with an override no longer dead-letters).

Mappings are versioned per tenant; ``TenantMappings.version`` is the version they were read at.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from rastro_events.taxonomy import SUBSTATUSES, Status, is_valid_substatus
from rastro_normalization.domain.codes import CodeEntry, CodeTable, normalize_code
from rastro_normalization.domain.services import SERVICE_ID, fold_service_name

__all__ = [
    "EMPTY_MAPPINGS",
    "MappingError",
    "StatusOverride",
    "TenantMappings",
    "check_alias",
    "check_carrier_id",
    "check_service_id",
    "lookup_code",
    "make_override",
]

_CARRIER_ID = re.compile(r"[a-z0-9_]{1,64}")
_SERVICE_ID = re.compile(SERVICE_ID)


class MappingError(ValueError):
    """A mapping that cannot be stored (empty alias, unknown status, substatus of another status...)."""


@dataclass(frozen=True, slots=True)
class StatusOverride:
    carrier: str
    code: str  # canonical spelling (``normalize_code``)
    status: Status
    substatus: str
    descriptions: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}), hash=False)


@dataclass(frozen=True, slots=True)
class TenantMappings:
    version: int = 0
    carrier_aliases: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    service_aliases: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    """folded alias -> canonical service id"""
    overrides: Mapping[tuple[str, str], StatusOverride] = field(default_factory=lambda: MappingProxyType({}))
    """(carrier id, canonical code) -> override"""


EMPTY_MAPPINGS = TenantMappings()


def check_alias(alias: str) -> str:
    """An alias as stored: trimmed; it must have letters or digits (its folded form is the real key)."""
    text = " ".join(alias.split())
    if not fold_service_name(text) or len(text) > 100:
        raise MappingError("an alias needs letters or digits, at most 100 characters")
    return text


def check_carrier_id(carrier: str) -> str:
    value = carrier.strip().lower()
    if not _CARRIER_ID.fullmatch(value):
        raise MappingError(f"{carrier!r} is not a carrier id (lower case letters, digits, underscores)")
    return value


def check_service_id(service: str) -> str:
    value = service.strip().lower()
    if not _SERVICE_ID.fullmatch(value):
        raise MappingError(f"{service!r} is not a service id (lower case letters, digits, underscores)")
    return value


def make_override(
    carrier: str, code: str, status: str, substatus: str | None, descriptions: Mapping[str, str]
) -> StatusOverride:
    """A validated override; ``substatus`` defaults to ``<status>.other`` or the status' first one."""
    try:
        parsed = Status(status)
    except ValueError:
        raise MappingError(f"unknown status {status!r}") from None
    chosen = substatus or _default_substatus(parsed)
    if not is_valid_substatus(parsed, chosen):
        raise MappingError(f"substatus {chosen!r} is not a {parsed.value} substatus")
    carrier_id = check_carrier_id(carrier)
    canonical = normalize_code(code, carrier_id)  # the carrier's own spelling, as its table keys it
    if not canonical or len(canonical) > 64:
        raise MappingError("a carrier code needs 1 to 64 characters")
    texts = {lang: text.strip() for lang, text in descriptions.items() if text.strip()}
    return StatusOverride(carrier_id, canonical, parsed, chosen, MappingProxyType(texts))


def _default_substatus(status: Status) -> str:
    mine = sorted(s for s in SUBSTATUSES if s.split(".", 1)[0] == status.value)
    for preferred in (f"{status.value}.other", f"{status.value}.{status.value}", "in_transit.in_route"):
        if preferred in mine:
            return preferred
    if not mine:
        raise MappingError(f"status {status.value!r} has no substatus")
    return mine[0]


def lookup_code(
    carrier: str, code: str, table: CodeTable | None, mappings: TenantMappings
) -> CodeEntry | None:
    """The entry for a carrier code: the tenant's override first, then the carrier's table.

    An override keeps the table's descriptions (what the carrier said has not changed) unless it brings
    its own; it has no effect (an overridden ``EST`` no longer withdraws the previous event).
    """
    canonical = normalize_code(code, carrier)
    override = mappings.overrides.get((carrier, canonical))
    known = table.lookup(code) if table is not None else None
    if override is None:
        return known
    descriptions = dict(known.descriptions) if known is not None else {}
    descriptions.update(override.descriptions)
    return CodeEntry(canonical, override.status, override.substatus, descriptions)
