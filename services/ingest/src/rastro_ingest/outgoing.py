"""The outbox rows of one accepted batch: the CloudEvents records ``POST /v1/events`` publishes.

The hot path of ingest (a 1,000-event request): each record is built as bytes by ``encode_new_event``
(no ``Envelope`` model per event). Every event of a request shares the acceptance time (one transaction
accepts them all).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from rastro_events.encoding import HEADER_NAMES, encode_new_event
from rastro_events.ids import scoped_event_id
from rastro_ingest.domain.events_in import Accepted
from rastro_kit.outbox import OutboxRow

__all__ = ["outbox_rows"]


def outbox_rows(
    accepted: Sequence[Accepted],
    tenant_id: str,
    *,
    traceparent: str | None = None,
    now: datetime | None = None,
) -> tuple[list[str], list[OutboxRow]]:
    """The event ids and outbox rows (topic, key, value, header names, header values) of ``accepted``."""
    now = now or datetime.now(UTC)
    source = f"/tenants/{tenant_id}/api"
    ids: list[str] = []
    rows: list[OutboxRow] = []
    for a in accepted:
        # A client's own id is scoped to its tenant: two tenants' "erp-1" are two events.
        e = encode_new_event(
            a.payload,
            tenant_id=tenant_id,
            source=source,
            time=now,
            event_id=scoped_event_id(tenant_id, a.event_id) if a.event_id else None,
            traceparent=traceparent,
        )
        ids.append(e.id)
        rows.append((e.topic, e.key, e.value, HEADER_NAMES, e.header_values))
    return ids, rows
