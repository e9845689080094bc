"""ANSI X12 214 (Transportation Carrier Shipment Status) into occurrences, with envelope checks.

Envelope rules checked: ST01 = 214; SE01 = segments from ST to SE inclusive and SE02 = ST02; GE01 =
number of ST sets and GE02 = GS06; IEA01 = number of GS groups and IEA02 = ISA13.

Each ``AT7`` with a shipment status code (AT701) is one occurrence. An AT7 carrying only an
appointment status (AT703, no AT701) is skipped: it schedules, it does not report progress.
Tracking number: B10-02, else B10-01, else an ``L11`` with qualifier BM, CN or 2I (the LX loop's own
before the set's). Invoice number: ``L11`` qualifier IK, else IN. The location is the AT7's ``MS1``;
the carrier is ``N1*CA`` (else the ISA sender) and its SCAC B10-03 (else MS2-01).

``EdiDocument.control`` keeps ISA/GS/ST control values and, under ``"ack"``, a JSON summary of every
group, set and segment error, which ``acknowledgement_997`` turns into AK3/AK4/AK5/AK9.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import tzinfo
from typing import Any

from rastro_ingest.domain.edi.model import EdiDocument, EdiError, EdiOccurrence, strip_leading_zeros
from rastro_ingest.domain.edi.x12_at7 import at7_problems, at7_time, country_code, local_zone
from rastro_ingest.domain.edi.x12_syntax import Segment, tokenize

__all__ = ["parse_x12_214"]

_TRACKING_QUALIFIERS = ("BM", "CN", "2I")
_INVOICE_QUALIFIERS = ("IK", "IN")


@dataclass
class _Loop:
    refs: dict[str, str] = field(default_factory=dict)
    at7s: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class _Set:
    st: Segment
    count: int = 1
    b10: Segment | None = None
    carrier_name: str | None = None
    top: _Loop = field(default_factory=_Loop)
    loops: list[_Loop] = field(default_factory=list)
    codes: list[str] = field(default_factory=list)
    segments: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class _Group:
    gs: Segment
    sets: list[dict[str, Any]] = field(default_factory=list)
    codes: list[str] = field(default_factory=list)
    declared: str | None = None


@dataclass
class _Reader:
    timezone: tzinfo
    isa: Segment
    errors: list[EdiError] = field(default_factory=list)
    groups: list[_Group] = field(default_factory=list)
    group: _Group | None = None
    set: _Set | None = None
    occurrences: list[EdiOccurrence] = field(default_factory=list)
    closed: bool = False

    def error(self, segment: Segment, column: int, message: str) -> None:
        self.errors.append(EdiError(segment.line, column, message))

    def read(self, segment: Segment) -> None:
        envelope = {"ISA": self._on_isa, "GS": self._on_gs, "ST": self._on_st}
        envelope.update({"SE": self._on_se, "GE": self._on_ge, "IEA": self._on_iea})
        content = {"B10": self._on_b10, "N1": self._on_n1, "L11": self._on_l11, "LX": self._on_lx}
        content.update({"AT7": self._on_at7, "MS1": self._on_ms1, "MS2": self._on_ms2})
        if self.closed:
            self.error(segment, 0, f"segment {segment.tag} after the IEA trailer")
        elif segment.tag in envelope:
            envelope[segment.tag](segment)
        elif self.set is None:
            self.error(segment, 0, f"segment {segment.tag} outside a transaction set (ST … SE)")
        else:
            self.set.count += 1
            if segment.tag in content:
                content[segment.tag](segment, self.set)

    def _on_isa(self, segment: Segment) -> None:
        if segment.line != 1:
            self.error(segment, 0, "second ISA: one interchange per file")

    def _on_gs(self, segment: Segment) -> None:
        if self.group is not None:
            self.error(segment, 0, f"GS before the GE of group {self.group.gs.get(6)}")
        self.group = _Group(segment)
        self.groups.append(self.group)

    def _on_st(self, segment: Segment) -> None:
        if self.group is None:
            self.error(segment, 0, "ST outside a functional group (GS … GE)")
        if self.set is not None:
            self.error(segment, 0, f"ST before the SE of transaction set {self.set.st.get(2)}")
        self.set = _Set(segment)
        if segment.get(1) != "214":
            self.set.codes.append("1")
            self.error(segment, 1, f"ST01 must be 214 (shipment status), got {segment.get(1)!r}")

    def _on_se(self, segment: Segment) -> None:
        current = self.set
        if current is None:
            self.error(segment, 0, "SE without an ST")
            return
        current.count += 1
        st02 = current.st.get(2)
        if segment.get(1) != str(current.count):
            current.codes.append("4")
            self.error(
                segment,
                1,
                f"SE01 says {segment.get(1)!r} segments, set {st02} has {current.count} (ST to SE)",
            )
        if segment.get(2) != st02:
            current.codes.append("3")
            self.error(segment, 2, f"SE02 {segment.get(2)!r} does not match ST02 {st02!r}")
        self._finish_set(current)

    def _on_ge(self, segment: Segment) -> None:
        group = self.group
        if group is None:
            self.error(segment, 0, "GE without a GS")
            return
        group.declared = segment.get(1)
        if segment.get(1) != str(len(group.sets)):
            group.codes.append("5")
            self.error(
                segment, 1, f"GE01 says {segment.get(1)!r} transaction sets, the group has {len(group.sets)}"
            )
        if segment.get(2) != group.gs.get(6):
            group.codes.append("4")
            self.error(segment, 2, f"GE02 {segment.get(2)!r} does not match GS06 {group.gs.get(6)!r}")
        self.group = None

    def _on_iea(self, segment: Segment) -> None:
        if segment.get(1) != str(len(self.groups)):
            self.error(
                segment,
                1,
                f"IEA01 says {segment.get(1)!r} functional groups, the interchange has {len(self.groups)}",
            )
        if segment.get(2) != self.isa.get(13):
            self.error(segment, 2, f"IEA02 {segment.get(2)!r} does not match ISA13 {self.isa.get(13)!r}")
        self.closed = True

    def _on_b10(self, segment: Segment, current: _Set) -> None:
        current.b10 = segment

    def _on_n1(self, segment: Segment, current: _Set) -> None:
        if segment.get(1) == "CA" and segment.get(2):
            current.carrier_name = segment.get(2)

    def _on_l11(self, segment: Segment, current: _Set) -> None:
        loop = current.loops[-1] if current.loops else current.top
        loop.refs.setdefault(segment.get(2), segment.get(1))

    def _on_lx(self, segment: Segment, current: _Set) -> None:
        current.loops.append(_Loop())

    def _on_at7(self, segment: Segment, current: _Set) -> None:
        problems = at7_problems(segment)
        for position, ref, code, value, message in problems:
            self.error(segment, position, message)
            current.segments.append(
                {"id": "AT7", "position": current.count, "element": [position, ref, code, value]}
            )
        if problems or not segment.get(1):
            return
        loop = current.loops[-1] if current.loops else current.top
        loop.at7s.append({"segment": segment, "location": None, "scac": None})

    def _on_ms1(self, segment: Segment, current: _Set) -> None:
        loop = current.loops[-1] if current.loops else current.top
        if loop.at7s:
            place = {"city": segment.get(1), "state": segment.get(2), "country": country_code(segment.get(3))}
            loop.at7s[-1]["location"] = {k: v for k, v in place.items() if v} or None

    def _on_ms2(self, segment: Segment, current: _Set) -> None:
        loop = current.loops[-1] if current.loops else current.top
        if loop.at7s:
            loop.at7s[-1]["scac"] = segment.get(1) or None

    def _finish_set(self, current: _Set) -> None:
        self.set = None
        if self.group is not None:
            entry = {"ST01": current.st.get(1), "ST02": current.st.get(2), "codes": current.codes}
            self.group.sets.append({**entry, "segments": current.segments})
        for loop in (current.top, *current.loops):
            for at7 in loop.at7s:
                self.occurrences.append(self._occurrence(current, loop, at7))

    def _occurrence(self, current: _Set, loop: _Loop, at7: dict[str, Any]) -> EdiOccurrence:
        segment: Segment = at7["segment"]
        refs = {**current.top.refs, **loop.refs}
        b10 = current.b10
        tracking = (b10.get(2) or b10.get(1)) if b10 else ""
        tracking = tracking or next((refs[q] for q in _TRACKING_QUALIFIERS if refs.get(q)), "")
        invoice = next((refs[q] for q in _INVOICE_QUALIFIERS if refs.get(q)), "")
        raw: dict[str, Any] = {f"AT7{i:02d}": segment.get(i) for i in range(1, len(segment.elements))}
        raw.update({"ST02": current.st.get(2), "B10": list(b10.elements[1:]) if b10 else [], "L11": refs})
        return EdiOccurrence(
            line=segment.line,
            code=segment.get(1).upper(),
            reason=segment.get(2) or None,
            occurred_at=at7_time(segment, local_zone(at7["location"], self.timezone)),
            carrier_name=current.carrier_name or self.isa.get(6) or None,
            carrier_document=(b10.get(3) if b10 else "") or at7["scac"],
            invoice_series=None,
            invoice_number=strip_leading_zeros(invoice, none_if_zero=True),
            invoice_key=None,
            tracking_number=tracking or None,
            description=None,
            location=at7["location"],
            raw=raw,
        )


def parse_x12_214(text: str, *, timezone: tzinfo) -> EdiDocument:
    delimiters, segments, problem = tokenize(text)
    if problem is not None or not segments:
        error = problem or EdiError(1, 0, "empty interchange")
        return EdiDocument("x12-214", None, None, None, (), (error,), {})
    isa = segments[0]
    reader = _Reader(timezone, isa)
    for segment in segments:
        reader.read(segment)
    last = segments[-1]
    if reader.set is not None:
        reader.set.codes.append("2")
        reader.error(last, 0, f"transaction set {reader.set.st.get(2)} has no SE trailer")
        reader._finish_set(reader.set)
    if reader.group is not None:
        reader.group.codes.append("2")
        reader.error(last, 0, f"functional group {reader.group.gs.get(6)} has no GE trailer")
    if not reader.closed:
        reader.error(last, 0, "interchange has no IEA trailer")
    return EdiDocument(
        format="x12-214",
        sender=isa.get(6) or None,
        recipient=isa.get(8) or None,
        interchange_id=isa.get(13) or None,
        occurrences=() if reader.errors else tuple(reader.occurrences),
        errors=tuple(reader.errors),
        control=_control(reader, delimiters.component if delimiters else ">"),
    )


def _control(reader: _Reader, component: str) -> dict[str, str]:
    isa = reader.isa
    control = {f"ISA{i:02d}": isa.get(i) for i in (5, 6, 7, 8, 12, 13, 15)}
    control["ISA16"] = component
    if reader.groups:
        control.update({f"GS{i:02d}": reader.groups[0].gs.get(i) for i in (1, 2, 3, 6, 8)})
        control["ST02"] = ",".join(s["ST02"] for g in reader.groups for s in g.sets)
    groups = [
        {
            **{f"GS{i:02d}": g.gs.get(i) for i in (1, 2, 3, 6, 8)},
            "declared": g.declared,
            "codes": g.codes,
            "sets": g.sets,
        }
        for g in reader.groups
    ]
    control["ack"] = json.dumps({"groups": groups}, separators=(",", ":"))
    return control
