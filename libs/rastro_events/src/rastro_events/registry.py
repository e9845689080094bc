"""Which payload model reads which CloudEvents ``type``."""

from __future__ import annotations

from rastro_events.payloads import (
    ApiKeyRecord,
    EtaPredicted,
    InvoiceIssued,
    NormalizedTrackingEvent,
    OrderCancelled,
    OrderCreated,
    OrderShipped,
    Payload,
    RawTrackingEvent,
    ShipmentChanged,
)

__all__ = ["PAYLOAD_TYPES", "model_for"]

PAYLOAD_TYPES: dict[str, type[Payload]] = {
    m.ce_type(): m
    for m in (
        OrderCreated,
        InvoiceIssued,
        OrderShipped,
        OrderCancelled,
        RawTrackingEvent,
        NormalizedTrackingEvent,
        ShipmentChanged,
        EtaPredicted,
        ApiKeyRecord,
    )
}


def model_for(ce_type: str) -> type[Payload] | None:
    return PAYLOAD_TYPES.get(ce_type)
