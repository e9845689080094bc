"""Reading the Olist Brazilian e-commerce CSVs as a stream of orders, and turning an order into the
``ShipmentChanged`` events the service would have seen for it.

Customers, sellers and each order's first seller are small lookup tables held in memory; the orders
file is read one row at a time. Olist timestamps are local (São Paulo) wall-clock times without an
offset; its estimate is a date. The data stays where it is (``RASTRO_OLIST_DIR``): it is licensed
CC BY-NC-SA 4.0 and is never copied into the repository.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from pathlib import Path
from typing import Any

from rastro_events import Location, ShipmentChanged, Status

__all__ = ["OLIST_FILES", "OlistOrder", "missing_files", "read_orders", "shipment_events"]

ORDERS = "olist_orders_dataset.csv"
ITEMS = "olist_order_items_dataset.csv"
CUSTOMERS = "olist_customers_dataset.csv"
SELLERS = "olist_sellers_dataset.csv"
OLIST_FILES = (ORDERS, ITEMS, CUSTOMERS, SELLERS)
_TIME = "%Y-%m-%d %H:%M:%S"


@dataclass(frozen=True, slots=True)
class OlistOrder:
    order_id: str
    status: str
    purchased_at: datetime
    shipped_at: datetime | None
    """``order_delivered_carrier_date``: the hand-over to the carrier."""
    delivered_at: datetime | None
    estimated_date: date | None
    """Olist's own estimate shown to the customer at purchase."""
    origin: Location | None
    destination: Location | None

    @property
    def valid_shipped_at(self) -> datetime | None:
        """The hand-over, when it lies between purchase and delivery (some rows have it outside)."""
        s = self.shipped_at
        if s is None or s < self.purchased_at or (self.delivered_at is not None and s > self.delivered_at):
            return None
        return s


def missing_files(folder: Path) -> list[str]:
    return [name for name in OLIST_FILES if not (folder / name).is_file()]


def _time(text: str, zone: tzinfo) -> datetime | None:
    text = text.strip()
    if not text:
        return None
    if len(text) == 16:  # some rows have minute precision
        text += ":00"
    return datetime.strptime(text[:19], _TIME).replace(tzinfo=zone)


def _rows(path: Path) -> Iterator[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        yield from csv.DictReader(f)


def _location(state: str, zip_prefix: str, city: str) -> Location:
    return Location(state=state or None, postal_code=zip_prefix or None, city=city or None, country="BR")


def read_orders(folder: Path, zone: tzinfo) -> Iterator[OlistOrder]:
    """Every order of the dataset, in file order, with its seller's and customer's locations."""
    customers = {
        r["customer_id"]: (r["customer_state"], r["customer_zip_code_prefix"], r["customer_city"])
        for r in _rows(folder / CUSTOMERS)
    }
    sellers = {
        r["seller_id"]: (r["seller_state"], r["seller_zip_code_prefix"], r["seller_city"])
        for r in _rows(folder / SELLERS)
    }
    origin_of: dict[str, Location] = {}
    for r in _rows(folder / ITEMS):
        seller = sellers.get(r["seller_id"])
        if seller is not None and r["order_id"] not in origin_of:
            origin_of[r["order_id"]] = _location(*seller)  # the first item's seller ships the order
    for r in _rows(folder / ORDERS):
        purchased = _time(r["order_purchase_timestamp"], zone)
        if purchased is None:
            continue
        estimate = _time(r["order_estimated_delivery_date"], zone)
        yield OlistOrder(
            order_id=r["order_id"],
            status=r["order_status"],
            purchased_at=purchased,
            shipped_at=_time(r["order_delivered_carrier_date"], zone),
            delivered_at=_time(r["order_delivered_customer_date"], zone),
            estimated_date=estimate.date() if estimate else None,
            origin=origin_of.get(r["order_id"]),
            destination=_location(*customer) if (customer := customers.get(r["customer_id"])) else None,
        )


def shipment_events(order: OlistOrder) -> list[ShipmentChanged]:
    """What normalization would publish for the order: created, handed over, delivered (those known)."""
    common: dict[str, Any] = {
        "tracking_number": order.order_id,
        "origin": order.origin,
        "destination": order.destination,
        "promised_date": order.estimated_date,
        "created_at": order.purchased_at,
    }
    events = [
        ShipmentChanged(
            new_status=Status.INFO_RECEIVED,
            substatus="info_received.order_created",
            occurred_at=order.purchased_at,
            **common,
        )
    ]
    shipped = order.valid_shipped_at
    if shipped is not None:
        events.append(ShipmentChanged(
            old_status=Status.INFO_RECEIVED, new_status=Status.IN_TRANSIT, substatus="in_transit.picked_up",
            occurred_at=shipped, shipped_at=shipped, **common,
        ))  # fmt: skip
    if order.delivered_at is not None and order.delivered_at >= order.purchased_at:
        events.append(ShipmentChanged(
            old_status=Status.IN_TRANSIT if shipped else Status.INFO_RECEIVED, new_status=Status.DELIVERED,
            substatus="delivered.delivered", occurred_at=order.delivered_at, shipped_at=shipped,
            delivered_at=order.delivered_at, **common,
        ))  # fmt: skip
    return events
