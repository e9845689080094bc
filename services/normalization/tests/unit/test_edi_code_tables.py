"""The standard EDI code tables (OCOREN, X12 214): valid rows in four languages, the spellings parsed
EDI produces resolve, and every code the ingest fixtures carry is known except the deliberate ``99``."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

import pytest

from rastro_events.taxonomy import SUBSTATUSES, Status, is_valid_substatus
from rastro_normalization.adapters.carriers import load_carrier_table, standard_table_for
from rastro_normalization.domain.codes import LANGUAGES, CodeTable, parse_code_table

pytestmark = pytest.mark.unit
EDI_FIXTURES = Path(__file__).parents[3] / "ingest" / "tests" / "fixtures" / "edi"


def table_text(name: str) -> str:
    return (resources.files("rastro_normalization.adapters.carriers") / name / "codes.csv").read_text("utf-8")


@pytest.mark.parametrize(("name", "minimum"), [("ocoren", 90), ("x12", 40)])
def test_every_row_is_valid_and_described_in_four_languages(name: str, minimum: int) -> None:
    table = parse_code_table(name, table_text(name))

    assert len(table) >= minimum
    for entry in table:
        assert entry.substatus in SUBSTATUSES
        assert is_valid_substatus(entry.status, entry.substatus)
        assert set(entry.descriptions) == set(LANGUAGES), entry.code
        assert entry.code.startswith(f"{name.upper()}-")


@pytest.mark.parametrize(
    ("code", "status", "substatus"),
    [
        ("OCOREN-01", Status.DELIVERED, "delivered.delivered"),
        ("OCOREN-1", Status.DELIVERED, "delivered.delivered"),
        ("ocoren-001", Status.DELIVERED, "delivered.delivered"),
        ("OCOREN-03", Status.FAILED_ATTEMPT, "failed_attempt.refused"),
        ("OCOREN-06", Status.FAILED_ATTEMPT, "failed_attempt.address_issue"),
        ("OCOREN-25", Status.RETURNED, "returned.to_sender"),
        ("OCOREN-46", Status.FAILED_ATTEMPT, "failed_attempt.recipient_absent"),
        ("OCOREN-79", Status.EXCEPTION, "exception.damaged"),
        ("OCOREN-98", Status.IN_TRANSIT, "in_transit.arrived_at_facility"),
        ("X12-D1", Status.DELIVERED, "delivered.delivered"),
        ("x12-d1", Status.DELIVERED, "delivered.delivered"),
        (" X12-X6 ", Status.IN_TRANSIT, "in_transit.in_route"),
        ("X12-AF", Status.IN_TRANSIT, "in_transit.picked_up"),
        ("X12-A7", Status.FAILED_ATTEMPT, "failed_attempt.refused"),
        ("X12-SD", Status.IN_TRANSIT, "in_transit.delayed"),
    ],
)
def test_spellings_resolve_through_the_standard_table(code: str, status: Status, substatus: str) -> None:
    table = standard_table_for(code)

    assert table is not None
    entry = table.lookup(code)
    assert entry is not None, code
    assert (entry.status, entry.substatus) == (status, substatus)


def fixture_codes(name: str) -> list[str]:
    """Occurrence codes read straight off the fixture bytes (the tables must not depend on ingest code)."""
    text = (EDI_FIXTURES / name).read_bytes().decode("latin-1")
    if name.endswith(".edi"):
        return [f"X12-{m}" for m in re.findall(r"AT7\*([A-Z0-9]{1,2})\*", text)]
    lines = text.splitlines()
    if len(lines[0]) > 120:  # OCOREN 5.0: three-digit code at columns 30-32 of record 542
        return [f"OCOREN-{line[29:32]}" for line in lines if line.startswith("542")]
    return [f"OCOREN-{line[28:30]}" for line in lines if line.startswith("342")]


@pytest.mark.parametrize("name", ["ocoren31_ok.txt", "ocoren50_ok.txt", "x12_214_ok.edi"])
def test_every_code_in_the_good_fixtures_is_in_the_table(name: str) -> None:
    codes = fixture_codes(name)

    assert len(codes) >= 4
    for code in codes:
        table = standard_table_for(code)
        assert table is not None and code in table, code


def test_the_unknown_code_fixture_carries_a_code_the_table_lacks() -> None:
    table: CodeTable = load_carrier_table("ocoren")

    assert fixture_codes("ocoren_unknown_code.txt") == ["OCOREN-01", "OCOREN-99"]
    assert "OCOREN-01" in table
    assert "OCOREN-99" not in table
