"""Tenant mappings (de-para) as pure functions: overrides, service aliases, validation."""

from __future__ import annotations

from types import MappingProxyType

import pytest

from rastro_events import Status
from rastro_normalization.api import _language
from rastro_normalization.domain.codes import CodeEntry, build_code_table
from rastro_normalization.domain.mappings import (
    EMPTY_MAPPINGS,
    MappingError,
    TenantMappings,
    check_alias,
    check_service_id,
    lookup_code,
    make_override,
)
from rastro_normalization.domain.services import canonical_service, fold_service_name

pytestmark = pytest.mark.unit

TABLE = build_code_table(
    "correios",
    [
        CodeEntry(
            "BDE-01", Status.DELIVERED, "delivered.signed", {"pt-BR": "Objeto entregue", "en": "Delivered"}
        ),
        CodeEntry("EST-01", Status.IN_TRANSIT, "in_transit.carrier_correction", effect="withdraw_previous"),
    ],
)


def with_overrides(*overrides: object) -> TenantMappings:
    return TenantMappings(version=3, overrides=MappingProxyType({(o.carrier, o.code): o for o in overrides}))  # type: ignore[attr-defined]


def test_without_mappings_the_table_answers() -> None:
    entry = lookup_code("correios", "bde 1", TABLE, EMPTY_MAPPINGS)
    assert entry is not None and entry.status == Status.DELIVERED
    assert lookup_code("correios", "ZZZ-99", TABLE, EMPTY_MAPPINGS) is None


def test_an_override_maps_a_code_the_table_lacks() -> None:
    mappings = with_overrides(
        make_override("correios", "zzz 99", "exception", "exception.lost", {"en": "Lost"})
    )
    entry = lookup_code("correios", "ZZZ-99", TABLE, mappings)
    assert entry is not None
    assert (entry.code, entry.status, entry.substatus) == ("ZZZ-99", Status.EXCEPTION, "exception.lost")
    assert entry.descriptions == {"en": "Lost"}


def test_an_override_wins_over_the_table_and_keeps_its_descriptions() -> None:
    mappings = with_overrides(make_override("correios", "BDE-01", "delivered", "delivered.pod_available", {}))
    entry = lookup_code("correios", "BDE-01", TABLE, mappings)
    assert entry is not None and entry.substatus == "delivered.pod_available"
    assert entry.descriptions["pt-BR"] == "Objeto entregue"


def test_an_override_of_a_withdrawal_is_a_plain_status() -> None:
    mappings = with_overrides(make_override("correios", "EST-01", "in_transit", None, {}))
    entry = lookup_code("correios", "EST-01", TABLE, mappings)
    assert entry is not None and entry.effect is None


def test_overrides_apply_without_a_code_table_and_only_to_their_carrier() -> None:
    mappings = with_overrides(make_override("jadlog", "ENTREGUE", "delivered", None, {}))
    entry = lookup_code("jadlog", "entregue", None, mappings)
    assert entry is not None and entry.substatus == "delivered.delivered"
    assert lookup_code("correios", "ENTREGUE", TABLE, mappings) is None


@pytest.mark.parametrize(
    ("status", "substatus", "expected"),
    [
        ("exception", None, "exception.other"),
        ("failed_attempt", None, "failed_attempt.other"),
        ("in_transit", None, "in_transit.in_route"),
        ("delivered", None, "delivered.delivered"),
        ("returning", "returning.refused", "returning.refused"),
    ],
)
def test_override_substatus_defaults(status: str, substatus: str | None, expected: str) -> None:
    assert make_override("correios", "X-1", status, substatus, {}).substatus == expected


@pytest.mark.parametrize(
    ("status", "substatus"),
    [("lost", None), ("delivered", "exception.lost"), ("delivered", "delivered.nope")],
)
def test_invalid_overrides_are_refused(status: str, substatus: str | None) -> None:
    with pytest.raises(MappingError):
        make_override("correios", "X-1", status, substatus, {})


@pytest.mark.parametrize(
    ("name", "carrier", "expected"),
    [
        ("04014", "correios", "sedex"),
        ("04510", "correios", "pac"),
        ("40215", "correios", "sedex_10"),
        ("SEDEX 10", "correios", "sedex_10"),
        ("Sedex-12", "correios", "sedex_12"),
        ("40169", "correios", "sedex_12"),
        ("40290", "correios", "sedex_hoje"),
        ("Sedex Hoje", "correios", "sedex_hoje"),
        ("03220", "correios", "sedex"),
        ("03298", "correios", "pac"),
        ("PAC", "correios", "pac"),
        ("sedex_10", "correios", "sedex_10"),
        ("Expresso Premium", "correios", "Expresso Premium"),  # unknown: kept as sent
        ("4014", "correios", "4014"),  # leading zeros matter in numeric codes
        ("Ground", "ups", "ups_ground"),
        ("  ", "correios", None),
        (None, "correios", None),
    ],
)
def test_builtin_service_aliases(name: str | None, carrier: str, expected: str | None) -> None:
    assert canonical_service(name, carrier) == expected


def test_tenant_service_aliases_win() -> None:
    aliases = {fold_service_name("SEDEX CONTRATO AG"): "sedex", fold_service_name("PAC"): "pac_mini"}
    assert canonical_service("Sedex contrato ag", "correios", aliases) == "sedex"
    assert canonical_service("pac", "correios", aliases) == "pac_mini"
    assert canonical_service("SEDEX 10", None, aliases) == "SEDEX 10"


def test_alias_and_service_id_validation() -> None:
    assert check_alias("  Correios   BR ") == "Correios BR"
    assert check_service_id(" SEDEX_10 ") == "sedex_10"
    for bad in ("", " - ", "x" * 101):
        with pytest.raises(MappingError):
            check_alias(bad)
    with pytest.raises(MappingError):
        check_service_id("sedex 10")


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, "pt-BR"),
        ("", "pt-BR"),
        ("en-US,en;q=0.9", "en"),
        ("es-AR", "es"),
        ("fr-CA, en;q=0.5", "fr"),
        ("de-DE, en;q=0.3, es;q=0.7", "es"),
        ("en;q=0, fr", "fr"),
        ("ja", "pt-BR"),
        ("pt-PT", "pt-BR"),
        ("*", "pt-BR"),
        ("en;q=abc, es;q=0.1", "es"),
    ],
)
def test_accept_language_picks_the_best_supported_language(header: str | None, expected: str) -> None:
    assert _language(header) == expected
