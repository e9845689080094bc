"""The CloudEvents 1.0 envelope (structured JSON mode) carried by every record on every rastro topic."""

from __future__ import annotations

import os
import random
import time
from datetime import UTC, datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from rastro_events.errors import InvalidJson, SchemaViolation, UnsupportedType
from rastro_events.payloads import Payload
from rastro_events.registry import model_for

__all__ = [
    "CONTENT_TYPE",
    "Envelope",
    "decode_event",
    "encode_event",
    "headers_for",
    "new_event",
    "new_event_id",
    "record_key",
]

CONTENT_TYPE = "application/cloudevents+json"
SCHEMA_BASE = "https://rastro.dev/schemas"
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


_PAIRS = tuple(a + b for a in _CROCKFORD for b in _CROCKFORD)  # every 10-bit value as two characters
_time_prefix: tuple[int, str] = (-1, "")
_last_random = 0  # the random part of the last id of the current millisecond (monotonic ULIDs)
_random = random.Random(os.urandom(32))


def _reseed_after_fork() -> None:  # forked workers must not collide: new seed, and no shared sequence
    global _time_prefix
    _random.seed(os.urandom(32))
    _time_prefix = (-1, "")


os.register_at_fork(after_in_child=_reseed_after_fork)


def new_event_id() -> str:
    """A ULID: 48 bits of milliseconds + 80 random bits, sortable by creation time, also within one
    millisecond of one process (the monotonic variant of the ULID spec: the random part counts up).

    Hot path (one per event): the time part is computed once per millisecond, and the random part's 80
    bits are written 10 at a time from a table of character pairs (Crockford's base32, most significant
    first, as ``base64.b32encode`` would and several times faster).
    """
    global _time_prefix, _last_random
    ms = time.time_ns() // 1_000_000
    if _time_prefix[0] != ms:
        _time_prefix = (ms, "".join(_CROCKFORD[(ms >> shift) & 31] for shift in range(45, -1, -5)))
        # Uniqueness, not secrecy, is what an event id needs: a PRNG seeded from the OS is enough and
        # avoids a system call per id. The first id of a millisecond starts at a random point below
        # 2**79, so the next ones of that millisecond can count up from it without wrapping.
        r = _random.getrandbits(79)
    else:
        r = _last_random + 1  # monotonic within a millisecond: ids sort in creation order
    _last_random, p = r, _PAIRS
    return (
        _time_prefix[1]
        + p[r >> 70]
        + p[(r >> 60) & 1023]
        + p[(r >> 50) & 1023]
        + p[(r >> 40) & 1023]
        + p[(r >> 30) & 1023]
        + p[(r >> 20) & 1023]
        + p[(r >> 10) & 1023]
        + p[r & 1023]
    )


class Envelope(BaseModel):
    model_config = ConfigDict(frozen=True, extra="allow", populate_by_name=True)

    specversion: str = Field(default="1.0", pattern=r"^1\.0$")
    id: str = Field(min_length=1, max_length=128)
    source: str = Field(min_length=1, max_length=512)
    type: str = Field(min_length=1, max_length=256)
    subject: str = Field(min_length=1, max_length=512)
    time: AwareDatetime
    datacontenttype: str = "application/json"
    dataschema: str | None = None
    tenantid: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_-]*$")
    traceparent: str | None = None
    data: dict[str, Any]

    @property
    def key(self) -> str:
        return self.subject


def record_key(tenant_id: str, shipment_key: str) -> str:
    return f"{tenant_id}/{shipment_key}"


def new_event(
    payload: Payload,
    *,
    tenant_id: str,
    source: str,
    time: datetime | None = None,
    event_id: str | None = None,
    traceparent: str | None = None,
) -> Envelope:
    name = payload.event_name
    # Every field is built here from validated parts: skip re-validating the envelope (hot path).
    return Envelope.model_construct(
        specversion="1.0",
        id=event_id or new_event_id(),
        source=source,
        type=payload.ce_type(),
        subject=record_key(tenant_id, payload.shipment_key()),
        time=time or datetime.now(UTC),
        datacontenttype="application/json",
        dataschema=f"{SCHEMA_BASE}/{name}/v{payload.major}.json",
        tenantid=tenant_id,
        traceparent=traceparent,
        data=payload.model_dump(mode="json", exclude_none=True),
    )


def encode_event(envelope: Envelope) -> bytes:
    return envelope.model_dump_json(exclude_none=True).encode()


def headers_for(envelope: Envelope) -> list[tuple[str, bytes]]:
    return [
        ("content-type", CONTENT_TYPE.encode()),
        ("ce_type", envelope.type.encode()),
        ("ce_id", envelope.id.encode()),
    ]


def decode_event(value: bytes | None, accept: frozenset[str] | None = None) -> tuple[Envelope, Payload]:
    """Parse one record value into its envelope and typed payload.

    Raises ``InvalidJson``, ``SchemaViolation`` or ``UnsupportedType`` (each a dead-letter reason).
    ``accept`` limits the types a consumer handles; anything else is ``UnsupportedType``.
    """
    if value is None:
        raise InvalidJson("record has no value (tombstone)")
    try:
        # Parsed and validated in one pass by pydantic-core: the hot path of every consumer.
        envelope = Envelope.model_validate_json(value)
    except ValidationError as exc:
        first = exc.errors()[0]
        if first["type"] == "json_invalid":
            raise InvalidJson(f"value is not JSON: {first['msg']}") from None
        if first["type"] == "model_type" and not first["loc"]:
            kind = type(first["input"]).__name__
            raise SchemaViolation(f"envelope must be a JSON object, got {kind}") from None
        raise SchemaViolation(f"envelope: {_first_errors(exc)}") from None
    model = model_for(envelope.type)
    if model is None or (accept is not None and envelope.type not in accept):
        raise UnsupportedType(f"event type {envelope.type!r} is not handled here")
    try:
        payload = model.model_validate(envelope.data)
    except ValidationError as exc:
        raise SchemaViolation(f"{envelope.type}: {_first_errors(exc)}") from None
    return envelope, payload


def _first_errors(exc: ValidationError, limit: int = 3) -> str:
    parts = []
    for err in exc.errors()[:limit]:
        loc = ".".join(str(p) for p in err["loc"]) or "(root)"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)
