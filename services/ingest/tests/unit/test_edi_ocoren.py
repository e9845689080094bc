"""OCOREN 3.1 and 5.0: the golden fixtures parse into the right occurrences, broken ones into errors
with line and column, and line ends, trimmed blanks and encodings do not change the result."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from rastro_ingest.domain.edi import EdiError, EdiFormatError, detect_format, parse_edi

pytestmark = pytest.mark.unit
FIXTURES = Path(__file__).parent.parent / "fixtures" / "edi"
SAO_PAULO = ZoneInfo("America/Sao_Paulo")


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def test_ocoren31_ok_reads_every_occurrence() -> None:
    doc = parse_edi(fixture("ocoren31_ok.txt"))

    assert doc.errors == ()
    assert doc.format == "ocoren-3.1"
    assert (doc.sender, doc.interchange_id) == ("TRANSPORTES RAPIDO SUL LTDA", "OCO150318301")
    got = [(o.line, o.code, o.invoice_series, o.invoice_number, o.reason) for o in doc.occurrences]
    assert got == [
        (4, "01", "1", "123456", None),
        (5, "06", "1", "123457", None),
        (6, "03", "1", "123458", "01"),
        (9, "79", "2", "987654", None),
        (11, "25", "2", "987655", "01"),
        (12, "46", "2", "987656", None),
    ]


def test_ocoren31_times_are_local_to_the_given_zone() -> None:
    first = parse_edi(fixture("ocoren31_ok.txt")).occurrences[0]
    assert first.occurred_at == datetime(2026, 3, 14, 10, 15, tzinfo=SAO_PAULO)
    assert first.occurred_at.utcoffset() is not None

    lisbon = parse_edi(fixture("ocoren31_ok.txt"), timezone=ZoneInfo("Europe/Lisbon")).occurrences[0]
    assert (first.occurred_at - lisbon.occurred_at).total_seconds() == 3 * 3600


def test_ocoren31_carrier_comes_from_each_document_and_latin1_text_decodes() -> None:
    occurrences = parse_edi(fixture("ocoren31_ok.txt")).occurrences

    assert {(o.carrier_document, o.carrier_name) for o in occurrences} == {
        ("22333444000181", "TRANSPORTES RAPIDO SUL LTDA"),
        ("33444555000181", "EXPRESSO SERRA GAÚCHA LTDA"),
    }
    assert occurrences[1].description == "Endereço não localizado: número 1500 inexistente na Rua São João"
    assert occurrences[5].description == "Destinatário ausente, aviso deixado na portaria"
    assert occurrences[3].raw["343"][0]["cte_number"].strip() == "000045871"
    assert all(
        o.invoice_key is None and o.tracking_number is None and o.location is None for o in occurrences
    )


def test_crlf_lf_and_trimmed_trailing_blanks_give_the_same_document() -> None:
    crlf = fixture("ocoren31_ok.txt")
    lf = crlf.replace(b"\r\n", b"\n")
    trimmed = b"\n".join(line.rstrip() for line in lf.split(b"\n"))

    assert parse_edi(crlf) == parse_edi(lf) == parse_edi(trimmed)


def test_ocoren50_ok_reads_three_digit_codes_keys_and_utf8_text() -> None:
    doc = parse_edi(fixture("ocoren50_ok.txt"))

    assert doc.errors == ()
    assert doc.format == "ocoren-5.0"
    got = [(o.code, o.invoice_series, o.invoice_number) for o in doc.occurrences]
    assert got == [("00", "3", "555001"), ("98", "3", "555001"), ("91", "3", "555002"), ("01", "3", "555003")]
    assert [o.invoice_key for o in doc.occurrences][2:] == [
        "35260311222333000181550030005550021702345614",
        "35260311222333000181550030005550031192837461",
    ]
    assert doc.occurrences[3].description == "Recebido por João Araújo"
    assert doc.occurrences[0].carrier_name == "RODOVIÁRIO CENTRO-OESTE TRANSPORTES LTDA"
    assert doc.occurrences[3].occurred_at == datetime(2026, 3, 16, 17, 42, tzinfo=SAO_PAULO)


def test_ocoren50_as_latin1_with_crlf_is_the_same_document() -> None:
    utf8 = fixture("ocoren50_ok.txt")
    latin1 = utf8.decode("utf-8").replace("\n", "\r\n").encode("latin-1")

    assert parse_edi(latin1) == parse_edi(utf8)


def test_a_key_of_another_invoice_is_an_error_at_its_column() -> None:
    text = fixture("ocoren50_ok.txt").decode("utf-8")
    wrong = text.replace(
        "35260311222333000181550030005550021702345614", "35260311222333000181550030005550991702345610"
    )

    doc = parse_edi(wrong.encode("utf-8"))

    assert len(doc.errors) == 1
    assert (doc.errors[0].line, doc.errors[0].column) == (9, 4)
    assert doc.occurrences == ()


def test_a_549_trailer_with_the_wrong_count_is_an_error() -> None:
    text = fixture("ocoren50_ok.txt").decode("utf-8").replace("5490004", "5490005")

    errors = parse_edi(text.encode("utf-8")).errors

    assert [(e.line, e.column) for e in errors] == [(13, 4)]
    assert "counts 5 occurrences, the document has 4" in errors[0].message


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("ocoren31_wrong_length.txt", [(4, 121, "must be 120 characters, got 122"), (6, 41, "got 40")]),
        ("ocoren31_truncated.txt", [(5, 31, "record 342 must be 120 characters, got 30")]),
        (
            "ocoren31_bad_date.txt",
            [(4, 31, "'31022026' is not a valid date"), (5, 39, "'2460' is not a valid time")],
        ),
    ],
)
def test_broken_files_report_line_and_column(name: str, expected: list[tuple[int, int, str]]) -> None:
    doc = parse_edi(fixture(name))

    assert [(e.line, e.column) for e in doc.errors] == [(line, column) for line, column, _ in expected]
    for error, (_, _, text) in zip(doc.errors, expected, strict=True):
        assert text in error.message
    assert doc.occurrences == ()


def test_unknown_code_is_not_a_parse_error() -> None:
    doc = parse_edi(fixture("ocoren_unknown_code.txt"))

    assert doc.errors == ()
    assert [o.code for o in doc.occurrences] == ["01", "99"]


def _lines(name: str) -> list[str]:
    return fixture(name).decode("latin-1").split("\r\n")


def _parse_lines(lines: list[str]) -> tuple[EdiError, ...]:
    return parse_edi("\r\n".join(lines).encode("latin-1"), "ocoren").errors


def test_structure_errors() -> None:
    ok = _lines("ocoren31_ok.txt")

    header_only = _parse_lines(ok[:1])
    assert [(e.line, e.column) for e in header_only] == [(1, 1)]
    assert "without any 342 occurrence record" in header_only[0].message

    orphan = _parse_lines([ok[0], ok[3], *ok[1:3]])
    assert [(e.line, e.column) for e in orphan] == [(2, 1)]
    assert "before any 340 document header" in orphan[0].message

    unknown = _parse_lines([*ok[:3], "351" + ok[3][3:], ok[3]])
    assert [(e.line, e.column) for e in unknown] == [(4, 1)]
    assert "unknown record identifier '351'" in unknown[0].message

    no_header = _parse_lines(ok[1:])
    assert (no_header[0].line, no_header[0].column) == (1, 1)
    assert "must start with a 000 header" in no_header[0].message


def test_non_numeric_fields_and_short_codes_are_errors() -> None:
    ok = _lines("ocoren31_ok.txt")
    letters_in_number = ok[3][:20] + "00A23456" + ok[3][28:]
    one_digit_code = ok[3][:28] + "1 " + ok[3][30:]

    errors = _parse_lines([*ok[:3], letters_in_number, one_digit_code])

    assert [(e.line, e.column) for e in errors] == [(4, 21), (5, 29)]
    assert "invoice_number must be numeric" in errors[0].message


def test_detection() -> None:
    assert detect_format(fixture("ocoren31_ok.txt")) == "ocoren"
    assert detect_format(b"\xef\xbb\xbf" + fixture("ocoren50_ok.txt")) == "ocoren"
    for data, reason in [(b"", "empty"), (b"UNB+UNOC:3+X", "EDIFACT"), (b"hello,world\n1,2", "neither")]:
        with pytest.raises(EdiFormatError, match=reason):
            detect_format(data)
    with pytest.raises(EdiFormatError):
        parse_edi(b"\x00\x01binary")
    with pytest.raises(ValueError, match="unknown EDI format"):
        parse_edi(fixture("ocoren31_ok.txt"), "notfis")
