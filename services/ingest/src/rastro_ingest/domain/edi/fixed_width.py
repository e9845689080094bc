"""Fixed-width record mechanics shared by the OCOREN versions: text decoding, record length, field checks.

Short records: some senders trim trailing blanks. A record shorter than its layout is padded with blanks
when everything after its end is optional (filler, free text, optional dates); when the cut falls on or
before the end of a required field it is an error at the first missing column. A longer record is
accepted only if the extra characters are blanks.
"""

from __future__ import annotations

import re
from datetime import date, time

from rastro_ingest.domain.edi.model import EdiError
from rastro_ingest.domain.edi.ocoren_layout import Field, RecordSpec

__all__ = ["check_field", "decode_text", "fit_record", "nfe_key_problem", "parse_date", "parse_time"]

_DIGITS = re.compile(r"[0-9]+")


def decode_text(data: bytes, encoding: str | None) -> str:
    """Latin-1 unless the bytes are valid UTF-8 with non-ASCII characters (or ``encoding`` says)."""
    if encoding is not None:
        text = data.decode(encoding, errors="replace")
    else:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = data.decode("latin-1")
    return text.removeprefix("\ufeff")


def fit_record(line: str, number: int, spec: RecordSpec, length: int) -> tuple[str | None, EdiError | None]:
    """The record padded or trimmed to ``length``, or the error that makes it unusable."""
    size = len(line)
    if size > length:
        if line[length:].strip():
            return None, EdiError(
                number, length + 1, f"record {spec.ident} must be {length} characters, got {size}"
            )
        return line[:length], None
    if size < spec.min_length:
        cut = next(f for f in spec.fields if f.required and f.end > size)
        message = (
            f"record {spec.ident} must be {length} characters, got {size}: "
            f"field {cut.name} (columns {cut.start}-{cut.end}) is cut off"
        )
        return None, EdiError(number, size + 1, message)
    return line.ljust(length), None


def parse_date(value: str, kind: str) -> date | None:
    """``DDMMAAAA`` (D8) or ``DDMMAA`` (D6, 20xx) as a date, None when it is not a real date."""
    if not _DIGITS.fullmatch(value) or len(value) != (8 if kind == "D8" else 6):
        return None
    year = int(value[4:]) + (2000 if kind == "D6" else 0)
    try:
        return date(year, int(value[2:4]), int(value[:2]))
    except ValueError:
        return None


def parse_time(value: str) -> time | None:
    """``HHMM`` as a time, None when it is not a real time of day."""
    if not _DIGITS.fullmatch(value) or len(value) != 4 or int(value[:2]) > 23 or int(value[2:]) > 59:
        return None
    return time(int(value[:2]), int(value[2:]))


def check_field(field: Field, value: str, record: str, line: int) -> EdiError | None:
    """The problem with one field's raw value, if any (an optional blank or zero date is fine)."""
    text = value.strip()
    if field.kind in {"D8", "D6"} and not field.required and text.strip("0") == "":
        return None
    if not text:
        if field.required:
            return EdiError(
                line,
                field.start,
                f"record {record}: {field.name} (columns {field.start}-{field.end}) is blank",
            )
        return None
    if field.kind == "C" and not (_DIGITS.fullmatch(value) and len(value) == field.length):
        return EdiError(
            line, field.start, f"record {record}: {field.name} must be {field.length} digits, got {value!r}"
        )
    if field.kind == "N" and not _DIGITS.fullmatch(text):
        return EdiError(line, field.start, f"record {record}: {field.name} must be numeric, got {value!r}")
    if field.kind in {"D8", "D6"} and parse_date(value, field.kind) is None:
        shape = "DDMMAAAA" if field.kind == "D8" else "DDMMAA"
        return EdiError(
            line, field.start, f"record {record}: {field.name} {value!r} is not a valid date ({shape})"
        )
    if field.kind == "T4" and parse_time(value) is None:
        return EdiError(
            line, field.start, f"record {record}: {field.name} {value!r} is not a valid time (HHMM)"
        )
    return None


def nfe_key_problem(key: str, cnpj: str, series: str, number: str) -> str | None:
    """Why a 44-digit NF-e access key is not the key of this invoice (check digit, CNPJ, series, number)."""
    weights = [2, 3, 4, 5, 6, 7, 8, 9]
    total = sum(int(d) * weights[i % 8] for i, d in enumerate(reversed(key[:43])))
    check = 11 - total % 11
    if (0 if check >= 10 else check) != int(key[43]):
        return f"NF-e access key {key} has a wrong check digit"
    if key[6:20] != cnpj.strip():
        return f"NF-e access key {key} was issued by CNPJ {key[6:20]}, not {cnpj.strip()}"
    key_invoice = (_no_zeros(key[22:25]), _no_zeros(key[25:34]))
    if key_invoice != (_no_zeros(series), _no_zeros(number)):
        return (
            f"NF-e access key {key} is invoice {'/'.join(key_invoice)}, not {series.strip()}/{number.strip()}"
        )
    return None


def _no_zeros(value: str) -> str:
    return value.strip().lstrip("0") or "0"
