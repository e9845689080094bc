"""Carrier local times without a UTC offset -> aware datetimes, from where the event happened.

Many carriers (Correios SRO, Jadlog, Loggi, CSV exports) give ``dd/mm/yyyy hh:mm`` in the local time of
the unit that scanned the parcel. The zone comes from the event's Brazilian state (UF), else from the
carrier's home zone, else UTC. ``zoneinfo`` carries the history, so a 2018 date in São Paulo resolves to
-02:00 (Brazilian summer time, abolished in 2019) and a 2026 one to -03:00.

Ambiguous wall times (the hour repeated when summer time ended) resolve to the first occurrence
(``fold=0``); non-existent ones (the hour skipped when it began) take the offset in force before the
gap, so 00:30 on the first day of summer time reads as 01:30 summer time.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Protocol
from zoneinfo import ZoneInfo

__all__ = ["CARRIER_ZONES", "STATE_ZONES", "Whereabouts", "resolve_local_time", "zone_for"]


class Whereabouts(Protocol):
    """Anything with a state and a country: ``rastro_events.Location``, ``domain.timeline.Place``."""

    @property
    def state(self) -> str | None: ...

    @property
    def country(self) -> str | None: ...


STATE_ZONES: Mapping[str, str] = MappingProxyType(
    {
        "AC": "America/Rio_Branco",
        "AL": "America/Maceio",
        "AM": "America/Manaus",  # the far west of Amazonas is on Rio Branco time; Manaus covers most
        "AP": "America/Belem",
        "BA": "America/Bahia",
        "CE": "America/Fortaleza",
        "DF": "America/Sao_Paulo",
        "ES": "America/Sao_Paulo",
        "FN": "America/Noronha",  # Fernando de Noronha, a district of Pernambuco with its own zone
        "GO": "America/Sao_Paulo",
        "MA": "America/Fortaleza",
        "MG": "America/Sao_Paulo",
        "MS": "America/Campo_Grande",
        "MT": "America/Cuiaba",
        "PA": "America/Belem",  # western Pará (Santarém) had its own zone history; Belém covers most
        "PB": "America/Fortaleza",
        "PE": "America/Recife",
        "PI": "America/Fortaleza",
        "PR": "America/Sao_Paulo",
        "RJ": "America/Sao_Paulo",
        "RN": "America/Fortaleza",
        "RO": "America/Porto_Velho",
        "RR": "America/Boa_Vista",
        "RS": "America/Sao_Paulo",
        "SC": "America/Sao_Paulo",
        "SE": "America/Maceio",
        "SP": "America/Sao_Paulo",
        "TO": "America/Araguaina",
    }
)
"""Brazilian UF (plus ``FN``, Fernando de Noronha) -> IANA zone."""

CARRIER_ZONES: Mapping[str, str] = MappingProxyType(
    {
        "correios": "America/Sao_Paulo",
        "jadlog": "America/Sao_Paulo",
        "loggi": "America/Sao_Paulo",
        "ups": "America/New_York",
        "fedex": "America/Chicago",
        "usps": "America/New_York",
        "dhl": "Europe/Berlin",
    }
)
"""A carrier's home zone, used when the event's location says nothing better."""

# fmt: off
_STATE_NAMES: Mapping[str, str] = MappingProxyType(
    {
        "acre": "AC", "alagoas": "AL", "amapa": "AP", "amazonas": "AM", "bahia": "BA", "ceara": "CE",
        "distrito federal": "DF", "espirito santo": "ES", "goias": "GO", "maranhao": "MA",
        "mato grosso": "MT", "mato grosso do sul": "MS", "minas gerais": "MG", "para": "PA",
        "paraiba": "PB", "parana": "PR", "pernambuco": "PE", "piaui": "PI", "rio de janeiro": "RJ",
        "rio grande do norte": "RN", "rio grande do sul": "RS", "rondonia": "RO", "roraima": "RR",
        "santa catarina": "SC", "sao paulo": "SP", "sergipe": "SE", "tocantins": "TO",
        "fernando de noronha": "FN",
    }
)
# fmt: on


def _state_code(state: str | None) -> str | None:
    if not state:
        return None
    text = unicodedata.normalize("NFKD", state.casefold())
    text = " ".join("".join(c for c in text if not unicodedata.combining(c)).split())
    if text.upper() in STATE_ZONES:
        return text.upper()
    return _STATE_NAMES.get(text)


def zone_for(carrier: str | None, state: str | None = None, country: str | None = None) -> ZoneInfo:
    """The zone of an event: its Brazilian state's, else its carrier's home zone, else UTC."""
    uf = _state_code(state) if country in (None, "", "BR", "br") else None
    if uf is not None:
        return ZoneInfo(STATE_ZONES[uf])
    if country and country.upper() != "BR" and carrier in ("correios", "jadlog", "loggi"):
        return ZoneInfo("UTC")  # a Brazilian carrier's scan abroad: we cannot tell, so do not pretend
    return ZoneInfo(CARRIER_ZONES.get(carrier or "", "UTC"))


def resolve_local_time(naive: datetime, carrier: str | None, location: Whereabouts | None = None) -> datetime:
    """``naive`` read as wall-clock time where the event happened. An aware ``naive`` is returned as is."""
    if naive.tzinfo is not None and naive.utcoffset() is not None:
        return naive
    state, country = (location.state, location.country) if location is not None else (None, None)
    return naive.replace(tzinfo=zone_for(carrier, state, country), fold=0)
