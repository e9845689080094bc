"""CSV rows → event dicts: column mapping, delimiter sniffing, ERP date formats, deterministic ids."""

from __future__ import annotations

import json
from zoneinfo import ZoneInfo

import pytest

from rastro_ingest.domain.csv_rows import (
    CsvOptionsError,
    RowDefaults,
    RowProblem,
    event_key,
    parse_mapping,
    resolve_columns,
    row_to_event,
    sniff_delimiter,
)
from rastro_ingest.domain.events_in import Accepted, read_event

pytestmark = pytest.mark.unit
ERP_HEADER = ["Rastreio", "Transportadora", "Codigo", "Descricao", "DataHora", "Cidade", "UF", "Obs"]
ERP_MAPPING = {
    "tracking_number": "Rastreio",
    "carrier": "transportadora",  # header matching ignores case and surrounding spaces
    "status_code": "Codigo",
    "description": "Descricao",
    "occurred_at": "DataHora",
    "location.city": "Cidade",
    "location.state": "UF",
}


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("a,b,c", ","),
        ("a;b;c", ";"),
        ('"Cidade, UF";Rastreio;Codigo', ";"),  # a comma inside quotes does not count
        ("a\tb\tc", "\t"),
        ("only_one_column", ","),
    ],
)
def test_sniff_delimiter(line: str, expected: str) -> None:
    assert sniff_delimiter(line) == expected


def test_erp_headers_through_a_mapping_make_a_valid_event() -> None:
    columns = resolve_columns(ERP_HEADER, parse_mapping(json.dumps(ERP_MAPPING)))
    assert columns.ignored == ("Obs",)
    cells = [
        "AA123456785BR",
        "correios",
        "BDE-01",
        "Objeto entregue",
        "23/11/2026 14:05",
        "São Paulo",
        "SP",
        "",
    ]
    event = row_to_event(cells, columns, RowDefaults(timezone=ZoneInfo("America/Sao_Paulo")))
    assert event == {
        "type": "tracking.event",
        "tracking_number": "AA123456785BR",
        "carrier": "correios",
        "status_code": "BDE-01",
        "description": "Objeto entregue",
        "occurred_at": "2026-11-23T14:05:00-03:00",
        "location": {"city": "São Paulo", "state": "SP"},
    }
    assert isinstance(read_event(2, event), Accepted)


def test_own_field_names_need_no_mapping_and_underscores_stand_for_dots() -> None:
    columns = resolve_columns(["type", "order_id", "occurred_at", "destination_city", "promised_date"], {})
    event = row_to_event(
        ["order.created", "P1", "2026-11-23T10:00:00Z", "Recife", "30/11/2026"], columns, RowDefaults()
    )
    assert event == {
        "type": "order.created",
        "order_id": "P1",
        "occurred_at": "2026-11-23T10:00:00+00:00",
        "destination": {"city": "Recife"},
        "promised_date": "2026-11-30",
    }


def test_a_time_without_offset_and_without_timezone_is_rejected_with_a_hint() -> None:
    columns = resolve_columns(["tracking_number", "status_code", "occurred_at"], {})
    with pytest.raises(RowProblem) as problem:
        row_to_event(["X1", "PO-01", "23/11/2026 10:00"], columns, RowDefaults())
    assert problem.value.field == "occurred_at" and "timezone" in problem.value.message


def test_empty_cells_are_absent_and_short_rows_are_padded() -> None:
    columns = resolve_columns(["tracking_number", "status_code", "description"], {})
    assert row_to_event(["X1", " PO-01 "], columns, RowDefaults()) == {
        "type": "tracking.event",
        "tracking_number": "X1",
        "status_code": "PO-01",
    }


def test_extra_cells_are_a_row_error_but_trailing_empty_ones_are_not() -> None:
    columns = resolve_columns(["tracking_number", "status_code"], {})
    assert row_to_event(["X1", "PO-01", "", ""], columns, RowDefaults())["status_code"] == "PO-01"
    with pytest.raises(RowProblem, match="3 columns; the header has 2"):
        row_to_event(["X1", "PO-01", "surprise"], columns, RowDefaults())


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ("{not json", "not valid JSON"),
        ('["tracking_number"]', "must be an object"),
        ('{"tracking_number": 3}', "must be an object"),
        ('{"tracking_no": "Rastreio"}', "unknown field"),
    ],
)
def test_bad_mappings(mapping: str, message: str) -> None:
    with pytest.raises(CsvOptionsError, match=message):
        parse_mapping(mapping)


def test_a_mapping_to_a_missing_header_or_no_known_column_is_refused() -> None:
    with pytest.raises(CsvOptionsError, match="'Rastreio', which is not a column"):
        resolve_columns(["Tracking"], {"tracking_number": "Rastreio"})
    with pytest.raises(CsvOptionsError, match="no column matches"):
        resolve_columns(["foo", "bar"], {})


def test_event_keys_depend_on_tenant_and_content_only() -> None:
    a = event_key("acme", "rastro.tracking.raw.v1", '{"n":1}')
    assert a == event_key("acme", "rastro.tracking.raw.v1", '{"n":1}')
    assert a != event_key("other", "rastro.tracking.raw.v1", '{"n":1}')
    assert a != event_key("acme", "rastro.tracking.raw.v1", '{"n":2}')
    assert event_key("acme", "t", "x", "my-id") == event_key("acme", "t", "y", "my-id")
