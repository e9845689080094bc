"""Carrier names as people type them -> Rastro's canonical carrier id.

Shops write ``ECT``, ``Correios``, ``correios-br`` or ``SEDEX`` for the same carrier. Names are compared
folded: case, accents, spaces, dots, hyphens and underscores do not matter, so ``"Fed Ex"``,
``"fedex"`` and ``"FED-EX"`` are one name. A tenant's own aliases win over the built-in ones.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from functools import lru_cache
from types import MappingProxyType

__all__ = ["BUILTIN_ALIASES", "CARRIERS", "carrier_slug", "fold_carrier_name", "resolve_carrier"]

_ALIASES_BY_CARRIER: dict[str, tuple[str, ...]] = {
    # SEDEX and PAC are Correios services, but shops often put them in the carrier field.
    "correios": (
        "correios",
        "ect",
        "correios-br",
        "correios brasil",
        "empresa brasileira de correios e telégrafos",
        "sedex",
        "pac",
    ),
    "jadlog": ("jadlog",),
    "loggi": ("loggi",),
    "dhl": ("dhl", "dhl express", "dhl ecommerce"),
    "ups": ("ups", "united parcel service"),
    "fedex": ("fedex", "federal express", "fedex express"),
    "usps": ("usps", "united states postal service", "us postal service"),
}

CARRIERS: frozenset[str] = frozenset(_ALIASES_BY_CARRIER)


@lru_cache(maxsize=4096)  # hot path: every raw event's carrier, and every tenant alias it is compared with
def fold_carrier_name(name: str) -> str:
    """The comparison form of a carrier name: lower case, no accents, no separators."""
    decomposed = unicodedata.normalize("NFKD", name.casefold())
    return "".join(c for c in decomposed if c.isalnum() and not unicodedata.combining(c))


BUILTIN_ALIASES: Mapping[str, str] = MappingProxyType(
    {
        fold_carrier_name(alias): carrier
        for carrier, aliases in _ALIASES_BY_CARRIER.items()
        for alias in aliases
    }
)
_NO_ALIASES: Mapping[str, str] = MappingProxyType({})


def resolve_carrier(name: str | None, aliases: Mapping[str, str] = _NO_ALIASES) -> str | None:
    """Canonical carrier id for ``name``, or ``None`` when neither the tenant nor Rastro knows it.

    ``aliases`` are the tenant's own (alias -> carrier id); they take precedence over the built-in ones.
    The carrier id a tenant alias points to is returned trimmed and lower-cased.
    """
    if name is None:
        return None
    folded = fold_carrier_name(name)
    if not folded:
        return None
    for alias, carrier in aliases.items():
        if fold_carrier_name(alias) == folded and carrier.strip():
            return carrier.strip().lower()
    return BUILTIN_ALIASES.get(folded)


def carrier_slug(name: str) -> str:
    """An id for a carrier Rastro has no entry for, from its name: ``"Transportes Rápido Ltda."`` ->
    ``"transportes-rapido-ltda"`` (at most 64 characters). Used for EDI senders, whose codes are standard."""
    decomposed = unicodedata.normalize("NFKD", name.casefold())
    plain = "".join(c if c.isalnum() else " " for c in decomposed if not unicodedata.combining(c))
    return "-".join(plain.split())[:64] or "unknown"
