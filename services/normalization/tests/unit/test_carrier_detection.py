"""Carrier detection from tracking numbers, and the resolution rule built on it (flag, never guess)."""

from __future__ import annotations

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from prometheus_client import REGISTRY

from rastro_kit.errors import PermanentError, Reason
from rastro_normalization.carrier_resolution import detect_event_carrier, unmapped_code
from rastro_normalization.domain.detection import STRONG, Candidate, detect_carriers, s10_check_digit

pytestmark = pytest.mark.unit

LETTERS = st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=2, max_size=2)
SERIALS = st.text("0123456789", min_size=8, max_size=8)
COUNTRIES = st.sampled_from(["BR", "US", "FR", "PT", "CN", "DE", "JP", "AR"])


def _s10(prefix: str, serial: str, country: str) -> str:
    return f"{prefix}{serial}{s10_check_digit(serial)}{country}"


def _best(number: str) -> Candidate:
    found = detect_carriers(number)
    assert found, f"nothing detected for {number}"
    return found[0]


@pytest.mark.parametrize(
    ("number", "carrier"),
    [
        ("AA123456785BR", "correios"),
        ("aa 123 456 785 br", "correios"),
        ("RA123456785US", "usps"),
        ("CP123456785FR", "upu:fr"),
        ("1Z999AA10123456784", "ups"),
        ("1z3tww700308932865", "ups"),
        ("986578788855", "fedex"),
        ("0414 4176 0228 964", "fedex"),
        ("61299998820821171811", "fedex"),
        ("9611020987654312345672", "fedex"),
        ("9400 1112 0108 0805 4830 16", "usps"),
        ("9361289878700317633795", "usps"),
        ("3318810025", "dhl"),
        ("JJD0099999999", "dhl"),
        ("12345678901234", "jadlog"),
    ],
)
def test_known_formats_are_detected_strongly(number: str, carrier: str) -> None:
    best = _best(number)
    assert (best.carrier, best.strong) == (carrier, True), best
    assert best.reason


def test_s10_check_digit_special_remainders() -> None:
    # remainder 0 -> 5, remainder 1 -> 0 (UPU S10)
    assert s10_check_digit("00000000") == 5  # sum 0
    assert s10_check_digit("00004000") == 0  # 4 * 3 = 12, remainder 1
    assert s10_check_digit("12345678") == 5  # the classic AA123456785BR
    assert s10_check_digit("00000002") == 8  # 2 * 7 = 14, remainder 3


@pytest.mark.parametrize(
    "number",
    ["996578788855", "1Z999AA10123456785", "3318810010", "5682 8361 0012 732", "9400111201080805483017"],
)
def test_a_wrong_check_digit_is_only_a_weak_candidate(number: str) -> None:
    best = _best(number)
    assert not best.strong and "check digit does not match" in best.reason


@pytest.mark.parametrize("number", ["", "hello", "123", "AB12345678BR", "AA123456785XX", "1Z12"])
def test_unknown_shapes_have_no_candidates(number: str) -> None:
    assert detect_carriers(number) == []


def test_ambiguous_numbers_list_every_strong_candidate() -> None:
    found = detect_carriers("9261292700768711948021")  # IMpb: USPS, also FedEx Ground Economy
    assert [c.carrier for c in found] == ["fedex", "usps"]
    assert all(c.strong for c in found)


@settings(max_examples=500)
@given(prefix=LETTERS, serial=SERIALS, country=COUNTRIES)
def test_every_valid_s10_number_is_detected(prefix: str, serial: str, country: str) -> None:
    best = _best(_s10(prefix, serial, country))
    expected = {"BR": "correios", "US": "usps"}.get(country, f"upu:{country.lower()}")
    assert (best.carrier, best.confidence >= STRONG) == (expected, True)


def _remainder(serial: str) -> int:
    return sum(int(d) * w for d, w in zip(serial, (8, 6, 4, 2, 3, 5, 9, 7), strict=True)) % 11


@settings(max_examples=500)
@given(
    prefix=LETTERS,
    serial=SERIALS,
    country=COUNTRIES,
    position=st.integers(0, 8),
    delta=st.integers(1, 9),
)
def test_one_changed_digit_is_rejected(
    prefix: str, serial: str, country: str, position: int, delta: int
) -> None:
    digits = list(serial + str(s10_check_digit(serial)))
    digits[position] = str((int(digits[position]) + delta) % 10)
    changed = "".join(digits[:8])
    # S10's own blind spot: remainders 0 and 6 both give check digit 5 (see the test below).
    assume(position == 8 or {_remainder(serial), _remainder(changed)} != {0, 6})
    number = f"{prefix}{''.join(digits)}{country}"
    assert detect_carriers(number) == []


def test_s10_cannot_see_a_change_between_remainders_0_and_6() -> None:
    # A property of the UPU algorithm, not of our code: 11 - 0 -> 5 and 11 - 6 = 5.
    assert _remainder("00000000") == 0 and _remainder("01000000") == 6
    assert _best("AA000000005BR").carrier == _best("AA010000005BR").carrier == "correios"


def test_resolution_uses_exactly_one_strong_candidate() -> None:
    assert detect_event_carrier("AA123456785BR") == "correios"
    assert detect_event_carrier("1Z999AA10123456784") == "ups"


@pytest.mark.parametrize(
    ("number", "says"),
    [
        ("9261292700768711948021", "ambiguous tracking number; candidates: fedex"),
        ("CP123456785FR", "detected upu:fr"),
        ("996578788855", "not recognisable"),
        ("hello", "candidates: none"),
    ],
)
def test_resolution_flags_instead_of_guessing(number: str, says: str) -> None:
    with pytest.raises(PermanentError) as raised:
        detect_event_carrier(number)
    assert raised.value.reason is Reason.UNKNOWN_CARRIER
    assert says in raised.value.message


def test_unmapped_codes_are_counted_per_carrier() -> None:
    def count() -> float:
        return REGISTRY.get_sample_value("rastro_unmapped_codes_total", {"carrier": "fedex"}) or 0.0

    before = count()
    error = unmapped_code("fedex", "ZZ")
    assert (error.reason, count()) == (Reason.UNMAPPED_CARRIER_CODE, before + 1)
    assert "'ZZ'" in error.message
