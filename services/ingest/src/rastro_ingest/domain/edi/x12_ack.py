"""The X12 997 functional acknowledgement answering a parsed 214 interchange.

One 997 transaction set per functional group received: AK1 (GS01, GS06), then per transaction set
AK2 (ST01, ST02), AK3/AK4 for segment and element errors, AK5 (``A`` accepted, ``R`` rejected with
its codes); AK9 closes the group (``A``, ``P`` partially accepted or ``R``, with counts and codes).
The envelope swaps sender and receiver; control numbers come from ``now``. Envelope errors that a
997 cannot carry (ISA/IEA) would need a TA1: an interchange without any readable group is refused
with ``ValueError``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from rastro_ingest.domain.edi.model import EdiDocument

__all__ = ["acknowledgement_997"]

_ELEMENT = "*"
_SEGMENT = "~"


def acknowledgement_997(doc: EdiDocument, *, sender_id: str = "RASTRO", now: datetime | None = None) -> str:
    if doc.format != "x12-214":
        raise ValueError(f"a 997 answers an X12 214 interchange, not {doc.format}")
    groups: list[dict[str, Any]] = json.loads(doc.control.get("ack", '{"groups": []}'))["groups"]
    if not groups:
        raise ValueError("the interchange has no readable functional group to acknowledge (a TA1 is needed)")
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    control = f"{int(moment.timestamp()) % 1_000_000_000:09d}"
    component = doc.control.get("ISA16") or ">"
    isa = [
        "ISA", "00", " " * 10, "00", " " * 10,
        "ZZ", sender_id[:15].ljust(15),
        (doc.control.get("ISA05") or "ZZ"), (doc.control.get("ISA06") or "").ljust(15)[:15],
        moment.strftime("%y%m%d"), moment.strftime("%H%M"), "U",
        doc.control.get("ISA12") or "00401", control, "0", doc.control.get("ISA15") or "P", component,
    ]  # fmt: skip
    segments = [_ELEMENT.join(isa)]
    for index, group in enumerate(groups, 1):
        group_control = f"{int(control) % 100_000_000 + index - 1}"
        gs = ["GS", "FA", sender_id, group["GS02"], moment.strftime("%Y%m%d"), moment.strftime("%H%M")]
        segments.append(_ELEMENT.join([*gs, group_control, "X", group["GS08"] or "004010"]))
        body = _acknowledge_group(group)
        st02 = f"{index:04d}"
        segments.append(f"ST*997*{st02}")
        segments.extend(body)
        segments.append(f"SE*{len(body) + 2}*{st02}")
        segments.append(f"GE*1*{group_control}")
    segments.append(f"IEA*{len(groups)}*{control}")
    return _SEGMENT.join(segments) + _SEGMENT + "\n"


def _acknowledge_group(group: dict[str, Any]) -> list[str]:
    lines = [f"AK1*{group['GS01']}*{group['GS06']}"]
    accepted = 0
    for item in group["sets"]:
        lines.append(f"AK2*{item['ST01']}*{item['ST02']}")
        by_position: dict[int, list[list[Any]]] = {}
        ids: dict[int, str] = {}
        for problem in item["segments"]:
            by_position.setdefault(problem["position"], []).append(problem["element"])
            ids[problem["position"]] = problem["id"]
        for position, elements in sorted(by_position.items()):
            lines.append(f"AK3*{ids[position]}*{position}**8")
            for element_position, ref, code, value in elements:
                bad = _safe(value)
                lines.append("*".join(["AK4", str(element_position), ref, code, bad]).rstrip("*"))
        codes = list(dict.fromkeys(item["codes"] + (["5"] if by_position else [])))
        if codes:
            lines.append("*".join(["AK5", "R", *codes[:5]]))
        else:
            accepted += 1
            lines.append("AK5*A")
    received = len(group["sets"])
    group_codes = list(dict.fromkeys(group["codes"]))
    status = "A" if accepted == received and not group_codes else ("P" if accepted else "R")
    if group_codes and status == "P":
        status = "R"
    declared = group["declared"] if (group["declared"] or "").isdigit() else str(received)
    lines.append("*".join(["AK9", status, declared, str(received), str(accepted), *group_codes[:5]]))
    return lines


def _safe(value: str) -> str:
    """A copy of bad data without delimiters, as AK404 requires (at most 99 characters)."""
    return "".join(c for c in value if c not in "*~>^")[:99]
