"""Rastro's event contract: envelope, payloads, taxonomy and topics."""

from rastro_events.envelope import (
    CONTENT_TYPE,
    Envelope,
    decode_event,
    encode_event,
    headers_for,
    new_event,
    new_event_id,
    record_key,
)
from rastro_events.errors import EventDecodeError, InvalidJson, SchemaViolation, UnsupportedType
from rastro_events.payloads import (
    ApiKeyRecord,
    EtaPredicted,
    InvoiceIssued,
    Lane,
    Location,
    NormalizedTrackingEvent,
    OrderCancelled,
    OrderCreated,
    OrderShipped,
    Payload,
    RawTrackingEvent,
    ShipmentChanged,
)
from rastro_events.registry import PAYLOAD_TYPES, model_for
from rastro_events.taxonomy import RANK, SUBSTATUSES, TERMINAL, Status

__all__ = [
    "CONTENT_TYPE",
    "PAYLOAD_TYPES",
    "RANK",
    "SUBSTATUSES",
    "TERMINAL",
    "ApiKeyRecord",
    "Envelope",
    "EtaPredicted",
    "EventDecodeError",
    "InvalidJson",
    "InvoiceIssued",
    "Lane",
    "Location",
    "NormalizedTrackingEvent",
    "OrderCancelled",
    "OrderCreated",
    "OrderShipped",
    "Payload",
    "RawTrackingEvent",
    "SchemaViolation",
    "ShipmentChanged",
    "Status",
    "UnsupportedType",
    "decode_event",
    "encode_event",
    "headers_for",
    "model_for",
    "new_event",
    "new_event_id",
    "record_key",
]
