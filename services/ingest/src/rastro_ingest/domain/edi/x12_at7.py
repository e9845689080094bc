"""The ``AT7`` (shipment status details) segment: its checks, its moment in time, and MS1 countries.

AT701 status, AT702 reason, AT703 appointment status, AT704 appointment reason, AT705 date
(CCYYMMDD), AT706 time (HHMM[SS[dd]]), AT707 time code. Time codes: ``LT`` (or none) is local time:
the zone of the MS1 state for a US or Canadian location (``local_zone``), else the caller's zone;
``UT``/``GM`` are UTC; ``ET``/``CT``/``MT``/``PT``/``AT``/``HT`` are the US/Canadian zones;
``ES``/``ED``, ``CS``/``CD``, ``MS``/``MD``, ``PS``/``PD`` are the fixed standard/daylight offsets.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

from rastro_ingest.domain.edi.x12_syntax import Segment

__all__ = ["TIME_CODES", "at7_problems", "at7_time", "country_code", "local_zone"]

_ZONES = {
    "ET": "America/New_York",
    "CT": "America/Chicago",
    "MT": "America/Denver",
    "PT": "America/Los_Angeles",
    "AT": "America/Halifax",
    "HT": "Pacific/Honolulu",
}
# A state's prevailing zone, for AT7 times in local time (LT) with an MS1 location: where a state spans
# two zones, the one most of its people live in.
_STATE_ZONES: dict[str, tuple[str, ...]] = {
    "America/New_York": ("CT DE DC FL GA IN KY ME MD MA MI NH NJ NY NC OH PA RI SC VT VA WV ON QC").split(),
    "America/Chicago": "AL AR IL IA KS LA MN MS MO NE ND OK SD TN TX WI MB SK".split(),
    "America/Denver": "CO ID MT NM UT WY AB".split(),
    "America/Phoenix": ("AZ",),
    "America/Los_Angeles": "CA NV OR WA BC".split(),
    "America/Anchorage": ("AK",),
    "Pacific/Honolulu": ("HI",),
    "America/Halifax": "NS NB PE".split(),
    "America/St_Johns": ("NL",),
    "America/Puerto_Rico": ("PR",),
}
_ZONE_OF_STATE = {state: zone for zone, states in _STATE_ZONES.items() for state in states}
_OFFSETS = {"ES": -5, "ED": -4, "CS": -6, "CD": -5, "MS": -7, "MD": -6, "PS": -8, "PD": -7}
TIME_CODES: frozenset[str] = frozenset({"LT", "UT", "GM", *_ZONES, *_OFFSETS})
_COUNTRIES = {
    "USA": "US",
    "CAN": "CA",
    "MEX": "MX",
    "BRA": "BR",
    "ARG": "AR",
    "CHL": "CL",
    "DEU": "DE",
    "CHN": "CN",
}
_STATUS = re.compile(r"[A-Z0-9]{1,2}")
_TIME = re.compile(r"([01][0-9]|2[0-3])([0-5][0-9])([0-5][0-9]([0-9]{1,2})?)?")

# (element position, X12 data element number, AK4 error code, bad value, message)
Problem = tuple[int, str, str, str, str]


def _date(value: str) -> datetime | None:
    try:
        return datetime.strptime(value, "%Y%m%d") if len(value) == 8 and value.isdigit() else None
    except ValueError:
        return None


def at7_problems(segment: Segment) -> list[Problem]:
    """What is wrong with an AT7 (empty when it is usable or an appointment-only AT7)."""
    status, appointment = segment.get(1), segment.get(3)
    if not status and not appointment:
        message = "AT7 has neither a shipment status code (AT701) nor an appointment status code (AT703)"
        return [(1, "1650", "1", "", message)]
    if not status:
        return []
    problems: list[Problem] = []
    if not _STATUS.fullmatch(status.upper()):
        problems.append((1, "1650", "7", status, f"AT701 {status!r} is not a shipment status code"))
    if _date(segment.get(5)) is None:
        problems.append((5, "373", "8", segment.get(5), f"AT705 {segment.get(5)!r} is not a date (CCYYMMDD)"))
    if not _TIME.fullmatch(segment.get(6)):
        problems.append((6, "337", "9", segment.get(6), f"AT706 {segment.get(6)!r} is not a time (HHMM)"))
    code = segment.get(7).upper()
    if code and code not in TIME_CODES:
        problems.append((7, "623", "7", code, f"AT707 time code {code!r} is not supported"))
    return problems


def at7_time(segment: Segment, local: tzinfo) -> datetime:
    """The aware moment of a checked AT7 (``at7_problems`` returned nothing)."""
    day = _date(segment.get(5))
    clock = segment.get(6)
    if day is None:  # not reachable for a checked segment
        raise ValueError(f"AT705 {segment.get(5)!r} is not a date")
    second = int(clock[4:6]) if len(clock) >= 6 else 0
    naive = day.replace(hour=int(clock[:2]), minute=int(clock[2:4]), second=second)
    return naive.replace(tzinfo=_zone(segment.get(7).upper(), local))


def _zone(code: str, local: tzinfo) -> tzinfo:
    if code in {"UT", "GM"}:
        return UTC
    if code in _ZONES:
        return ZoneInfo(_ZONES[code])
    if code in _OFFSETS:
        return timezone(timedelta(hours=_OFFSETS[code]), code)
    return local


def local_zone(location: dict[str, str] | None, default: tzinfo) -> tzinfo:
    """The zone of "local time" at an MS1 location: its US or Canadian state's, else ``default``."""
    if not location or location.get("country", "US") not in {"US", "CA"}:
        return default
    zone = _ZONE_OF_STATE.get((location.get("state") or "").upper())
    return ZoneInfo(zone) if zone else default


def country_code(value: str) -> str:
    """MS103 as a 2-letter code (``USA`` -> ``US``); empty when it cannot be told."""
    text = value.strip().upper()
    if len(text) == 2 and text.isalpha():
        return text
    return _COUNTRIES.get(text, "")
