"""A new event's record, built as bytes: exactly what ``encode_event(new_event(payload, …))`` gives.

The hot path of every service that emits (ingest's batch API, normalization's two events per raw one):
no ``Envelope`` model per event and no dict of the payload. The payload is serialized once by its own
pydantic serializer and spliced between the envelope's bytes, whose constant parts are prepared once per
payload type and source. Scalars go through ``pydantic_core.to_json``, the serializer ``Envelope``
itself uses, so strings and times come out byte for byte the same (a property test holds the two
together).
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import NamedTuple

from pydantic_core import to_json

from rastro_events.envelope import CONTENT_TYPE, SCHEMA_BASE, new_event_id, record_key
from rastro_events.payloads import Payload

__all__ = ["HEADER_NAMES", "EncodedEvent", "encode_new_event"]

HEADER_NAMES = ("content-type", "ce_type", "ce_id")
"""The names of ``headers_for``'s headers, in its order."""
_CONTENT_TYPE = CONTENT_TYPE.encode()


class EncodedEvent(NamedTuple):
    """One record ready for the outbox (or a producer): its event id, topic, key, value and CE type."""

    id: str
    topic: str
    key: bytes
    value: bytes
    ce_type: bytes

    @property
    def header_values(self) -> list[bytes]:
        """The values of ``HEADER_NAMES``, as ``headers_for`` gives them."""
        return [_CONTENT_TYPE, self.ce_type, self.id.encode()]


def encode_new_event(
    payload: Payload,
    *,
    tenant_id: str,
    source: str,
    time: datetime | None = None,
    event_id: str | None = None,
    traceparent: str | None = None,
) -> EncodedEvent:
    """``new_event``'s arguments, ``encode_event``'s bytes."""
    event_id = event_id or new_event_id()
    topic, ce_type, after_id, before_time, before_data = _parts(type(payload), source)
    subject = record_key(tenant_id, payload.shipment_key())
    tail = b',"tenantid":' + to_json(tenant_id)
    if traceparent is not None:
        tail += b',"traceparent":' + to_json(traceparent)
    value = b"".join(
        (
            b'{"specversion":"1.0","id":',
            to_json(event_id),
            after_id,
            to_json(subject),
            b',"time":',
            to_json(time or datetime.now(UTC)),
            before_time,
            tail,
            before_data,
            payload.__pydantic_serializer__.to_json(payload, exclude_none=True),
            b"}",
        )
    )
    return EncodedEvent(event_id, topic, subject.encode(), value, ce_type)


@functools.lru_cache(maxsize=256)
def _parts(kind: type[Payload], source: str) -> tuple[str, bytes, bytes, bytes, bytes]:
    """(topic, CE type, the bytes from id to subject, from time to tenantid, before data), in
    ``Envelope`` field order: specversion, id, source, type, subject, time, datacontenttype,
    dataschema, tenantid, traceparent, data."""
    ce_type = kind.ce_type()
    schema = to_json(f"{SCHEMA_BASE}/{kind.event_name}/v{kind.major}.json")
    after_id = b',"source":' + to_json(source) + b',"type":' + to_json(ce_type) + b',"subject":'
    after_time = b',"datacontenttype":"application/json","dataschema":' + schema
    return kind.topic, ce_type.encode(), after_id, after_time, b',"data":'
