"""What a consumer handler receives besides its event."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aiokafka import ConsumerRecord

from rastro_events import Envelope, Payload, new_event

__all__ = ["Handler", "HandlerContext", "RawHandler"]


@dataclass
class HandlerContext:
    """The open transaction (``conn``), the record, and ``emit`` for the events the handler produces.

    Emitted events are collected and written to the outbox by the runner in the same transaction, after
    the handler returned (all of a batch's in one round trip), so a handler that fails emits nothing.
    """

    conn: Any
    service: str
    record: ConsumerRecord[bytes, bytes]
    envelope: Envelope | None = None
    payload: Any = None
    emitted: list[tuple[str, Envelope]] = field(default_factory=list)

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
    ) -> Envelope:
        """Queue an event for the outbox of this transaction; trace context is carried on."""
        envelope = new_event(
            payload,
            tenant_id=tenant_id or self.tenant_id,
            source=f"/rastro/{self.service}",
            time=time,
            event_id=event_id,
            traceparent=self.envelope.traceparent if self.envelope else None,
        )
        self.emitted.append((payload.topic, envelope))
        return envelope


Handler = Callable[[HandlerContext, Envelope, Any], Awaitable[None]]
RawHandler = Callable[[HandlerContext], Awaitable[None]]
