"""Streaming CSV reading: encodings, BOM, quoted line breaks, and any cut of the byte stream."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import AsyncIterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rastro_ingest.domain.csv_rows import CsvOptionsError
from rastro_ingest.imports.reader import MAX_RECORD_BYTES, CsvStream, RecordTooLong, Row, RowError

pytestmark = pytest.mark.unit
SAMPLE = (
    'tracking_number;description;"status_code"\r\n'
    'A1;"Saiu para entrega; rota 2";OEC-01\r\n'
    "\r\n"
    'A2;"linha um\nlinha ""dois""";BDE-01\r\n'
    "A3;São Paulo;PO-01"
)


async def chunked(data: bytes, cuts: list[int] | None = None) -> AsyncIterator[bytes]:
    edges = [0, *sorted(c for c in (cuts or []) if 0 < c < len(data)), len(data)]
    for start, end in itertools.pairwise(edges):
        yield data[start:end]


async def read_all(
    data: bytes, encoding: str = "utf-8", cuts: list[int] | None = None
) -> tuple[list[str], list[Row], CsvStream]:
    stream = CsvStream(chunked(data, cuts), encoding, None)
    header = await stream.header()
    rows = [row async for batch in stream.batches(2) for row in batch]
    return header, rows, stream


async def test_quoted_delimiters_line_breaks_and_blank_lines() -> None:
    header, rows, stream = await read_all(SAMPLE.encode())
    assert stream.delimiter == ";"
    assert header == ["tracking_number", "description", "status_code"]
    assert [(r.number, r.cells) for r in rows] == [
        (2, ["A1", "Saiu para entrega; rota 2", "OEC-01"]),
        (4, ["A2", 'linha um\nlinha "dois"', "BDE-01"]),  # row 3 was blank
        (5, ["A3", "São Paulo", "PO-01"]),
    ]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=len(SAMPLE.encode()) - 1), max_size=8))
async def test_any_cut_of_the_stream_reads_the_same(cuts: list[int]) -> None:
    whole = await read_all(SAMPLE.encode())
    cut = await read_all(SAMPLE.encode(), cuts=cuts)
    assert cut[0] == whole[0] and cut[1] == whole[1]


async def test_latin1_and_a_bom_that_overrides_the_encoding() -> None:
    _, rows, _ = await read_all(SAMPLE.encode("latin-1"), encoding="latin-1")
    assert rows[-1].cells == ["A3", "São Paulo", "PO-01"]
    _, rows, stream = await read_all(b"\xef\xbb\xbf" + SAMPLE.encode(), encoding="latin-1")
    assert stream.bom and stream.encoding == "utf-8"
    assert rows[-1].cells == ["A3", "São Paulo", "PO-01"]


async def test_latin1_bytes_read_as_utf8_are_row_errors_with_a_hint() -> None:
    data = "tracking_number,description\nA1,ok\nA2,São Paulo\nA3,fine\n".encode("latin-1")
    _, rows, _ = await read_all(data)
    assert rows[0].cells == ["A1", "ok"] and rows[2].cells == ["A3", "fine"]
    error = rows[1].cells
    assert isinstance(error, RowError) and rows[1].number == 3
    assert "not valid utf-8" in error.message and "encoding=latin-1" in error.message


async def test_an_undecodable_header_empty_file_and_bad_options_are_refused() -> None:
    with pytest.raises(CsvOptionsError, match="encoding=latin-1"):
        await read_all("Descrição,tracking_number\n".encode("latin-1"))
    with pytest.raises(CsvOptionsError, match="empty"):
        await read_all(b"\r\n\r\n")
    with pytest.raises(CsvOptionsError, match="unsupported 'ebcdic'"):
        CsvStream(chunked(b""), "ebcdic", None)
    with pytest.raises(CsvOptionsError, match="unsupported ':'"):
        CsvStream(chunked(b""), "utf-8", ":")


async def test_an_unclosed_quote_stops_the_stream_instead_of_swallowing_memory() -> None:
    data = b'tracking_number,description\nA1,"never closed\n' + b"x" * (MAX_RECORD_BYTES + 10)
    with pytest.raises(RecordTooLong, match="row 2 runs past"):
        await read_all(data, cuts=list(range(0, len(data), 4096)))


async def test_hash_and_size_of_what_was_read() -> None:
    _, _, stream = await read_all(SAMPLE.encode(), cuts=[5, 50])
    assert stream.bytes_read == len(SAMPLE.encode())
    assert stream.sha256 == hashlib.sha256(SAMPLE.encode()).hexdigest()
