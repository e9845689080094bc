"""Lane keys and the fallback chain."""

from __future__ import annotations

import pytest

from rastro_eta.domain.lanes import (
    LaneAttributes,
    LaneKey,
    LaneLevel,
    lane_chain,
    normalize_code,
    region,
    zone,
)
from rastro_events import Lane, Location

pytestmark = pytest.mark.unit

FULL = LaneAttributes(
    carrier="correios", service="sedex", origin="SP", destination="RJ", destination_zone="RJ:240"
)


def test_full_attributes_give_the_whole_chain_finest_first() -> None:
    assert [k.text for k in lane_chain(FULL)] == [
        "correios/sedex/SP/RJ",
        "correios/*/SP/RJ",
        "correios/*/*/*",
        "*/*/SP/RJ:240",
        "*/*/SP/RJ",
        "*/*/*/RJ",
        "*/*/SP/*",
        "*/*/*/*",
    ]
    assert [k.level for k in lane_chain(FULL)] == list(LaneLevel)


def test_without_service_the_service_lane_is_skipped() -> None:
    chain = lane_chain(LaneAttributes(carrier="correios", origin="SP", destination="RJ"))
    assert [k.level for k in chain] == [
        LaneLevel.CARRIER_ROUTE, LaneLevel.CARRIER, LaneLevel.ROUTE, LaneLevel.DESTINATION,
        LaneLevel.ORIGIN, LaneLevel.GLOBAL,
    ]  # fmt: skip


def test_without_a_carrier_olist_style_region_lanes_apply() -> None:
    chain = lane_chain(LaneAttributes(origin="SP", destination="RJ", destination_zone="RJ:240"))
    assert [k.level for k in chain] == [
        LaneLevel.ZONE_ROUTE, LaneLevel.ROUTE, LaneLevel.DESTINATION, LaneLevel.ORIGIN, LaneLevel.GLOBAL,
    ]  # fmt: skip


def test_with_an_unknown_origin_the_destination_still_applies() -> None:
    chain = lane_chain(LaneAttributes(destination="RJ", destination_zone="RJ:240"))
    assert [k.text for k in chain] == ["*/*/*/RJ", "*/*/*/*"]
    assert lane_chain(LaneAttributes()) == (LaneKey.global_lane(),)


def test_zones_come_from_the_cep_prefix() -> None:
    assert zone(Location(state="rj", postal_code="24020-100")) == "RJ:240"
    assert zone(Location(state="RJ", postal_code="24")) is None
    assert zone(Location(postal_code="24020")) is None


@pytest.mark.parametrize("key", lane_chain(FULL), ids=lambda k: k.level.value)
def test_text_round_trips(key: LaneKey) -> None:
    assert LaneKey.parse(key.text) == key


@pytest.mark.parametrize(
    "text", ["correios/sedex/SP", "correios/sedex/*/RJ", "*/sedex/*/*", "correios/*/SP/RJ:240"]
)
def test_text_of_no_level_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        LaneKey.parse(text)


def test_a_key_must_have_exactly_the_attributes_of_its_level() -> None:
    with pytest.raises(ValueError):
        LaneKey(LaneLevel.CARRIER)
    with pytest.raises(ValueError):
        LaneKey(LaneLevel.CARRIER, carrier="correios", origin="SP")


def test_filters_and_event_lane_name_only_what_the_level_pins() -> None:
    key = LaneKey(LaneLevel.CARRIER_ROUTE, carrier="correios", origin="SP", destination="RJ")
    assert key.filters == {"carrier": "correios", "origin": "SP", "destination": "RJ"}
    assert key.to_lane() == Lane(carrier="correios", origin="SP", destination="RJ")
    assert LaneKey.global_lane().filters == {}


def test_regions_are_upper_cased_state_codes_and_codes_lower_cased() -> None:
    assert region(Location(city="Campinas", state=" sp ")) == "SP"
    assert region(Location(city="Campinas")) is None
    assert region(None) is None
    assert normalize_code(" Correios ") == "correios"
    assert normalize_code("  ") is None
