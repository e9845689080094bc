"""Typed payloads of every event type (the ``data`` of the envelope).

Frozen; unknown fields are ignored so an older reader tolerates a newer minor version.
A breaking change is a new major version (``v2``) with an upcaster, never an edit here.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any, ClassVar, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from rastro_events.personal import Recipient
from rastro_events.taxonomy import Status

__all__ = [
    "ApiKeyRecord",
    "EtaPredicted",
    "InvoiceIssued",
    "Lane",
    "Location",
    "Money",
    "NormalizedTrackingEvent",
    "OrderCancelled",
    "OrderCreated",
    "OrderShipped",
    "Payload",
    "RawTrackingEvent",
    "ShipmentChanged",
    "ShipmentPosition",
    "TelemetryPosition",
]


class Payload(BaseModel):
    """Base of every payload. ``event_name`` + ``major`` make the CloudEvents ``type``."""

    model_config = ConfigDict(frozen=True, extra="ignore")
    event_name: ClassVar[str]
    major: ClassVar[int] = 1
    topic: ClassVar[str]

    @classmethod
    def ce_type(cls) -> str:
        return f"rastro.{cls.event_name}.v{cls.major}"

    def shipment_key(self) -> str:
        """The tenant-less part of the record key: tracking number, or order id before one exists."""
        raise NotImplementedError


class Location(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")
    city: str | None = Field(default=None, max_length=200)
    state: str | None = Field(default=None, max_length=100)
    country: str | None = Field(default=None, max_length=2, description="ISO 3166-1 alpha-2")
    postal_code: str | None = Field(default=None, max_length=20)
    latitude: float | None = Field(default=None, ge=-90, le=90, description="WGS 84 degrees, when known")
    longitude: float | None = Field(default=None, ge=-180, le=180, description="WGS 84 degrees, when known")


class Money(BaseModel):
    """An amount of money: a decimal string (never a binary float) and its currency."""

    model_config = ConfigDict(frozen=True, extra="ignore")
    amount: Decimal = Field(ge=0, max_digits=18, decimal_places=4, description='a decimal string: "12.34"')
    currency: str = Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code, e.g. BRL")


_CHANNEL = "where the order was sold (web shop, app, a marketplace): the KPIs' channel"
_COST = "what the tenant pays the carrier for this shipment: the KPIs' cost per delivery"
_VEHICLE = "own-fleet delivery: the vehicle whose positions (rastro.telemetry.v1) carry this shipment"
_ROUTE = "own-fleet delivery: the planned route (its corridor) the vehicle should keep to"
_RECIPIENT = "who receives it: personal data, encrypted at rest and redacted in logs (docs/privacy.md)"


class _OrderEvent(Payload):
    topic: ClassVar[str] = "rastro.orders.v1"
    order_id: str = Field(min_length=1, max_length=100)
    occurred_at: AwareDatetime
    tracking_number: str | None = Field(default=None, max_length=64)
    carrier: str | None = Field(default=None, max_length=64)

    def shipment_key(self) -> str:
        return self.tracking_number or self.order_id


class OrderCreated(_OrderEvent):
    event_name: ClassVar[str] = "order.created"
    origin: Location | None = None
    destination: Location | None = None
    promised_date: date | None = None
    sales_channel: str | None = Field(default=None, max_length=64, description=_CHANNEL)
    shipping_cost: Money | None = Field(default=None, description=_COST)
    recipient: Recipient | None = Field(default=None, description=_RECIPIENT)


class InvoiceIssued(_OrderEvent):
    event_name: ClassVar[str] = "invoice.issued"
    invoice_number: str | None = Field(default=None, max_length=64)
    invoice_key: str | None = Field(default=None, max_length=64, description="NF-e access key (44 digits)")


class OrderShipped(_OrderEvent):
    event_name: ClassVar[str] = "order.shipped"
    tracking_number: str = Field(min_length=1, max_length=64)
    carrier: str = Field(min_length=1, max_length=64)
    service: str | None = Field(default=None, max_length=64)
    origin: Location | None = None
    destination: Location | None = None
    promised_date: date | None = None
    sales_channel: str | None = Field(default=None, max_length=64, description=_CHANNEL)
    shipping_cost: Money | None = Field(default=None, description=_COST)
    recipient: Recipient | None = Field(default=None, description=_RECIPIENT)
    vehicle_id: str | None = Field(default=None, max_length=64, description=_VEHICLE)
    route_id: str | None = Field(default=None, max_length=64, description=_ROUTE)


class OrderCancelled(_OrderEvent):
    event_name: ClassVar[str] = "order.cancelled"
    reason: str | None = Field(default=None, max_length=500)


class RawTrackingEvent(Payload):
    """One carrier event as the carrier said it."""

    event_name: ClassVar[str] = "tracking.raw"
    topic: ClassVar[str] = "rastro.tracking.raw.v1"
    tracking_number: str = Field(min_length=1, max_length=64)
    carrier: str | None = Field(default=None, max_length=64, description="as sent; aliases resolved later")
    service: str | None = Field(default=None, max_length=64)
    status_code: str = Field(min_length=1, max_length=64)
    description: str | None = Field(default=None, max_length=1000)
    occurred_at: AwareDatetime
    location: Location | None = None
    origin: Location | None = None
    destination: Location | None = None
    order_id: str | None = Field(default=None, max_length=100)
    raw: dict[str, Any] | None = Field(default=None, description="the carrier's own payload, untouched")

    def shipment_key(self) -> str:
        return self.tracking_number


class NormalizedTrackingEvent(Payload):
    """A raw event with the unified status. Field names of the raw event are kept."""

    event_name: ClassVar[str] = "tracking.normalized"
    topic: ClassVar[str] = "rastro.tracking.normalized.v1"
    tracking_number: str
    carrier: str
    service: str | None = None
    status_code: str
    status: Status
    substatus: str
    description: str | None = None
    descriptions: dict[str, str] = Field(default_factory=dict, description="localized, by language tag")
    occurred_at: AwareDatetime = Field(description="as the carrier said it, offset kept")
    occurred_at_utc: AwareDatetime
    location: Location | None = None
    raw_event_id: str = Field(description="id of the rastro.tracking.raw.v1 event this came from")

    def shipment_key(self) -> str:
        return self.tracking_number


class ShipmentChanged(Payload):
    event_name: ClassVar[str] = "shipment.changed"
    topic: ClassVar[str] = "rastro.shipments.v1"
    tracking_number: str
    carrier: str | None = None
    service: str | None = None
    old_status: Status | None = None
    new_status: Status
    substatus: str
    occurred_at: AwareDatetime
    origin: Location | None = None
    destination: Location | None = None
    promised_date: date | None = None
    created_at: AwareDatetime | None = Field(default=None, description="first event of the shipment")
    shipped_at: AwareDatetime | None = Field(default=None, description="carrier pickup")
    delivered_at: AwareDatetime | None = None

    def shipment_key(self) -> str:
        return self.tracking_number


class Lane(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")
    carrier: str | None = None
    service: str | None = None
    origin: str | None = None
    destination: str | None = None


class EtaPredicted(Payload):
    event_name: ClassVar[str] = "eta.predicted"
    topic: ClassVar[str] = "rastro.eta.v1"
    tracking_number: str
    expected_date: date = Field(description="P50")
    promise_date: date = Field(description="P90")
    lane: Lane
    model_version: str
    sample_size: int = Field(ge=0)
    predicted_at: AwareDatetime
    milestone: Status
    confidence: Literal["high", "medium", "low"] | None = Field(
        default=None, description="how much the lane used has seen (decayed sample size vs the minimum)"
    )
    lane_level: str | None = Field(default=None, description="fallback level of the lane used")
    basis_milestone: Literal["created", "shipped", "out_for_delivery"] | None = Field(
        default=None, description="the milestone the transit clock starts from"
    )
    promise_quantile: float | None = Field(
        default=None, gt=0, lt=1, description="share of deliveries meant to arrive by the promise date"
    )
    expected_at: AwareDatetime | None = Field(
        default=None,
        description="last mile: the expected arrival time, from the vehicle's position and recent speed",
    )
    remaining_m: int | None = Field(
        default=None, ge=0, description="last mile: the distance left to the destination, metres"
    )

    def shipment_key(self) -> str:
        return self.tracking_number


class TelemetryPosition(Payload):
    """One GPS position of a vehicle of the tenant's own fleet (``POST /v1/telemetry``, or produced
    straight to ``rastro.telemetry.v1`` keyed ``<tenant>/<vehicle id>``)."""

    event_name: ClassVar[str] = "telemetry.position"
    topic: ClassVar[str] = "rastro.telemetry.v1"
    vehicle_id: str = Field(min_length=1, max_length=64)
    recorded_at: AwareDatetime = Field(description="when the device took the fix")
    latitude: float = Field(ge=-90, le=90, description="WGS 84 degrees")
    longitude: float = Field(ge=-180, le=180, description="WGS 84 degrees")
    speed_kmh: float = Field(ge=0, le=400, description="ground speed, km/h")
    heading: float | None = Field(default=None, ge=0, lt=360, description="degrees clockwise from north")
    accuracy_m: float | None = Field(default=None, ge=0, description="horizontal accuracy, metres")

    def shipment_key(self) -> str:
        return self.vehicle_id


class ShipmentPosition(Payload):
    """Where an own-fleet shipment is: its vehicle's last position, what is left to its destination and
    the vehicle's recent speed. Published by the geofence processor at most every few minutes of
    recorded time per shipment, and with each geofence event; ETA turns it into a last-mile ETA."""

    event_name: ClassVar[str] = "shipment.position"
    topic: ClassVar[str] = "rastro.positions.v1"
    tracking_number: str
    vehicle_id: str
    recorded_at: AwareDatetime
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)
    speed_kmh: float = Field(ge=0, description="the vehicle's recent average speed (moving or not)")
    remaining_m: int | None = Field(
        default=None, ge=0, description="straight-line distance to the destination; None if it is not located"
    )
    route_remaining_m: int | None = Field(
        default=None, ge=0, description="distance left along the planned route, when the shipment has one"
    )
    inside_destination: bool = False

    def shipment_key(self) -> str:
        return self.tracking_number


class ApiKeyRecord(Payload):
    """An API key as other services need to know it: only its hash, never the key."""

    event_name: ClassVar[str] = "apikey.changed"
    topic: ClassVar[str] = "rastro.auth.keys.v1"
    key_id: str
    key_hash: str = Field(description="sha256 hex of the key")
    tenant_id: str
    environment: str = "production"
    scopes: list[str]
    name: str | None = None
    expires_at: datetime | None = None
    revoked: bool = False
    role: str | None = Field(
        default=None, description="named role (docs/roles.md); when set it decides the scopes"
    )
    tenants: list[str] = Field(
        default_factory=list, description="further tenants the key may act for (a 3PL operator)"
    )

    def shipment_key(self) -> str:
        return self.key_id


OrderEventKind = Literal["order.created", "invoice.issued", "order.shipped", "order.cancelled"]
