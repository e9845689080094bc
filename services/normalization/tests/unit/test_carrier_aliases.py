"""Carrier names as shops type them resolve to one canonical carrier id."""

from __future__ import annotations

import pytest

from rastro_normalization.domain.carriers import CARRIERS, resolve_carrier

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("name", "carrier"),
    [
        ("correios", "correios"),
        ("Correios", "correios"),
        ("ECT", "correios"),
        ("ect", "correios"),
        ("correios-br", "correios"),
        (" Correios BR ", "correios"),
        ("CORREIOS_BR", "correios"),
        ("Empresa Brasileira de Correios e Telegrafos", "correios"),
        ("SEDEX", "correios"),
        ("JadLog", "jadlog"),
        ("LOGGI", "loggi"),
        ("DHL Express", "dhl"),
        ("ups", "ups"),
        ("Fed Ex", "fedex"),
        ("FedEx", "fedex"),
        ("usps", "usps"),
    ],
)
def test_builtin_aliases(name: str, carrier: str) -> None:
    assert resolve_carrier(name) == carrier


@pytest.mark.parametrize("name", [None, "", "   ", "-", "Transportadora Desconhecida"])
def test_unknown_names_resolve_to_none(name: str | None) -> None:
    assert resolve_carrier(name) is None


def test_every_canonical_id_resolves_to_itself() -> None:
    assert all(resolve_carrier(carrier) == carrier for carrier in CARRIERS)


def test_tenant_aliases_take_precedence_and_are_folded() -> None:
    aliases = {"Transportadora X": "tx-logistica", "ECT": " Jadlog "}
    assert resolve_carrier("transportadora  x", aliases) == "tx-logistica"
    assert resolve_carrier("ect", aliases) == "jadlog"
    assert resolve_carrier("correios", aliases) == "correios"


def test_blank_tenant_alias_target_is_ignored() -> None:
    assert resolve_carrier("ECT", {"ect": "  "}) == "correios"
