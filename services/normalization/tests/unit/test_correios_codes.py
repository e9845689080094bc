"""The Correios code table: every row valid, every Correios SRO code mapped, the tricky ones right."""

from __future__ import annotations

import csv
import io
import os
import re
from importlib import resources
from pathlib import Path

import pytest

from rastro_events.taxonomy import SUBSTATUSES, Status
from rastro_normalization.adapters.carriers import load_carrier_table
from rastro_normalization.domain.codes import WITHDRAW_PREVIOUS

pytestmark = pytest.mark.unit

REPO_ROOT = Path(__file__).resolve().parents[4]
CODE = re.compile(r"[A-Z]+-\d{2}")


def _rows() -> list[dict[str, str]]:
    source = resources.files("rastro_normalization.adapters.carriers") / "correios" / "codes.csv"
    return list(csv.DictReader(io.StringIO(source.read_text(encoding="utf-8"))))


ROWS = _rows()


def _source_csv() -> Path:
    data_dir = Path(os.environ.get("RASTRO_DATA_DIR", "../shared/data"))
    if not data_dir.is_absolute():
        data_dir = REPO_ROOT / data_dir
    return data_dir / "carriers" / "correios_sro_events.csv"


@pytest.fixture(scope="module")
def source_rows() -> list[dict[str, str]]:
    path = _source_csv()
    if not path.is_file():
        pytest.skip(
            f"Correios source table not found at {path}; set RASTRO_DATA_DIR to the shared data folder"
        )
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.parametrize("row", ROWS, ids=[row["code"] for row in ROWS])
def test_row_is_valid(row: dict[str, str]) -> None:
    assert CODE.fullmatch(row["code"]), "codes are written <TYPE>-<NN>"
    status = Status(row["status"])
    assert row["substatus"] in SUBSTATUSES
    assert row["substatus"].split(".", 1)[0] == status.value
    for column in ("description_pt_br", "description_en", "description_es", "description_fr"):
        assert row[column].strip(), f"{column} is empty"
    expected_effect = WITHDRAW_PREVIOUS if row["code"].startswith("EST-") else ""
    assert row["effect"] == expected_effect


def test_codes_are_unique() -> None:
    codes = [row["code"] for row in ROWS]
    assert len(codes) == len(set(codes))


def test_loaded_table_matches_the_csv() -> None:
    table = load_carrier_table("correios")
    assert len(table) == len(ROWS)
    for row in ROWS:
        entry = table.lookup(row["code"])
        assert entry is not None
        assert (entry.status.value, entry.substatus) == (row["status"], row["substatus"])
        assert dict(entry.descriptions) == {
            "pt-BR": row["description_pt_br"],
            "en": row["description_en"],
            "es": row["description_es"],
            "fr": row["description_fr"],
        }


def test_every_source_code_is_mapped_and_nothing_is_invented(source_rows: list[dict[str, str]]) -> None:
    source = {f"{r['event_type'].strip()}-{int(r['status']):02d}": r for r in source_rows}
    mapped = {row["code"]: row for row in ROWS}
    assert sorted(set(source) - set(mapped)) == [], "source codes missing from codes.csv"
    assert sorted(set(mapped) - set(source)) == [], "codes.csv has codes Correios does not list"
    for code, row in mapped.items():
        assert row["description_pt_br"].startswith(source[code]["description"].strip().rstrip(".")), code


TRICKY = [
    # code, status, substatus, effect
    ("BDE-01", Status.DELIVERED, "delivered.signed", None),
    ("BDI-01", Status.DELIVERED, "delivered.at_pickup_point", None),
    ("BDE-02", Status.FAILED_ATTEMPT, "failed_attempt.recipient_absent", None),
    ("BDE-09", Status.EXCEPTION, "exception.lost", None),
    ("BDE-10", Status.RETURNING, "returning.address_issue", None),
    ("BDE-23", Status.RETURNED, "returned.to_sender", None),
    ("EST-01", Status.IN_TRANSIT, "in_transit.carrier_correction", WITHDRAW_PREVIOUS),
    ("FC-01", Status.RETURNING, "returning.to_sender", None),
    ("IDC-01", Status.EXCEPTION, "exception.lost", None),
    ("LDI-01", Status.AVAILABLE_FOR_PICKUP, "available_for_pickup.at_pickup_point", None),
    ("OEC-01", Status.OUT_FOR_DELIVERY, "out_for_delivery.with_courier", None),
    ("PAR-16", Status.IN_TRANSIT, "in_transit.customs_clearance", None),
    ("PO-01", Status.IN_TRANSIT, "in_transit.picked_up", None),
    ("RO-01", Status.IN_TRANSIT, "in_transit.departed_facility", None),
    ("DO-01", Status.IN_TRANSIT, "in_transit.departed_facility", None),
    ("BDE-04", Status.RETURNING, "returning.refused", None),
    ("BDE-07", Status.FAILED_ATTEMPT, "failed_attempt.address_issue", None),
    ("BDE-28", Status.EXCEPTION, "exception.damaged", None),
    ("BDE-50", Status.EXCEPTION, "exception.stolen", None),
    ("BDE-54", Status.EXCEPTION, "exception.customs_hold", None),
    ("OEC-09", Status.RETURNING, "returning.to_sender", None),
    ("BDI-14", Status.CANCELLED, "cancelled.by_shipper", None),
]


@pytest.mark.parametrize(("code", "status", "substatus", "effect"), TRICKY, ids=[t[0] for t in TRICKY])
def test_tricky_code(
    code: str, status: Status, substatus: str, effect: str | None, source_rows: list[dict[str, str]]
) -> None:
    kind, number = code.split("-")
    if not any(r["event_type"] == kind and int(r["status"]) == int(number) for r in source_rows):
        pytest.skip(f"{code} is not in the Correios source table")
    entry = load_carrier_table("correios").lookup(code)
    assert entry is not None
    assert (entry.status, entry.substatus, entry.effect) == (status, substatus, effect)


def test_every_est_code_withdraws_the_previous_event() -> None:
    table = load_carrier_table("correios")
    est = [entry for entry in table if entry.code.startswith("EST-")]
    assert est and all(entry.effect == WITHDRAW_PREVIOUS for entry in est)
    assert all(entry.effect is None for entry in table if not entry.code.startswith("EST-"))
