"""PROCEDA OCOREN (ocorrências de entrega) 3.1 and 5.0: fixed-width text into occurrences.

A file is one ``000`` interchange header, then documents: a document header (``340``/``540``), its
carrier (``341``/``541``) and occurrences (``342``/``542``), each optionally followed by its own extra
records (3.1 ``343`` redespacho; 5.0 ``543`` text, ``544`` items, ``545`` redespacho); 5.0 documents may
close with a ``549`` trailer counting their occurrences.

Conventions beyond the layouts:
- occurrence codes are reported zero-padded to two digits (5.0 ``001`` -> ``01``), like the 3.1 table;
- ``reason`` is the observation code (``01`` devolução/recusa total …) when not blank or ``00``;
- 5.0 carries no NF-e key field: a ``543`` text line holding exactly 44 digits is read as the invoice's
  NF-e access key and must then be that invoice's key (check digit, CNPJ, series, number).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any

from rastro_ingest.domain.edi.fixed_width import (
    check_field,
    fit_record,
    nfe_key_problem,
    parse_date,
    parse_time,
)
from rastro_ingest.domain.edi.model import EdiDocument, EdiError, EdiOccurrence, strip_leading_zeros
from rastro_ingest.domain.edi.ocoren_layout import LAYOUTS, Layout, RecordSpec

__all__ = ["detect_ocoren_version", "parse_ocoren"]

_ATTACHED = {"occurrence_text", "occurrence_extra"}


def detect_ocoren_version(lines: list[str]) -> str:
    """``3.1`` or ``5.0`` from the record identifiers (``34x`` / ``54x``), else from the header length."""
    idents = {line[:3] for line in lines if line.strip()}
    if idents & {"340", "341", "342", "343"}:
        return "3.1"
    if idents & {"540", "541", "542", "543", "544", "545", "549"}:
        return "5.0"
    first = next((line for line in lines if line.strip()), "")
    return "5.0" if len(first.rstrip()) > 120 else "3.1"


@dataclass
class _Draft:
    line: int
    values: dict[str, str]
    document_id: str | None
    carrier: tuple[str, str] | None
    extras: list[tuple[int, str, dict[str, str]]] = field(default_factory=list)


@dataclass
class _State:
    layout: Layout
    errors: list[EdiError] = field(default_factory=list)
    header: dict[str, str] | None = None
    document_id: str | None = None
    carrier: tuple[str, str] | None = None
    in_document_count: int = 0
    drafts: list[_Draft] = field(default_factory=list)


def parse_ocoren(text: str, *, timezone: tzinfo, version: str | None = None) -> EdiDocument:
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    if lines and lines[-1] == "":
        lines.pop()
    layout = LAYOUTS[version or detect_ocoren_version(lines)]
    state = _State(layout)
    last = 0
    for number, line in enumerate(lines, 1):
        if line.strip():
            last = number
            _read_record(state, number, line)
    if state.header is None and not any(e.line == 1 for e in state.errors):
        state.errors.append(EdiError(1, 1, "file has no 000 header record"))
    if not state.drafts and not state.errors:
        ident = "342" if layout.version == "3.1" else "542"
        state.errors.append(
            EdiError(max(last, 1), 1, f"file ends at line {last} without any {ident} occurrence record")
        )
    occurrences = [_occurrence(state, draft, timezone) for draft in state.drafts]
    header = state.header or {}
    return EdiDocument(
        format=layout.format,
        sender=header.get("sender") or None,
        recipient=header.get("recipient") or None,
        interchange_id=header.get("interchange_id") or None,
        occurrences=tuple(o for o in occurrences if o is not None) if not state.errors else (),
        errors=tuple(state.errors),
        control={},
    )


def _read_record(state: _State, number: int, line: str) -> None:
    layout = state.layout
    ident = line[:3]
    spec = layout.records.get(ident)
    if spec is None:
        known = ", ".join(layout.records)
        state.errors.append(
            EdiError(
                number,
                1,
                f"unknown record identifier {ident!r} for OCOREN {layout.version} (expected {known})",
            )
        )
        return
    record, problem = fit_record(line, number, spec, layout.length)
    if record is None:
        state.errors.append(problem or EdiError(number, 1, f"record {ident} is unreadable"))
        return
    values = {f.name: record[f.start - 1 : f.end] for f in spec.fields if f.name != "filler"}
    field_errors = [
        e for f in spec.fields if (e := check_field(f, record[f.start - 1 : f.end], ident, number))
    ]
    state.errors.extend(field_errors)
    _place(state, number, spec, {k: v.rstrip() for k, v in values.items()})


def _place(state: _State, number: int, spec: RecordSpec, values: dict[str, str]) -> None:
    """Check the record's place in the file's structure and file it."""
    if spec.role != "header" and state.header is None and number == 1:
        state.errors.append(EdiError(1, 1, f"file must start with a 000 header record, got {spec.ident}"))
    if spec.role == "header":
        if state.header is not None:
            state.errors.append(EdiError(number, 1, "second 000 header: one interchange per file"))
        elif number != 1 and state.drafts:
            state.errors.append(EdiError(number, 1, "000 header must be the first record"))
        state.header = {k: v.strip() for k, v in values.items()}
    elif spec.role == "document":
        state.document_id, state.carrier, state.in_document_count = values["document_id"].strip(), None, 0
    elif spec.role == "carrier":
        if state.document_id is None:
            state.errors.append(
                EdiError(number, 1, f"carrier record {spec.ident} before any document header")
            )
        state.carrier = (values["carrier_cnpj"].strip(), values["carrier_name"].strip())
    elif spec.role == "occurrence":
        document = "340" if state.layout.version == "3.1" else "540"
        carrier = "341" if state.layout.version == "3.1" else "541"
        if state.document_id is None:
            state.errors.append(
                EdiError(number, 1, f"occurrence record {spec.ident} before any {document} document header")
            )
        elif state.carrier is None:
            state.errors.append(
                EdiError(
                    number,
                    1,
                    f"occurrence record {spec.ident} before the {carrier} carrier record of its document",
                )
            )
        state.drafts.append(_Draft(number, values, state.document_id, state.carrier))
        state.in_document_count += 1
    elif spec.role in _ATTACHED:
        if not state.drafts or state.in_document_count == 0:
            state.errors.append(EdiError(number, 1, f"record {spec.ident} must follow an occurrence record"))
        else:
            state.drafts[-1].extras.append((number, spec.ident, values))
    elif spec.role == "trailer":
        declared = values["occurrence_count"].strip()
        if declared.isdigit() and int(declared) != state.in_document_count:
            message = (
                f"record 549 counts {int(declared)} occurrences, the document has {state.in_document_count}"
            )
            state.errors.append(EdiError(number, 4, message))


def _occurrence(state: _State, draft: _Draft, timezone: tzinfo) -> EdiOccurrence | None:
    values = draft.values
    day = parse_date(values["occurrence_date"], "D8")
    clock = parse_time(values["occurrence_time"])
    code = values["occurrence_code"].strip()
    if day is None or clock is None or not code.isdigit():
        return None  # already reported as a field error
    occurred_at = datetime.combine(day, clock, tzinfo=timezone)
    texts: list[str] = [values["text"].strip()] if "text" in values else []
    invoice_key = None
    raw: dict[str, Any] = {"record": "342" if state.layout.version == "3.1" else "542", **values}
    raw["document_id"] = draft.document_id
    for line, ident, extra in draft.extras:
        raw.setdefault(ident, []).append(extra)
        if ident != "543":
            continue
        for name in ("text_1", "text_2", "text_3"):
            part = extra[name].strip()
            if len(part) == 44 and part.isdigit():
                problem = nfe_key_problem(
                    part, values["issuer_cnpj"], values["invoice_series"], values["invoice_number"]
                )
                if problem:
                    column = state.layout.records["543"].fields[int(name[-1]) - 1].start
                    state.errors.append(EdiError(line, column, problem))
                invoice_key = part
            else:
                texts.append(part)
    observation = values.get("observation_code", "").strip()
    carrier_cnpj, carrier_name = draft.carrier or (None, None)
    sender = (state.header or {}).get("sender") or None
    return EdiOccurrence(
        line=draft.line,
        code=f"{int(code):02d}",
        reason=observation if observation.strip("0") else None,
        occurred_at=occurred_at,
        carrier_name=carrier_name or sender,
        carrier_document=carrier_cnpj or None,
        invoice_series=strip_leading_zeros(values["invoice_series"], none_if_zero=False),
        invoice_number=strip_leading_zeros(values["invoice_number"], none_if_zero=True),
        invoice_key=invoice_key,
        tracking_number=None,
        description=" ".join(t for t in texts if t) or None,
        location=None,
        raw=raw,
    )
