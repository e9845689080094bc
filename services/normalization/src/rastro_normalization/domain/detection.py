"""Which carrier issued a tracking number, told from the number alone.

``detect_carriers`` returns every carrier whose number format matches, best first. A format whose check
digit verifies is strong evidence; a format with no check digit is weaker; a format whose check digit
fails is reported with a low confidence (a typo, or someone else's number), so a caller can show it but
must not act on it. Ambiguity is real (a 22-digit ``92…`` IMpb number is both USPS and FedEx
Ground Economy), and the caller decides — normalization uses a carrier only when exactly one candidate
is ``STRONG``.

Rules (sources: UPU S10 standard; carriers' label specifications as collected by the public
``tracking_number_data`` project):

- UPU S10 ``AA123456785BR``: 2 letters, 8 digits, a check digit (weights 8 6 4 2 3 5 9 7, 11 - sum mod
  11, 10 -> 0, 11 -> 5) and an ISO 3166 country. ``BR`` -> ``correios``, ``US`` -> ``usps``; any other
  country -> ``upu:<cc>`` (its national post, which Rastro has no table for yet).
- UPS ``1Z`` + 16 letters/digits, the last a mod-10 check digit (letters count as (ord - 63) mod 10).
- FedEx: 12 digits (weights 3 1 7, mod 11 mod 10), 15 digits (Ground, mod 10 weights 1 3), 20 digits
  (Ground Economy / SmartPost, mod 10 weights 3 1 after an implied ``92``), 22 digits starting ``96``
  (Ground, mod 10 weights 1 3 over the last 14 digits before the check) or ``92`` (as 20 digits).
- USPS IMpb: 20–22 digits starting ``91``–``95``, mod 10 weights 3 1.
- DHL Express: 10 digits whose last is the first nine mod 7; piece ids ``J`` + 2–3 letters + 9–10 digits.
- Jadlog: 14 digits (no check digit is published: weaker evidence).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = ["STRONG", "Candidate", "detect_carriers", "s10_check_digit"]

STRONG = 0.8
"""Minimum confidence to act on a candidate."""

_VERIFIED = 0.95  # format and check digit
_FORMAT_ONLY = 0.8  # a format owned by one carrier, without a check digit
_BAD_CHECK = 0.3  # the format matches but the check digit does not

_S10_WEIGHTS = (8, 6, 4, 2, 3, 5, 9, 7)
_S10 = re.compile(r"([A-Z]{2})(\d{8})(\d)([A-Z]{2})")
_UPS = re.compile(r"1Z([0-9A-Z]{15})([0-9A-Z])")
_DHL_PIECE = re.compile(r"J[A-Z]{2,3}\d{9,10}")
_SEPARATORS = re.compile(r"[\s.\-/]+")
_POSTS = {"BR": "correios", "US": "usps"}
# ISO 3166-1 alpha-2, plus the UPU's own codes for territories posted separately.
_ISO_COUNTRIES = frozenset(
    """AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT
    BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER
    ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID
    IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV
    LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR
    NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL
    SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC
    VE VG VI VN VU WF WS XK YE YT ZA ZM ZW""".split()
)


@dataclass(frozen=True, slots=True)
class Candidate:
    """One possible carrier: its id (or ``upu:<country>``), how sure we are (0–1) and why."""

    carrier: str
    confidence: float
    reason: str

    @property
    def strong(self) -> bool:
        return self.confidence >= STRONG


def s10_check_digit(serial: str) -> int:
    """The UPU S10 check digit of an 8-digit serial number."""
    remainder = sum(int(d) * w for d, w in zip(serial, _S10_WEIGHTS, strict=True)) % 11
    return {0: 5, 1: 0}.get(remainder, 11 - remainder)


def _mod10(digits: str, weights: Sequence[int]) -> int:
    total = sum(int(d) * weights[i % len(weights)] for i, d in enumerate(digits))
    return (10 - total % 10) % 10


def _ups_value(char: str) -> int:
    return int(char) if char.isdigit() else (ord(char) - 63) % 10


def _graded(carrier: str, verified: bool, what: str) -> Candidate:
    if verified:
        return Candidate(carrier, _VERIFIED, f"{what}, check digit verified")
    return Candidate(carrier, _BAD_CHECK, f"{what}, but the check digit does not match")


def _s10(number: str) -> list[Candidate]:
    match = _S10.fullmatch(number)
    if match is None or match[4] not in _ISO_COUNTRIES:
        return []
    if s10_check_digit(match[2]) != int(match[3]):
        return []  # a two-letter/two-letter shape alone says little: not a candidate
    country = match[4]
    carrier = _POSTS.get(country, f"upu:{country.lower()}")
    return [Candidate(carrier, 0.99, f"UPU S10 number from {country}, check digit verified")]


def _ups(number: str) -> list[Candidate]:
    match = _UPS.fullmatch(number)
    if match is None:
        return []
    values = [_ups_value(c) for c in match[1]]
    check = _mod10("".join(str(v) for v in values), (1, 2))
    return [_graded("ups", str(check) == match[2], "UPS 1Z number")]


def _fedex(number: str) -> list[Candidate]:
    if not number.isdigit():
        return []
    body, check = number[:-1], int(number[-1])
    if len(number) == 12:
        total = sum(int(d) * (3, 1, 7)[i % 3] for i, d in enumerate(body))
        return [_graded("fedex", total % 11 % 10 == check, "FedEx Express 12-digit number")]
    if len(number) == 15:
        return [_graded("fedex", _mod10(body, (1, 3)) == check, "FedEx Ground 15-digit number")]
    if len(number) == 20:
        serial = body if body.startswith("92") else "92" + body
        return [_graded("fedex", _mod10(serial, (3, 1)) == check, "FedEx Ground Economy 20-digit number")]
    if len(number) == 22 and number.startswith("96"):
        return [_graded("fedex", _mod10(body[7:], (1, 3)) == check, "FedEx Ground 96 22-digit number")]
    if len(number) == 22 and number.startswith("92"):
        return [_graded("fedex", _mod10(body, (3, 1)) == check, "FedEx Ground Economy IMpb number")]
    return []


def _usps(number: str) -> list[Candidate]:
    if not (number.isdigit() and 20 <= len(number) <= 22 and number[:2] in {"91", "92", "93", "94", "95"}):
        return []
    return [_graded("usps", _mod10(number[:-1], (3, 1)) == int(number[-1]), "USPS IMpb number")]


def _dhl(number: str) -> list[Candidate]:
    if _DHL_PIECE.fullmatch(number):
        return [Candidate("dhl", _FORMAT_ONLY, "DHL Express piece id (J + letters + digits)")]
    if number.isdigit() and len(number) == 10:
        return [_graded("dhl", int(number[:9]) % 7 == int(number[9]), "DHL Express 10-digit waybill")]
    return []


def _jadlog(number: str) -> list[Candidate]:
    if number.isdigit() and len(number) == 14:
        return [Candidate("jadlog", _FORMAT_ONLY, "Jadlog 14-digit number (no check digit)")]
    return []


_RULES: tuple[Callable[[str], list[Candidate]], ...] = (_s10, _ups, _fedex, _usps, _dhl, _jadlog)


def detect_carriers(tracking_number: str) -> list[Candidate]:
    """Every carrier the number could belong to, best first (ties by carrier id); empty if none."""
    number = _SEPARATORS.sub("", tracking_number).upper()
    found = [candidate for rule in _RULES for candidate in rule(number)]
    return sorted(found, key=lambda c: (-c.confidence, c.carrier))
