"""Code-table parsing and lookup, independent of any carrier's data."""

from __future__ import annotations

import pytest

from rastro_events.taxonomy import Status
from rastro_normalization.adapters.carriers import UnknownCarrierTable, load_carrier_table
from rastro_normalization.domain.codes import CodeEntry, CodeTableError, normalize_code, parse_code_table

pytestmark = pytest.mark.unit

HEADER = "code,status,substatus,description_pt_br,description_en,description_es,description_fr,effect\n"


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("BDE-01", "BDE-01"),
        ("BDE-1", "BDE-01"),
        ("bde-01", "BDE-01"),
        ("BDE 01", "BDE-01"),
        ("  BDE-01 ", "BDE-01"),
        ("BDE01", "BDE-01"),
        ("bde - 1", "BDE-01"),
        ("BDE-00", "BDE-00"),
        ("PO-9", "PO-09"),
        ("fc_47", "FC-47"),
        ("delivered", "DELIVERED"),
        (" out  for delivery ", "OUT FOR DELIVERY"),
    ],
)
def test_normalize_code(raw: str, canonical: str) -> None:
    assert normalize_code(raw) == canonical
    assert normalize_code(raw, "correios") == canonical


@pytest.mark.parametrize(
    ("carrier", "raw", "canonical"),
    [
        ("usps", "1", "01"),
        ("usps", " 01 ", "01"),
        ("usps", "of", "OF"),
        ("ups", "11", "011"),
        ("ups", "x", "X"),
        ("ups", "mv", "MV"),
        ("fedex", " od ", "OD"),
        ("dhl", "a1", "A1"),  # a Correios-style spelling would turn it into A-01
        ("jadlog", "Em rota", "EM ROTA"),
        ("jadlog", "em_rota", "EM ROTA"),
        ("jadlog", "TRANSFERÊNCIA", "TRANSFERENCIA"),
        ("loggi", "saiu-para-entrega", "SAIU PARA ENTREGA"),
        ("nosuchcarrier", "bde 1", "BDE-01"),
    ],
)
def test_normalize_code_per_carrier_style(carrier: str, raw: str, canonical: str) -> None:
    assert normalize_code(raw, carrier) == canonical


@pytest.mark.parametrize("spelling", ["BDE-1", "bde-01", "BDE 01", " BDE-01 ", "Bde01"])
def test_lookup_tolerates_spellings(spelling: str) -> None:
    entry = load_carrier_table("correios").lookup(spelling)
    assert entry is not None and entry.code == "BDE-01"


def test_lookup_of_unknown_code_is_none() -> None:
    table = load_carrier_table("correios")
    assert table.lookup("ZZZ-99") is None
    assert "ZZZ-99" not in table
    assert "bde 1" in table


def test_loader_caches_and_rejects_unknown_carriers() -> None:
    assert load_carrier_table("correios") is load_carrier_table("correios")
    with pytest.raises(UnknownCarrierTable):
        load_carrier_table("nosuchcarrier")
    with pytest.raises(UnknownCarrierTable):
        load_carrier_table("../correios")


def test_parse_reads_descriptions_and_effect() -> None:
    table = parse_code_table(
        "acme", HEADER + "X-1,in_transit,in_transit.in_route,Em rota,In route,En ruta,En route,\n"
    )
    entry = table.lookup("x 01")
    assert entry == CodeEntry(
        code="X-01",
        status=Status.IN_TRANSIT,
        substatus="in_transit.in_route",
        descriptions={"pt-BR": "Em rota", "en": "In route", "es": "En ruta", "fr": "En route"},
        effect=None,
    )
    assert table.carrier == "acme"


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("X-1,moving,in_transit.in_route,a,b,c,d,", "unknown status"),
        ("X-1,in_transit,delivered.signed,a,b,c,d,", "substatus"),
        ("X-1,in_transit,in_transit.teleported,a,b,c,d,", "substatus"),
        ("X-1,in_transit,in_transit.in_route,a,b,c,d,explode", "effect"),
        (",in_transit,in_transit.in_route,a,b,c,d,", "empty code"),
    ],
)
def test_parse_rejects_bad_rows(row: str, message: str) -> None:
    with pytest.raises(CodeTableError, match=message):
        parse_code_table("acme", HEADER + row + "\n")


def test_parse_rejects_duplicate_codes_and_missing_columns() -> None:
    rows = "X-1,in_transit,in_transit.in_route,a,b,c,d,\nx-01,in_transit,in_transit.in_route,a,b,c,d,\n"
    with pytest.raises(CodeTableError, match="twice"):
        parse_code_table("acme", HEADER + rows)
    with pytest.raises(CodeTableError, match="lacks columns"):
        parse_code_table("acme", "code,status\nX-1,in_transit\n")
    old_format = "code,status,substatus,description_pt_br,description_en,effect\n"
    with pytest.raises(CodeTableError, match="description_es"):
        parse_code_table("acme", old_format + "X-1,in_transit,in_transit.in_route,a,b,\n")


def test_empty_descriptions_are_left_out() -> None:
    table = parse_code_table("acme", HEADER + "X-1,in_transit,in_transit.in_route,Em rota,In route,,,\n")
    entry = table.lookup("X-01")
    assert entry is not None and dict(entry.descriptions) == {"pt-BR": "Em rota", "en": "In route"}


def test_lookup_uses_the_carrier_style() -> None:
    header_row = HEADER + "EM ROTA,out_for_delivery,out_for_delivery.with_courier,a,b,c,d,\n"
    assert parse_code_table("jadlog", header_row).lookup("em-rota") is not None
    assert parse_code_table("usps", HEADER + "01,delivered,delivered.delivered,a,b,c,d,\n").lookup("1")


def test_entries_are_read_only() -> None:
    entry = load_carrier_table("correios").lookup("BDE-01")
    assert entry is not None
    with pytest.raises(TypeError):
        entry.descriptions["en"] = "changed"  # type: ignore[index]
