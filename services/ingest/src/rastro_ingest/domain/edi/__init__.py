"""EDI files carriers send: PROCEDA OCOREN 3.1/5.0 and ANSI X12 214, parsed into occurrences.

Pure: bytes in, an ``EdiDocument`` out. Bad content never raises; it comes back as ``EdiError`` values
with line and column, and a document with errors is rejected whole. Only bytes that are not EDI at all
raise ``EdiFormatError``. ``acknowledgement_997`` answers an X12 214 interchange.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

from rastro_ingest.domain.edi.fixed_width import decode_text
from rastro_ingest.domain.edi.model import FORMATS, EdiDocument, EdiError, EdiFormatError, EdiOccurrence
from rastro_ingest.domain.edi.ocoren import parse_ocoren
from rastro_ingest.domain.edi.x12 import parse_x12_214
from rastro_ingest.domain.edi.x12_ack import acknowledgement_997

__all__ = [
    "FORMATS",
    "EdiDocument",
    "EdiError",
    "EdiFormatError",
    "EdiOccurrence",
    "acknowledgement_997",
    "detect_format",
    "parse_edi",
]

_OCOREN_VERSIONS = {"ocoren": None, "ocoren-3.1": "3.1", "ocoren-5.0": "5.0"}
_SAO_PAULO = ZoneInfo("America/Sao_Paulo")


def _start(data: bytes) -> bytes:
    return data.removeprefix(b"\xef\xbb\xbf").lstrip()


def detect_format(data: bytes) -> str:
    """``"ocoren"`` or ``"x12-214"`` from the first bytes; ``EdiFormatError`` says why neither fits."""
    start = _start(data)
    if not start:
        raise EdiFormatError("the file is empty")
    if b"\x00" in data[:4096]:
        raise EdiFormatError("the file is binary (it contains NUL bytes), not EDI text")
    if start.startswith(b"ISA"):
        return "x12-214"
    if start.startswith(b"UNA") or start.startswith(b"UNB"):
        raise EdiFormatError("the file is UN/EDIFACT, which is not supported (OCOREN or X12 214 only)")
    first_line = start.split(b"\n", 1)[0].rstrip(b"\r")
    if start.startswith(b"000") and len(first_line) >= 83:
        return "ocoren"
    preview = first_line[:20].decode("latin-1")
    raise EdiFormatError(
        f"the file starts with {preview!r}: neither an X12 interchange (ISA) nor an OCOREN header (000)"
    )


def parse_edi(
    data: bytes,
    format: str | None = None,
    *,
    timezone: ZoneInfo = _SAO_PAULO,
    encoding: str | None = None,
) -> EdiDocument:
    """Parse an OCOREN or X12 214 file; ``format`` (``ocoren``, ``ocoren-3.1``, ``ocoren-5.0``,
    ``x12-214``) skips detection, ``encoding`` overrides the Latin-1/UTF-8 guess for OCOREN."""
    chosen = format or detect_format(data)
    if chosen == "x12-214":
        return parse_x12_214(decode_text(data, encoding), timezone=timezone)
    if chosen in _OCOREN_VERSIONS:
        return parse_ocoren(decode_text(data, encoding), timezone=timezone, version=_OCOREN_VERSIONS[chosen])
    raise ValueError(
        f"unknown EDI format {format!r}: expected one of {', '.join((*FORMATS, 'ocoren-3.1', 'ocoren-5.0'))}"
    )
