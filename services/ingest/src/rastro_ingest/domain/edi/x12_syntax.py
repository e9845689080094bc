"""X12 interchange syntax: delimiters from the fixed-length ISA, segments split into elements.

The element separator is the ISA's 4th character, the component separator ISA16 (105th) and the
segment terminator the 106th; line breaks after a terminator are ignored. Segment numbers are 1-based
with ISA = 1, which is what ``EdiError.line`` reports for X12.
"""

from __future__ import annotations

from dataclasses import dataclass

from rastro_ingest.domain.edi.model import EdiError

__all__ = ["ISA_LENGTH", "Delimiters", "Segment", "tokenize"]

ISA_LENGTH = 106


@dataclass(frozen=True, slots=True)
class Delimiters:
    element: str
    component: str
    segment: str


@dataclass(frozen=True, slots=True)
class Segment:
    line: int
    elements: tuple[str, ...]
    """``elements[0]`` is the segment id; ``elements[n]`` is element n (``AT7`` ``[5]`` = AT705)."""

    @property
    def tag(self) -> str:
        return self.elements[0]

    def get(self, position: int) -> str:
        return self.elements[position].strip() if position < len(self.elements) else ""


def tokenize(text: str) -> tuple[Delimiters | None, list[Segment], EdiError | None]:
    """Split an interchange into segments; on a malformed ISA, the error and nothing else."""
    text = text.removeprefix("\ufeff").lstrip()
    if not text.startswith("ISA"):
        return None, [], EdiError(1, 0, f"an X12 interchange must start with ISA, got {text[:3]!r}")
    if len(text) < ISA_LENGTH:
        return (
            None,
            [],
            EdiError(1, 0, f"ISA segment must be {ISA_LENGTH} characters, the file has {len(text)}"),
        )
    element = text[3]
    parts = text[: ISA_LENGTH - 1].split(element)
    if len(parts) != 17 or len(parts[16]) != 1:
        length = _isa_length(text, element)
        return None, [], EdiError(1, 0, f"ISA segment must be {ISA_LENGTH} characters, got {length}")
    segment = text[ISA_LENGTH - 1]
    if segment.isalnum() or segment in {element, " "}:
        return (
            None,
            [],
            EdiError(1, 0, f"ISA segment terminator {segment!r} (character 106) is not a delimiter"),
        )
    delimiters = Delimiters(element, parts[16], segment)
    segments: list[Segment] = []
    for raw in text.split(segment):
        body = raw.strip("\r\n")
        if body.strip():
            segments.append(Segment(len(segments) + 1, tuple(body.split(element))))
    return delimiters, segments, None


def _isa_length(text: str, element: str) -> int:
    """Where the ISA really ends: after ISA16, the character following the 16th separator."""
    seen = 0
    for index, char in enumerate(text):
        if char == element:
            seen += 1
            if seen == 16:
                return index + 3  # ISA16 (1 char) and the segment terminator
    return len(text)
