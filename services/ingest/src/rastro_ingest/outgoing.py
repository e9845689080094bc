"""The outbox rows of one accepted batch: the CloudEvents records ``POST /v1/events`` publishes.

The hot path of ingest (a 1,000-event request). The bytes are exactly what
``encode_event(new_event(payload, ...))`` gives (a unit test holds the two together), built without
an ``Envelope`` model per event: the payload is serialized once by its own pydantic serializer and
spliced between the envelope's bytes, prepared once per request and payload type. Every event of a
request shares the acceptance time (one transaction accepts them all).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import orjson

from rastro_events import CONTENT_TYPE, Payload, new_event_id, record_key
from rastro_events.envelope import SCHEMA_BASE
from rastro_events.ids import scoped_event_id
from rastro_ingest.domain.events_in import Accepted
from rastro_kit.outbox import OutboxRow

__all__ = ["outbox_rows"]

_HEADER_NAMES = ("content-type", "ce_type", "ce_id")
_CONTENT_TYPE = CONTENT_TYPE.encode()


def outbox_rows(
    accepted: Sequence[Accepted],
    tenant_id: str,
    *,
    traceparent: str | None = None,
    now: datetime | None = None,
) -> tuple[list[str], list[OutboxRow]]:
    """The event ids and outbox rows (topic, key, value, header names, header values) of ``accepted``."""
    request = _RequestParts(tenant_id, traceparent, now or datetime.now(UTC))
    ids: list[str] = []
    rows: list[OutboxRow] = []
    for a in accepted:
        payload = a.payload
        # A client's own id is scoped to its tenant: two tenants' "erp-1" are two events.
        event_id = scoped_event_id(tenant_id, a.event_id) if a.event_id else new_event_id()
        topic, ce_type, before_subject, after_subject = request.of(type(payload))
        subject = record_key(tenant_id, payload.shipment_key())
        id_bytes = event_id.encode()
        value = b"".join(
            (
                b'{"specversion":"1.0","id":',
                orjson.dumps(event_id),
                before_subject,
                orjson.dumps(subject),
                after_subject,
                payload.__pydantic_serializer__.to_json(payload, exclude_none=True),
                b"}",
            )
        )
        ids.append(event_id)
        rows.append((topic, subject.encode(), value, _HEADER_NAMES, [_CONTENT_TYPE, ce_type, id_bytes]))
    return ids, rows


class _RequestParts:
    """The envelope's bytes around ``id``, ``subject`` and ``data``, per payload type, for one request
    (in ``Envelope`` field order: specversion, id, source, type, subject, time, datacontenttype,
    dataschema, tenantid, traceparent, data)."""

    def __init__(self, tenant_id: str, traceparent: str | None, now: datetime) -> None:
        self._source = orjson.dumps(f"/tenants/{tenant_id}/api")
        self._time = orjson.dumps(now, option=orjson.OPT_UTC_Z)
        tail = {"tenantid": tenant_id, "traceparent": traceparent} if traceparent else {"tenantid": tenant_id}
        self._tail = orjson.dumps(tail)[1:-1]  # '"tenantid":…,"traceparent":…'
        self._parts: dict[type[Payload], tuple[str, bytes, bytes, bytes]] = {}

    def of(self, kind: type[Payload]) -> tuple[str, bytes, bytes, bytes]:
        """(topic, ce_type as bytes, the bytes between id and subject, between subject and data)."""
        parts = self._parts.get(kind)
        if parts is None:
            ce_type = kind.ce_type()
            schema = orjson.dumps(f"{SCHEMA_BASE}/{kind.event_name}/v{kind.major}.json")
            before = b',"source":' + self._source + b',"type":' + orjson.dumps(ce_type) + b',"subject":'
            after = b',"time":' + self._time + b',"datacontenttype":"application/json","dataschema":' + schema
            parts = self._parts[kind] = (
                kind.topic,
                ce_type.encode(),
                before,
                after + b"," + self._tail + b',"data":',
            )
        return parts
