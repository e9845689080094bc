"""The one shipment status taxonomy (DESIGN §5).

``Status`` is the coarse state a shopper sees; ``substatus`` is ``"<status>.<reason>"`` and says why.
``RANK`` orders progress: a shipment only moves to a status of equal or higher rank, except for the
explicit rules of the state machine (exceptions, returns after delivery).
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["RANK", "SUBSTATUSES", "TERMINAL", "Status", "is_valid_substatus"]


class Status(StrEnum):
    PENDING = "pending"
    INFO_RECEIVED = "info_received"
    IN_TRANSIT = "in_transit"
    OUT_FOR_DELIVERY = "out_for_delivery"
    FAILED_ATTEMPT = "failed_attempt"
    AVAILABLE_FOR_PICKUP = "available_for_pickup"
    DELIVERED = "delivered"
    EXCEPTION = "exception"
    RETURNING = "returning"
    RETURNED = "returned"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


# Progress rank. ``exception`` has no rank of its own: it is entered from any non-terminal state and
# left by any later progress event, so the state machine treats it apart.
RANK: dict[Status, int] = {
    Status.PENDING: 0,
    Status.INFO_RECEIVED: 10,
    Status.IN_TRANSIT: 20,
    Status.FAILED_ATTEMPT: 30,
    Status.AVAILABLE_FOR_PICKUP: 35,
    Status.OUT_FOR_DELIVERY: 40,
    Status.EXCEPTION: -1,
    Status.DELIVERED: 50,
    Status.RETURNING: 60,
    Status.RETURNED: 70,
    Status.EXPIRED: 80,
    Status.CANCELLED: 90,
}

TERMINAL: frozenset[Status] = frozenset({Status.DELIVERED, Status.RETURNED, Status.CANCELLED})

# Every substatus, with what it means. Add here, never invent one in a code table.
SUBSTATUSES: dict[str, str] = {
    "pending.no_information": "Tracking number registered, nothing heard yet",
    "info_received.order_created": "Order created by the shop",
    "info_received.invoice_issued": "Invoice (NF-e) issued",
    "info_received.label_created": "Shipping label created / shipped by the shop, awaiting carrier pickup",
    "in_transit.picked_up": "Carrier took the parcel (posted, collected)",
    "in_transit.in_route": "Moving through the carrier network",
    "in_transit.arrived_at_facility": "Arrived at a carrier facility",
    "in_transit.departed_facility": "Left a carrier facility",
    "in_transit.customs_clearance": "In customs",
    "in_transit.delayed": "Delayed, still moving",
    "in_transit.delivery_scheduled": "Delivery scheduled for an agreed date",
    "in_transit.carrier_correction": "The carrier withdrew its previous event; status recomputed without it",
    "in_transit.departed_origin": "The delivery vehicle left the origin (own fleet, geofence)",
    "in_transit.long_stop": "The delivery vehicle has stood still longer than expected (own fleet)",
    "in_transit.transferred_to_partner": "Handed to a partner carrier or the local post for the last leg",
    "out_for_delivery.with_courier": "Out for delivery with the courier",
    "out_for_delivery.nearby": "The delivery vehicle is in the destination's area (own fleet, geofence)",
    "failed_attempt.recipient_absent": "Delivery attempted, nobody at the address",
    "failed_attempt.address_issue": "Delivery attempted, address incomplete or wrong",
    "failed_attempt.refused": "Recipient refused the parcel",
    "failed_attempt.business_closed": "Delivery attempted, business closed",
    "failed_attempt.other": "Delivery attempted, not completed",
    "available_for_pickup.at_pickup_point": "Waiting for the recipient at a pickup point or branch",
    "delivered.signed": "Delivered and signed for",
    "delivered.pod_available": "Delivered, proof of delivery available",
    "delivered.at_pickup_point": "Collected by the recipient at a pickup point",
    "delivered.delivered": "Delivered",
    "exception.address_issue": "Address problem needs action",
    "exception.damaged": "Parcel damaged",
    "exception.lost": "Parcel lost",
    "exception.stolen": "Parcel stolen",
    "exception.customs_hold": "Held in customs, action needed",
    "exception.seized": "Seized by customs, police or another authority",
    "exception.held_by_carrier": "Held by the carrier",
    "exception.route_deviation": "The delivery vehicle left its planned route's corridor (own fleet)",
    "exception.other": "Exception, see description",
    "returning.to_sender": "On the way back to the sender",
    "returning.refused": "Refused by the recipient, on the way back to the sender",
    "returning.address_issue": "Address wrong, or recipient unknown or moved, on the way back to the sender",
    "returning.unclaimed": "Not collected at the pickup point in time, on the way back to the sender",
    "returning.undeliverable": "Undeliverable (attempts, documents, size), on the way back to the sender",
    "returning.customs_rejected": "Import refused or customs papers missing, on the way back to the sender",
    "returned.to_sender": "Returned to the sender",
    "expired.no_updates": "No news for too long",
    "cancelled.by_shipper": "Cancelled by the shop or shipper",
}


def is_valid_substatus(status: Status, substatus: str) -> bool:
    return substatus in SUBSTATUSES and substatus.split(".", 1)[0] == status.value
