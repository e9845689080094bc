"""Carrier local times without an offset, resolved from where the event happened (zoneinfo)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from rastro_events import Location
from rastro_normalization.domain.local_time import STATE_ZONES, resolve_local_time, zone_for
from rastro_normalization.domain.timeline import Place

pytestmark = pytest.mark.unit

UFS = "AC AL AP AM BA CE DF ES GO MA MT MS MG PA PB PR PE PI RJ RN RS RO RR SC SP SE TO".split()


def offset_hours(at: datetime) -> float:
    delta = at.utcoffset()
    assert delta is not None
    return delta / timedelta(hours=1)


def test_all_27_ufs_and_noronha_have_a_zone() -> None:
    assert set(UFS) | {"FN"} == set(STATE_ZONES)
    assert len(UFS) == 27


@pytest.mark.parametrize(
    ("state", "zone", "hours"),
    [
        ("SP", "America/Sao_Paulo", -3),
        ("AM", "America/Manaus", -4),
        ("AC", "America/Rio_Branco", -5),
        ("MT", "America/Cuiaba", -4),
        ("MS", "America/Campo_Grande", -4),
        ("PE", "America/Recife", -3),
        ("FN", "America/Noronha", -2),
        ("RO", "America/Porto_Velho", -4),
        ("RR", "America/Boa_Vista", -4),
        ("são paulo", "America/Sao_Paulo", -3),
        ("Amazonas", "America/Manaus", -4),
    ],
)
def test_state_zones_in_2026(state: str, zone: str, hours: int) -> None:
    at = resolve_local_time(datetime(2026, 11, 23, 14, 5), "correios", Place("x", state, "BR"))
    assert str(at.tzinfo) == zone and offset_hours(at) == hours


def test_brazilian_summer_time_before_2019() -> None:
    sp = Location(city="São Paulo", state="SP", country="BR")
    summer_2018 = resolve_local_time(datetime(2018, 12, 10, 9, 0), "correios", sp)
    assert offset_hours(summer_2018) == -2
    assert summer_2018.astimezone(UTC) == datetime(2018, 12, 10, 11, 0, tzinfo=UTC)
    winter_2018 = resolve_local_time(datetime(2018, 7, 10, 9, 0), "correios", sp)
    assert offset_hours(winter_2018) == -3
    # Summer time was abolished in 2019: December 2019 stays at -03:00.
    assert offset_hours(resolve_local_time(datetime(2019, 12, 10, 9, 0), "correios", sp)) == -3
    # States without summer time (Pernambuco) were -03:00 all along; Mato Grosso had it (-03:00 then).
    assert (
        offset_hours(resolve_local_time(datetime(2018, 12, 10, 9), "correios", Place(None, "PE", "BR"))) == -3
    )
    assert (
        offset_hours(resolve_local_time(datetime(2018, 12, 10, 9), "correios", Place(None, "MT", "BR"))) == -3
    )


def test_ambiguous_and_missing_wall_times() -> None:
    sp = Place(None, "SP", "BR")
    # 2019-02-16 23:30 happened twice in São Paulo (summer time ended at midnight): the first one wins.
    repeated = resolve_local_time(datetime(2019, 2, 16, 23, 30), "correios", sp)
    assert offset_hours(repeated) == -2
    # 2018-11-04 00:30 never happened (clocks jumped from 00:00 to 01:00): read with the offset before.
    skipped = resolve_local_time(datetime(2018, 11, 4, 0, 30), "correios", sp)
    assert skipped.astimezone(UTC) == datetime(2018, 11, 4, 3, 30, tzinfo=UTC)


def test_carrier_default_zone_and_fallbacks() -> None:
    assert str(resolve_local_time(datetime(2026, 1, 5, 8), "correios").tzinfo) == "America/Sao_Paulo"
    assert str(resolve_local_time(datetime(2026, 1, 5, 8), "ups", Place("Atlanta", "GA", "US")).tzinfo) == (
        "America/New_York"
    )
    assert str(zone_for(None)) == "UTC"
    assert str(zone_for("pombo")) == "UTC"
    # A Brazilian carrier scanning abroad: the state is not a UF and the carrier's home zone would lie.
    assert str(zone_for("correios", "Hessen", "DE")) == "UTC"
    # "SP" outside Brazil is not São Paulo.
    assert str(zone_for("dhl", "SP", "ES")) == "Europe/Berlin"


def test_an_aware_time_is_kept_as_is() -> None:
    aware = datetime.fromisoformat("2026-11-23T14:05:11-03:00")
    assert resolve_local_time(aware, "ups", Place(None, "AM", "BR")) is aware
