"""Carrier service names as shops and carriers write them -> Rastro's canonical service id.

``SEDEX 10``, ``Sedex10``, ``40215`` (the Correios contract code) all mean ``sedex_10``. Names are folded
like carrier names (case, accents and separators do not matter; leading zeros of numeric codes do).
A tenant's own service aliases win over the built-in ones; a name nobody knows is kept as sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from rastro_normalization.domain.carriers import fold_carrier_name

__all__ = ["BUILTIN_SERVICE_ALIASES", "SERVICE_ID", "canonical_service", "fold_service_name"]

SERVICE_ID = r"[a-z0-9][a-z0-9_]{0,63}"
"""The shape of a canonical service id: lower case, digits and underscores (``sedex_10``)."""

_ALIASES_BY_SERVICE: dict[str, dict[str, tuple[str, ...]]] = {
    "correios": {
        # Correios contract codes (04014, 04510, ...) are what ERPs and label tools put in the field.
        "sedex": ("sedex", "04014", "03220", "sedex contrato", "sedex a vista", "40010", "04162"),
        "pac": ("pac", "04510", "03298", "pac contrato", "pac a vista", "41106", "04669"),
        "sedex_10": ("sedex 10", "sedex10", "40215", "03158"),
        "sedex_12": ("sedex 12", "sedex12", "40169", "03140"),
        "sedex_hoje": ("sedex hoje", "40290", "03204"),
        "mini_envios": ("mini envios", "minienvios", "04227"),
    },
    "jadlog": {
        "jadlog_package": (".package", "package", "jadlog package"),
        "jadlog_com": (".com", "com", "jadlog com"),
        "jadlog_expresso": (".expresso", "expresso", "jadlog expresso"),
    },
    "ups": {
        "ups_ground": ("ground", "ups ground"),
        "ups_next_day_air": ("next day air", "ups next day air"),
        "ups_worldwide_express": ("worldwide express", "ups worldwide express"),
    },
    "fedex": {
        "fedex_ground": ("ground", "fedex ground"),
        "fedex_priority_overnight": ("priority overnight", "fedex priority overnight"),
        "fedex_international_priority": ("international priority", "fedex international priority"),
    },
    "usps": {
        "usps_priority_mail": ("priority mail", "usps priority mail"),
        "usps_ground_advantage": ("ground advantage", "usps ground advantage"),
        "usps_priority_mail_express": ("priority mail express", "usps priority mail express"),
    },
    "dhl": {"dhl_express_worldwide": ("express worldwide", "dhl express worldwide")},
}


def fold_service_name(name: str) -> str:
    """The comparison form of a service name: ``"SEDEX 10"`` -> ``"sedex10"``."""
    return fold_carrier_name(name)


BUILTIN_SERVICE_ALIASES: Mapping[str, Mapping[str, str]] = MappingProxyType(
    {
        carrier: MappingProxyType(
            {fold_service_name(a): service for service, aliases in by_service.items() for a in aliases}
            | {fold_service_name(service): service for service in by_service}
        )
        for carrier, by_service in _ALIASES_BY_SERVICE.items()
    }
)
_NONE: Mapping[str, str] = MappingProxyType({})


def canonical_service(
    name: str | None, carrier: str | None, aliases: Mapping[str, str] = _NONE
) -> str | None:
    """The canonical service id for ``name`` as sent for ``carrier``, or ``name`` itself (trimmed) when
    neither the tenant (``aliases``: folded alias -> service id) nor Rastro knows it."""
    if name is None or not name.strip():
        return None
    folded = fold_service_name(name)
    if folded in aliases:
        return aliases[folded]
    known = BUILTIN_SERVICE_ALIASES.get(carrier or "", _NONE).get(folded)
    return known or name.strip()
