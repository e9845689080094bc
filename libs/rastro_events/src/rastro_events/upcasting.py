"""One event in another major: upcasting what a reader receives, downcasting what a producer dual-publishes.

Conversions chain the registered one-step converters (``registry.register_upcaster`` /
``register_downcaster``): v1 → v3 is v1 → v2 → v3. The result is validated by the target major's model,
so a converter cannot hand a handler something its model would not accept.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from pydantic import ValidationError

from rastro_events.envelope import SCHEMA_BASE, Envelope
from rastro_events.errors import SchemaViolation
from rastro_events.payloads import Payload
from rastro_events.registry import ce_type_of, downcaster_for, model_of, parse_ce_type, upcaster_for

__all__ = ["ConversionError", "convert", "in_majors", "older_majors_read_as", "upcast_event"]


class ConversionError(ValueError):
    """A payload has no form in the major asked for: no model or converter registered, or the converter
    (or the target model) rejected it."""


def convert(payload: Payload, major: int) -> Payload:
    """``payload`` as the model of ``major`` of the same event; itself when it already is."""
    name, start = payload.event_name, payload.major
    if major == start:
        return payload
    model = model_of(name, major)
    if model is None:
        raise ConversionError(f"{name}: no model registered for v{major}")
    data = payload.model_dump(mode="json")
    step = 1 if major > start else -1
    for current in range(start, major, step):
        converter = upcaster_for(name, current) if step == 1 else downcaster_for(name, current)
        if converter is None:
            way = "upcaster" if step == 1 else "downcaster"
            raise ConversionError(f"{name}: no {way} registered from v{current}")
        try:
            data = converter(data)
        except Exception as exc:  # a converter's own failure is this payload's, not the caller's bug
            raise ConversionError(f"{name} v{current} → v{current + step}: {exc!r}") from exc
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConversionError(f"{name} v{major} rejects the converted payload: {exc.errors()[:3]}") from exc


def in_majors(payload: Payload, majors: Sequence[int]) -> list[Payload]:
    """``payload`` in each of ``majors``, in that order: what a producer publishes during a migration.

    ``payload`` must be one of ``majors`` (callers ask only then). A major this code has no model for is
    left out, except the first, the one every reader of the window reads: without it, readers that
    have not learned the newer majors would miss the event, so that raises ``ConversionError``."""
    out: list[Payload] = []
    for i, major in enumerate(majors):
        if major != payload.major and i > 0 and model_of(payload.event_name, major) is None:
            continue  # not known here: this producer cannot publish it, the oldest twin carries the event
        out.append(convert(payload, major))
    return out


def upcast_event(envelope: Envelope, payload: Payload, major: int) -> tuple[Envelope, Payload]:
    """A record of an older major read as ``major``: the upcast payload, and the envelope as if it had
    been published so (``type``, ``dataschema``, ``data``); id, subject, time and tenant unchanged.

    Raises ``SchemaViolation`` (a dead-letter reason) when the payload cannot be upcast."""
    try:
        newer = convert(payload, major)
    except ConversionError as exc:
        raise SchemaViolation(f"{envelope.type} cannot be read as v{major}: {exc}") from None
    update = {
        "type": newer.ce_type(),
        "dataschema": f"{SCHEMA_BASE}/{newer.event_name}/v{newer.major}.json",
        "data": newer.model_dump(mode="json", exclude_none=True),
    }
    return envelope.model_copy(update=update), newer


def older_majors_read_as(handled: Collection[str]) -> dict[str, int]:
    """For a consumer that handles the types ``handled``: each older major of those events that it reads
    through upcasters (a model registered for it, an upcaster chain up to a handled major, and no handler
    of its own), mapped to the handled major it is read as. Empty unless an event has several majors."""
    read_as: dict[str, int] = {}
    for ce_type in handled:
        parsed = parse_ce_type(ce_type)
        if parsed is None:
            continue
        name, major = parsed
        older = major - 1
        while older >= 1 and upcaster_for(name, older) is not None:
            older_type = ce_type_of(name, older)
            if older_type in handled:
                break  # its own handler reads it, and what is older than it
            if model_of(name, older) is not None:
                read_as[older_type] = major
            older -= 1
    return read_as
