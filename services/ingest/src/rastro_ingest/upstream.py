"""The upstream Kafka topic ``rastro.ingest.upstream.v1``: for producers that prefer Kafka to HTTP.

Each record value is one JSON object: exactly one event as ``POST /v1/events`` takes it, plus the
``tenant_id`` it belongs to, e.g.
``{"tenant_id": "acme", "type": "tracking.event", "carrier": "correios", ...}``.
It is validated with the same reader as the HTTP API, stamped into a CloudEvents envelope and written
to the outbox, so it reaches ``rastro.orders.v1`` / ``rastro.tracking.raw.v1`` like an HTTP event
(record key ``<tenant>/<shipment key>``, as every main topic). A record that cannot be read is a dead
letter on ``rastro.ingest.dlq`` with its key and value byte for byte: ``invalid_json``,
``schema_violation`` (the field errors are the message) or ``unknown_tenant``.
Producers that already speak CloudEvents may publish to ``rastro.orders.v1`` directly instead.
"""

from __future__ import annotations

import json
from typing import Any

from rastro_events import new_event
from rastro_events.ids import scoped_event_id
from rastro_events.topics import INGEST_UPSTREAM
from rastro_ingest.adapters.repository import tenant_exists
from rastro_ingest.domain.events_in import Accepted, read_event
from rastro_ingest.references import remember_refs
from rastro_kit.consumer import HandlerContext
from rastro_kit.errors import PermanentError, Reason
from rastro_kit.outbox import enqueue_event
from rastro_kit.service import ConsumerSpec, Runtime

__all__ = ["handle_upstream", "upstream_consumers"]


async def handle_upstream(ctx: HandlerContext) -> None:
    item = _parse(ctx.record.value)
    tenant_id = item.pop("tenant_id", None)
    if not isinstance(tenant_id, str) or not tenant_id:
        raise PermanentError(Reason.SCHEMA_VIOLATION, "tenant_id: required, a non-empty string")
    result = read_event(0, item)
    if not isinstance(result, Accepted):
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in result.errors)
        raise PermanentError(Reason.SCHEMA_VIOLATION, detail)
    if not await tenant_exists(ctx.conn, tenant_id):
        raise PermanentError(Reason.UNKNOWN_TENANT, f"unknown tenant {tenant_id!r}")
    envelope = new_event(
        result.payload,
        tenant_id=tenant_id,
        source=f"/tenants/{tenant_id}/kafka",
        event_id=scoped_event_id(tenant_id, result.event_id) if result.event_id else None,
        traceparent=_header(ctx, "traceparent"),
    )
    await enqueue_event(ctx.conn, result.payload.topic, envelope)
    await remember_refs(ctx.conn, tenant_id, (result.payload,))


def upstream_consumers(_: Runtime) -> tuple[ConsumerSpec, ...]:
    return (ConsumerSpec(topics=(INGEST_UPSTREAM,), raw_handler=handle_upstream),)


def _parse(value: bytes | None) -> dict[str, Any]:
    try:
        item = json.loads(value or b"")
    except (UnicodeDecodeError, ValueError) as exc:
        raise PermanentError(Reason.INVALID_JSON, f"not JSON: {exc}") from exc
    if not isinstance(item, dict):
        raise PermanentError(Reason.SCHEMA_VIOLATION, "(event): an event must be a JSON object")
    return item


def _header(ctx: HandlerContext, name: str) -> str | None:
    for key, value in ctx.record.headers or ():
        if key == name and value:
            return value.decode("utf-8", "replace")
    return None
