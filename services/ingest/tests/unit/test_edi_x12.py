"""X12 214: envelope counts and control numbers, AT7 occurrences with their references and locations,
and the 997 answering the interchange (read back with the package's own tokenizer)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from rastro_ingest.domain.edi import acknowledgement_997, detect_format, parse_edi
from rastro_ingest.domain.edi.x12_syntax import Segment, tokenize

pytestmark = pytest.mark.unit
FIXTURES = Path(__file__).parent.parent / "fixtures" / "edi"
NOW = datetime(2026, 3, 15, 19, 0, tzinfo=UTC)


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def edited(old: str, new: str) -> bytes:
    text = fixture("x12_214_ok.edi").decode()
    assert old in text
    return text.replace(old, new, 1).encode()


def test_good_214_gives_one_occurrence_per_status_at7() -> None:
    doc = parse_edi(fixture("x12_214_ok.edi"))

    assert doc.errors == ()
    assert (doc.format, doc.sender, doc.recipient, doc.interchange_id) == (
        "x12-214",
        "RSTL",
        "RASTROSHOP",
        "000000101",
    )
    got = [(o.line, o.code, o.reason, o.tracking_number, o.invoice_number) for o in doc.occurrences]
    assert got == [
        (10, "AF", "NS", "RST0000001BR", "123456"),
        (14, "X6", "NS", "RST0000001BR", "123456"),
        (17, "X1", "NS", "RST0000001BR", "123456"),
        (20, "D1", "NS", "RST0000001BR", "123456"),
        (30, "AF", "NS", "RST0000002BR", "123457"),
        (34, "X6", "NS", "RST0000002BR", "123457"),
        (38, "AH", "B1", "RST0000002BR", "123457"),
        (42, "A7", "BS", "RST0000002BR", "123457"),
    ]
    assert {(o.carrier_name, o.carrier_document) for o in doc.occurrences} == {("ROADSTAR LOGISTICS", "RSTL")}
    assert doc.control["ISA13"] == "000000101" and doc.control["GS06"] == "101"
    assert doc.control["ST02"] == "0001,0002"


def test_locations_and_time_codes() -> None:
    occurrences = parse_edi(fixture("x12_214_ok.edi"), timezone=ZoneInfo("America/Manaus")).occurrences

    assert occurrences[0].location == {"city": "ATLANTA", "state": "GA", "country": "US"}
    assert occurrences[3].location == {"city": "ORLANDO", "state": "FL", "country": "US"}  # MS103 "USA"
    assert occurrences[0].occurred_at == datetime(2026, 3, 12, 9, 30, tzinfo=ZoneInfo("America/New_York"))
    assert occurrences[0].occurred_at.utcoffset() == timedelta(hours=-4)  # EDT from 8 March 2026
    # LT (local time) at an MS1 in Florida: Florida's zone, whatever the caller's
    assert occurrences[3].occurred_at.tzinfo == ZoneInfo("America/New_York")
    # ...and the caller's zone where the location does not say (no MS1 state, or outside US/Canada)
    no_state = edited("MS1*ORLANDO*FL*USA", "MS1*ORLANDO**USA")
    assert parse_edi(no_state, timezone=ZoneInfo("America/Manaus")).occurrences[
        3
    ].occurred_at.tzinfo == ZoneInfo("America/Manaus")

    utc = parse_edi(edited("AT7*X1*NS***20260313*1045*ET", "AT7*X1*NS***20260313*1045*UT")).occurrences[2]
    assert utc.occurred_at == datetime(2026, 3, 13, 10, 45, tzinfo=UTC)


def test_tracking_falls_back_to_b10_01_then_l11() -> None:
    by_b1001 = parse_edi(edited("B10*PRO778899*RST0000001BR*RSTL", "B10*PRO778899**RSTL"))
    assert by_b1001.occurrences[0].tracking_number == "PRO778899"

    text = edited("B10*PRO778899*RST0000001BR*RSTL~\n", "B10***RSTL~\nL11*RST0000009BR*BM~\n").decode()
    by_l11 = parse_edi(text.replace("SE*23*0001", "SE*24*0001").encode())  # one more segment in the set
    assert by_l11.errors == ()
    assert [o.tracking_number for o in by_l11.occurrences][:4] == ["RST0000009BR"] * 4
    assert by_l11.occurrences[0].invoice_number == "123456"


def test_other_delimiters_are_read_from_the_isa() -> None:
    text = fixture("x12_214_ok.edi").decode().replace("*", "|").replace("~\n", "\r\n")
    text = text.replace("|>\r\n", "|^\r\n", 1)

    doc = parse_edi(text.encode())

    assert doc.errors == ()
    assert [o.code for o in doc.occurrences] == [
        o.code for o in parse_edi(fixture("x12_214_ok.edi")).occurrences
    ]
    assert doc.control["ISA16"] == "^"


def test_bad_counts_are_errors_on_the_trailers() -> None:
    doc = parse_edi(fixture("x12_214_bad_counts.edi"))

    assert [(e.line, e.column) for e in doc.errors] == [(25, 1), (46, 1)]
    assert "SE01 says '22' segments, set 0001 has 23" in doc.errors[0].message
    assert "GE01 says '3' transaction sets, the group has 2" in doc.errors[1].message
    assert doc.occurrences == ()


@pytest.mark.parametrize(
    ("old", "new", "line", "column", "text"),
    [
        ("SE*23*0001", "SE*23*0009", 25, 2, "SE02 '0009' does not match ST02 '0001'"),
        ("GE*2*101", "GE*2*102", 46, 2, "GE02 '102' does not match GS06 '101'"),
        ("IEA*1*000000101", "IEA*2*000000101", 47, 1, "IEA01 says '2' functional groups"),
        ("IEA*1*000000101", "IEA*1*000000102", 47, 2, "IEA02 '000000102' does not match ISA13"),
        ("ST*214*0002", "ST*210*0002", 26, 1, "ST01 must be 214"),
        (
            "AT7*X6*NS***20260313*0700*ET",
            "AT7*X6*NS***20260231*0700*ET",
            14,
            5,
            "AT705 '20260231' is not a date",
        ),
        ("AT7*X6*NS***20260313*0700*ET", "AT7*X6*NS***20260313*2500*ET", 14, 6, "AT706 '2500' is not a time"),
        ("AT7*X6*NS***20260313*0700*ET", "AT7*X6*NS***20260313*0700*ZZ", 14, 7, "time code 'ZZ'"),
    ],
)
def test_envelope_and_at7_errors(old: str, new: str, line: int, column: int, text: str) -> None:
    doc = parse_edi(edited(old, new))

    assert [(e.line, e.column) for e in doc.errors] == [(line, column)]
    assert text in doc.errors[0].message


def test_malformed_isa_and_missing_trailers() -> None:
    short_isa = parse_edi(edited("RASTROSHOP     *", "RASTROSHOP*"), "x12-214")
    assert [(e.line, e.column) for e in short_isa.errors] == [(1, 0)]
    assert "ISA segment must be 106 characters, got 101" in short_isa.errors[0].message

    cut = fixture("x12_214_ok.edi").decode().split("GE*2*101")[0]
    errors = parse_edi(cut.encode()).errors
    assert [e.message for e in errors] == [
        "functional group 101 has no GE trailer",
        "interchange has no IEA trailer",
    ]


def test_detection() -> None:
    assert detect_format(fixture("x12_214_ok.edi")) == "x12-214"
    assert detect_format(b"\n  " + fixture("x12_214_ok.edi")) == "x12-214"


def read_997(text: str) -> list[Segment]:
    delimiters, segments, problem = tokenize(text)
    assert problem is None and delimiters is not None
    assert (delimiters.element, delimiters.segment) == ("*", "~")
    return segments


def assert_envelope_valid(segments: list[Segment]) -> None:
    isa, iea = segments[0], segments[-1]
    assert iea.tag == "IEA" and iea.get(2) == isa.get(13) and iea.get(1) == "1"
    gs, ge = segments[1], segments[-2]
    assert (gs.tag, ge.tag) == ("GS", "GE") and ge.get(2) == gs.get(6) and ge.get(1) == "1"
    st, se = segments[2], segments[-3]
    assert (st.get(1), se.tag, se.get(2)) == ("997", "SE", st.get(2))
    assert se.get(1) == str(len(segments) - 4)  # ST..SE inclusive


def test_997_accepts_the_good_interchange() -> None:
    ack = acknowledgement_997(parse_edi(fixture("x12_214_ok.edi")), now=NOW)
    segments = read_997(ack)

    assert_envelope_valid(segments)
    isa = segments[0]
    assert (isa.get(5), isa.get(6), isa.get(7), isa.get(8)) == ("ZZ", "RASTRO", "02", "RSTL")  # swapped
    assert (isa.get(9), isa.get(10)) == ("260315", "1900")
    assert segments[1].get(1) == "FA" and segments[1].get(3) == "RSTL"
    body = [s.elements for s in segments[3:-3]]
    assert body == [
        ("AK1", "QM", "101"),
        ("AK2", "214", "0001"),
        ("AK5", "A"),
        ("AK2", "214", "0002"),
        ("AK5", "A"),
        ("AK9", "A", "2", "2", "2"),
    ]


def test_997_rejects_bad_counts_and_names_the_set() -> None:
    segments = read_997(acknowledgement_997(parse_edi(fixture("x12_214_bad_counts.edi")), now=NOW))

    assert_envelope_valid(segments)
    body = [s.elements for s in segments[3:-3]]
    assert ("AK5", "R", "4") == body[2]
    assert ("AK5", "A") == body[4]
    assert body[-1] == ("AK9", "R", "3", "2", "1", "5")


def test_997_reports_element_errors_with_ak3_ak4() -> None:
    doc = parse_edi(edited("AT7*X6*NS***20260313*0700*ET", "AT7*X6*NS***20260231*0700*ET"))
    body = [s.elements for s in read_997(acknowledgement_997(doc, sender_id="ACME", now=NOW))[3:-3]]

    # segment 14 of the file is the 12th of its set (ST = 1)
    assert body[2:5] == [
        ("AK3", "AT7", "12", "", "8"),
        ("AK4", "5", "373", "8", "20260231"),
        ("AK5", "R", "5"),
    ]
    assert body[-1] == ("AK9", "P", "2", "2", "1")


def test_997_only_answers_x12() -> None:
    with pytest.raises(ValueError, match=r"not ocoren-3\.1"):
        acknowledgement_997(parse_edi(FIXTURES.joinpath("ocoren31_ok.txt").read_bytes()))
