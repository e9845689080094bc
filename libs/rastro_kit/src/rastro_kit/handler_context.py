"""What a consumer handler receives besides its event."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aiokafka import ConsumerRecord

from rastro_events import Envelope, Payload
from rastro_events.encoding import EncodedEvent, encode_new_event
from rastro_events.migrations import EventMigrations, encode_in_window

__all__ = ["BatchHandler", "Handler", "HandlerContext", "RawHandler", "RecordsFailed"]


@dataclass
class HandlerContext:
    """The open transaction (``conn``), the record, and ``emit`` for the events the handler produces.

    Emitted events are collected and written to the outbox by the runner in the same transaction, after
    the handler returned (all of a batch's in one round trip), so a handler that fails emits nothing.
    ``migrations`` (the open migration windows, ``RASTRO_EVENT_MIGRATIONS``) makes ``emit`` publish an
    event of a migrating type in every major of its window, one record each, with one event id.
    """

    conn: Any
    service: str
    record: ConsumerRecord[bytes, bytes]
    envelope: Envelope | None = None
    payload: Any = None
    emitted: list[EncodedEvent] = field(default_factory=list)
    migrations: EventMigrations | None = None

    @property
    def tenant_id(self) -> str:
        if self.envelope is None:
            raise RuntimeError("a raw handler has no envelope, hence no tenant")
        return self.envelope.tenantid

    async def emit(
        self,
        payload: Payload,
        *,
        tenant_id: str | None = None,
        time: datetime | None = None,
        event_id: str | None = None,
    ) -> EncodedEvent:
        """Queue an event for the outbox of this transaction; trace context is carried on. In a migration
        window of its type, every major of the window is queued; the form of ``payload`` is returned."""
        if self.migrations and payload.event_name in self.migrations.windows:
            forms = encode_in_window(
                payload,
                self.migrations,
                tenant_id=tenant_id or self.tenant_id,
                source=f"/rastro/{self.service}",
                time=time,
                event_id=event_id,
                traceparent=self.envelope.traceparent if self.envelope else None,
            )
            self.emitted.extend(forms)
            own = payload.ce_type().encode()
            return next(form for form in forms if form.ce_type == own)
        encoded = encode_new_event(
            payload,
            tenant_id=tenant_id or self.tenant_id,
            source=f"/rastro/{self.service}",
            time=time,
            event_id=event_id,
            traceparent=self.envelope.traceparent if self.envelope else None,
        )
        self.emitted.append(encoded)
        return encoded


Handler = Callable[[HandlerContext, Envelope, Any], Awaitable[None]]
RawHandler = Callable[[HandlerContext], Awaitable[None]]
BatchHandler = Callable[[Any, Sequence[HandlerContext]], Awaitable[None]]
"""``(conn, contexts)``: a partition batch's new records (decoded, claimed in the inbox, in offset order)
handled together, in the batch's transaction, so a service can do set-based work (one query for many
records). It must have exactly the effect of the per-type handlers run on ``contexts`` one by one, in
order, and emits through each record's own context. Raising anything but a database outage rolls the
batch back and redoes it record by record with the per-type handlers (the isolated path)."""


class RecordsFailed(Exception):
    """Raised by a batch handler *before it wrote or emitted anything*: these records (index in the
    ``contexts`` it got -> the error each one's handler would have raised) cannot be handled.

    The runner routes each as the isolated path would (``PermanentError`` to the DLQ, ``TransientError``
    to a retry tier, anything else to the DLQ as ``handler_error``), takes it out of the inbox, and calls
    the batch handler again with the others, so one bad record does not send the batch down the slow
    path. Raise anything else (or this after a write) and the batch is redone record by record.
    """

    def __init__(self, failures: Mapping[int, Exception]) -> None:
        super().__init__(f"{len(failures)} record(s) failed before anything was written")
        self.failures = dict(failures)
