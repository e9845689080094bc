"""Streaming CSV: bytes in, numbered rows out, in bounded memory whatever the file size.

Bytes are cut into records at line ends that fall outside quotes (a quoted field may hold line
breaks), each record is decoded on its own, so one undecodable row is that row's error and not the
file's, and then parsed by the standard ``csv`` module. Only one record, one chunk of the body and
one batch of rows are held at a time.
"""

from __future__ import annotations

import codecs
import collections
import csv
import hashlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

from rastro_ingest.domain.csv_rows import DELIMITERS, CsvOptionsError, sniff_delimiter

__all__ = ["ENCODINGS", "MAX_RECORD_BYTES", "CsvStream", "RecordTooLong", "Row", "RowError", "encoding_for"]

ENCODINGS = {
    "utf-8": "utf-8",
    "utf8": "utf-8",
    "latin-1": "latin-1",
    "latin1": "latin-1",
    "iso-8859-1": "latin-1",
    "windows-1252": "cp1252",
    "cp1252": "cp1252",
}
MAX_RECORD_BYTES = 256 * 1024
_BOM = codecs.BOM_UTF8


class RecordTooLong(Exception):
    """A record ran past ``MAX_RECORD_BYTES``: an unclosed quote, or not a CSV file. Fatal to the job."""

    def __init__(self, row: int) -> None:
        super().__init__(
            f"row {row} runs past {MAX_RECORD_BYTES} bytes: an unclosed quote, or not a CSV file"
        )
        self.row = row


@dataclass(frozen=True)
class RowError:
    field: str
    message: str


@dataclass(frozen=True)
class Row:
    number: int
    """the record's number in the file; the header is row 1"""
    cells: list[str] | RowError


def encoding_for(name: str) -> str:
    try:
        return ENCODINGS[name.strip().lower()]
    except KeyError:
        raise CsvOptionsError("encoding", f"unsupported {name!r}; use one of {sorted(ENCODINGS)}") from None


class _Records:
    """Cuts a byte stream into CSV records: a ``\\n`` ends one when the record's quotes are balanced."""

    def __init__(self) -> None:
        self._pending = bytearray()
        self._quotes = 0
        self._scanned = 0

    def feed(self, chunk: bytes) -> Iterator[bytes]:
        self._pending += chunk
        start = 0
        while True:
            end = self._pending.find(b"\n", self._scanned)
            if end < 0:
                self._quotes += self._pending.count(b'"', self._scanned)
                self._scanned = len(self._pending)
                break
            self._quotes += self._pending.count(b'"', self._scanned, end)
            self._scanned = end + 1
            if self._quotes % 2 == 0:
                yield bytes(self._pending[start : end + 1])
                start, self._quotes = end + 1, 0
        del self._pending[:start]
        self._scanned -= start

    def pending_size(self) -> int:
        return len(self._pending)

    def rest(self) -> bytes:
        rest, self._pending = bytes(self._pending), bytearray()
        return rest


class _Feed:
    """An iterator ``csv.reader`` pulls lines from, refilled between pulls (the reader resets per row)."""

    def __init__(self) -> None:
        self.lines: collections.deque[str] = collections.deque()

    def __iter__(self) -> _Feed:
        return self

    def __next__(self) -> str:
        if self.lines:
            return self.lines.popleft()
        raise StopIteration


class CsvStream:
    """``header()`` first, then ``batches()``. ``sha256`` and ``bytes_read`` are known at the end."""

    def __init__(self, chunks: AsyncIterator[bytes], encoding: str, delimiter: str | None) -> None:
        if delimiter is not None and delimiter not in DELIMITERS:
            raise CsvOptionsError("delimiter", f"unsupported {delimiter!r}; use one of {list(DELIMITERS)}")
        self._chunks, self._delimiter = chunks, delimiter
        self.encoding = encoding_for(encoding)
        self._records = _Records()
        self._queue: collections.deque[bytes] = collections.deque()
        self._feed = _Feed()
        self._reader: Iterator[list[str]] | None = None
        self._number = 0
        self._hash = hashlib.sha256()
        self.bytes_read = 0
        self.bom = False

    @property
    def delimiter(self) -> str:
        return self._delimiter or ","

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    async def header(self) -> list[str]:
        async for record in self._next_records():
            self._number += 1
            if not record.strip():
                continue
            if self._number == 1 and record.startswith(_BOM):
                record, self.bom, self.encoding = record[len(_BOM) :], True, "utf-8"
            try:
                text = record.decode(self.encoding)
            except UnicodeDecodeError as exc:
                raise CsvOptionsError("encoding", _decode_hint(exc, self.encoding)) from None
            self._delimiter = self._delimiter or sniff_delimiter(text)
            self._reader = csv.reader(self._feed, delimiter=self._delimiter)
            return self._parse(text)
        raise CsvOptionsError("(body)", "the file is empty: no header row")

    async def batches(self, size: int) -> AsyncIterator[list[Row]]:
        batch: list[Row] = []
        async for record in self._next_records():
            self._number += 1
            if not record.strip():
                continue
            try:
                batch.append(Row(self._number, self._parse(record.decode(self.encoding))))
            except UnicodeDecodeError as exc:
                batch.append(Row(self._number, RowError("(row)", _decode_hint(exc, self.encoding))))
            except csv.Error as exc:
                batch.append(Row(self._number, RowError("(row)", f"not valid CSV: {exc}")))
            if len(batch) >= size:
                yield batch
                batch = []
        if batch:
            yield batch

    async def _next_records(self) -> AsyncIterator[bytes]:
        while True:
            while self._queue:
                yield self._queue.popleft()
            chunk = await anext(self._chunks, None)
            if chunk is None:
                break
            self.bytes_read += len(chunk)
            self._hash.update(chunk)
            self._queue.extend(self._records.feed(chunk))
            if self._records.pending_size() > MAX_RECORD_BYTES:
                raise RecordTooLong(self._number + len(self._queue) + 1)
        rest = self._records.rest()
        if rest:
            yield rest

    def _parse(self, text: str) -> list[str]:
        assert self._reader is not None
        self._feed.lines.append(text)
        return next(self._reader, [])


def _decode_hint(exc: UnicodeDecodeError, encoding: str) -> str:
    hint = "; if the file is Latin-1 (Excel, many ERPs), send encoding=latin-1" if encoding == "utf-8" else ""
    return f"not valid {encoding} (byte 0x{exc.object[exc.start]:02x} at position {exc.start}){hint}"
