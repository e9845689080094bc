"""Carrier code tables: raw carrier code -> unified status, substatus and descriptions.

A table is data (one ``codes.csv`` per carrier under ``adapters/carriers/<carrier>/``); this module only
parses and looks it up, so it stays pure. Reading the file is the adapter's job
(``rastro_normalization.adapters.carriers.load_carrier_table``).

Codes are compared in a canonical spelling that depends on the carrier's code style (``CODE_STYLES``):

- ``type_number`` (Correios, and any carrier not listed): ``BDE`` + ``1`` is written ``BDE-01`` and
  ``bde-1``, ``BDE 01``, ``BDE01`` or `` BDE-001 `` all find it; other codes are trimmed and upper-cased;
- ``token`` (FedEx, DHL Express): trimmed and upper-cased (``od`` -> ``OD``, ``a1`` stays ``A1``);
- ``numeric2`` / ``numeric3`` (USPS, UPS): like ``token``, and all-digit codes are zero-padded
  (USPS ``1`` -> ``01``, UPS ``11`` -> ``011``);
- ``words`` (Jadlog, Loggi status names): accents, case and separators do not matter
  (``Em rota``, ``EM_ROTA``, ``em-rota`` -> ``EM ROTA``; ``TRANSFERÊNCIA`` -> ``TRANSFERENCIA``).
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from types import MappingProxyType

from rastro_events.taxonomy import Status, is_valid_substatus

__all__ = [
    "CODE_STYLES",
    "EFFECTS",
    "LANGUAGES",
    "WITHDRAW_PREVIOUS",
    "CodeEntry",
    "CodeTable",
    "CodeTableError",
    "build_code_table",
    "normalize_code",
    "parse_code_table",
]

WITHDRAW_PREVIOUS = "withdraw_previous"
"""The entry cancels the carrier's preceding event (Correios ``EST``: "favor desconsiderar ...")."""

EFFECTS: frozenset[str] = frozenset({WITHDRAW_PREVIOUS})
LANGUAGES: tuple[str, ...] = ("pt-BR", "en", "es", "fr")
_DESCRIPTION_COLUMNS: dict[str, str] = {
    "pt-BR": "description_pt_br",
    "en": "description_en",
    "es": "description_es",
    "fr": "description_fr",
}
_CSV_COLUMNS = ("code", "status", "substatus", *_DESCRIPTION_COLUMNS.values(), "effect")
_LETTERS_NUMBER = re.compile(r"([A-Z]+)[\s_/-]*(\d{1,4})")
_WORD_SEPARATORS = re.compile(r"[\s_./-]+")


class CodeTableError(ValueError):
    """A code table is malformed (unknown status, substatus outside the taxonomy, duplicate code ...)."""


def _token(code: str) -> str:
    return " ".join(code.split()).upper()


def _type_number(code: str) -> str:
    text = _token(code)
    match = _LETTERS_NUMBER.fullmatch(text)
    if match is None:
        return text
    return f"{match[1]}-{int(match[2]):02d}"


def _numeric(width: int) -> Callable[[str], str]:
    def normalize(code: str) -> str:
        text = _token(code)
        return f"{int(text):0{width}d}" if text.isdigit() else text

    return normalize


def _words(code: str) -> str:
    decomposed = unicodedata.normalize("NFKD", code.upper())
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(_WORD_SEPARATORS.sub(" ", plain).split())


_STYLES: Mapping[str, Callable[[str], str]] = MappingProxyType(
    {
        "type_number": _type_number,
        "token": _token,
        "numeric2": _numeric(2),
        "numeric3": _numeric(3),
        "words": _words,
    }
)
CODE_STYLES: Mapping[str, str] = MappingProxyType(
    {
        "correios": "type_number",
        "jadlog": "words",
        "loggi": "words",
        "dhl": "token",
        "fedex": "token",
        "ups": "numeric3",
        "usps": "numeric2",
    }
)
"""Carrier id -> code style; carriers not listed use ``type_number`` (the Correios style)."""


@lru_cache(maxsize=8192)  # hot path: a few calls per event (lookup, duplicate and order keys)
def normalize_code(code: str, carrier: str | None = None) -> str:
    """The canonical spelling of ``carrier``'s code: ``" bde-1 "`` -> ``"BDE-01"`` (Correios).

    Without a carrier (or for one not in ``CODE_STYLES``) the ``type_number`` style applies.
    """
    return _STYLES[CODE_STYLES.get(carrier or "", "type_number")](code)


@dataclass(frozen=True, slots=True)
class CodeEntry:
    code: str
    status: Status
    substatus: str
    descriptions: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}), hash=False)
    effect: str | None = None

    def __post_init__(self) -> None:
        if not is_valid_substatus(self.status, self.substatus):
            raise CodeTableError(
                f"{self.code}: substatus {self.substatus!r} is not a {self.status} substatus"
            )
        if self.effect is not None and self.effect not in EFFECTS:
            raise CodeTableError(f"{self.code}: unknown effect {self.effect!r}")
        # Entries are shared by every lookup: freeze the descriptions too.
        object.__setattr__(self, "descriptions", MappingProxyType(dict(self.descriptions)))


@dataclass(frozen=True, slots=True)
class CodeTable:
    """One carrier's codes, keyed by canonical code. Build it with ``build_code_table``."""

    carrier: str
    entries: Mapping[str, CodeEntry] = field(hash=False)

    def lookup(self, code: str) -> CodeEntry | None:
        return self.entries.get(normalize_code(code, self.carrier))

    def __contains__(self, code: object) -> bool:
        return isinstance(code, str) and self.lookup(code) is not None

    def __iter__(self) -> Iterator[CodeEntry]:
        return iter(self.entries.values())

    def __len__(self) -> int:
        return len(self.entries)


def build_code_table(carrier: str, entries: Iterable[CodeEntry]) -> CodeTable:
    by_code: dict[str, CodeEntry] = {}
    for entry in entries:
        key = normalize_code(entry.code, carrier)
        if key in by_code:
            raise CodeTableError(f"{carrier}: code {key} appears twice")
        by_code[key] = entry
    return CodeTable(carrier=carrier, entries=MappingProxyType(by_code))


def parse_code_table(carrier: str, text: str) -> CodeTable:
    """Parse a ``codes.csv``: code, status, substatus, description_{pt_br,en,es,fr}, effect.

    Every column must be present; an empty description is allowed (that language then falls back).
    """
    reader = csv.DictReader(io.StringIO(text))
    missing = set(_CSV_COLUMNS) - set(reader.fieldnames or ())
    if missing:
        raise CodeTableError(f"{carrier}: codes.csv lacks columns {sorted(missing)}")
    return build_code_table(carrier, (_parse_row(carrier, line, row) for line, row in enumerate(reader, 2)))


def _parse_row(carrier: str, line: int, row: dict[str, str]) -> CodeEntry:
    code = (row["code"] or "").strip()
    if not code:
        raise CodeTableError(f"{carrier} codes.csv line {line}: empty code")
    try:
        status = Status((row["status"] or "").strip())
    except ValueError:
        raise CodeTableError(f"{carrier} codes.csv line {line}: unknown status {row['status']!r}") from None
    texts = ((language, row[column] or "") for language, column in _DESCRIPTION_COLUMNS.items())
    descriptions = {language: text.strip() for language, text in texts if text.strip()}
    return CodeEntry(
        code=normalize_code(code, carrier),
        status=status,
        substatus=(row["substatus"] or "").strip(),
        descriptions=descriptions,
        effect=(row["effect"] or "").strip() or None,
    )
