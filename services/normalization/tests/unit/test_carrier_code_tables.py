"""Every carrier table beyond Correios (which has its own test against Correios' source list): every
row valid and loaded in four languages, and each carrier's own code spellings resolve."""

from __future__ import annotations

import csv
import io
from importlib import resources

import pytest

from rastro_events.taxonomy import Status, is_valid_substatus
from rastro_normalization.adapters.carriers import load_carrier_table

pytestmark = pytest.mark.unit

LANGUAGES = {
    "pt-BR": "description_pt_br",
    "en": "description_en",
    "es": "description_es",
    "fr": "description_fr",
}
# carrier -> the fewest rows its table may have (a truncated file fails)
MIN_ROWS = {
    "dhl": 30,
    "fedex": 25,
    "jadlog": 15,
    "loggi": 15,
    "ups": 40,
    "usps": 40,
}
# carrier -> (code as the carrier or a shop writes it, status, substatus)
SPELLINGS: dict[str, list[tuple[str, Status, str]]] = {
    "dhl": [
        ("PU", Status.IN_TRANSIT, "in_transit.picked_up"),
        ("PL", Status.IN_TRANSIT, "in_transit.in_route"),
        ("df", Status.IN_TRANSIT, "in_transit.departed_facility"),
        ("AF", Status.IN_TRANSIT, "in_transit.arrived_at_facility"),
        ("WC", Status.OUT_FOR_DELIVERY, "out_for_delivery.with_courier"),
        ("OK", Status.DELIVERED, "delivered.signed"),
        ("NH", Status.FAILED_ATTEMPT, "failed_attempt.recipient_absent"),
        ("CA", Status.FAILED_ATTEMPT, "failed_attempt.business_closed"),
        ("BA", Status.EXCEPTION, "exception.address_issue"),
        ("RT", Status.RETURNING, "returning.to_sender"),
    ],
    "fedex": [
        ("PU", Status.IN_TRANSIT, "in_transit.picked_up"),
        ("oc", Status.INFO_RECEIVED, "info_received.label_created"),
        ("IT", Status.IN_TRANSIT, "in_transit.in_route"),
        ("AR", Status.IN_TRANSIT, "in_transit.arrived_at_facility"),
        ("DP", Status.IN_TRANSIT, "in_transit.departed_facility"),
        ("OD", Status.OUT_FOR_DELIVERY, "out_for_delivery.with_courier"),
        (" dl ", Status.DELIVERED, "delivered.delivered"),
        ("DE", Status.FAILED_ATTEMPT, "failed_attempt.other"),
        ("CA", Status.CANCELLED, "cancelled.by_shipper"),
        ("RS", Status.RETURNING, "returning.to_sender"),
        ("HL", Status.AVAILABLE_FOR_PICKUP, "available_for_pickup.at_pickup_point"),
    ],
    "jadlog": [
        ("EMISSAO", Status.INFO_RECEIVED, "info_received.label_created"),
        ("Emissão", Status.INFO_RECEIVED, "info_received.label_created"),
        ("ENTRADA", Status.IN_TRANSIT, "in_transit.arrived_at_facility"),
        ("Transferência", Status.IN_TRANSIT, "in_transit.in_route"),
        ("EM ROTA", Status.OUT_FOR_DELIVERY, "out_for_delivery.with_courier"),
        ("em_rota", Status.OUT_FOR_DELIVERY, "out_for_delivery.with_courier"),
        ("ENTREGUE", Status.DELIVERED, "delivered.delivered"),
        ("DEVOLUCAO", Status.RETURNING, "returning.to_sender"),
        ("Devolução", Status.RETURNING, "returning.to_sender"),
    ],
    "loggi": [
        ("Coletado", Status.IN_TRANSIT, "in_transit.picked_up"),
        ("Em transferência", Status.IN_TRANSIT, "in_transit.in_route"),
        ("Saiu para entrega", Status.OUT_FOR_DELIVERY, "out_for_delivery.with_courier"),
        ("ENTREGUE", Status.DELIVERED, "delivered.delivered"),
        ("Endereço não encontrado", Status.FAILED_ATTEMPT, "failed_attempt.address_issue"),
        ("Em devolução", Status.RETURNING, "returning.to_sender"),
        ("aguardando-retirada", Status.AVAILABLE_FOR_PICKUP, "available_for_pickup.at_pickup_point"),
    ],
    "ups": [
        ("I", Status.IN_TRANSIT, "in_transit.in_route"),
        ("d", Status.DELIVERED, "delivered.delivered"),
        ("X", Status.EXCEPTION, "exception.other"),
        ("P", Status.IN_TRANSIT, "in_transit.picked_up"),
        ("M", Status.INFO_RECEIVED, "info_received.label_created"),
        ("11", Status.DELIVERED, "delivered.delivered"),
        ("021", Status.OUT_FOR_DELIVERY, "out_for_delivery.with_courier"),
        ("40", Status.AVAILABLE_FOR_PICKUP, "available_for_pickup.at_pickup_point"),
        ("RS", Status.RETURNED, "returned.to_sender"),
    ],
    "usps": [
        ("1", Status.DELIVERED, "delivered.delivered"),
        ("01", Status.DELIVERED, "delivered.delivered"),
        ("2", Status.FAILED_ATTEMPT, "failed_attempt.recipient_absent"),
        ("of", Status.OUT_FOR_DELIVERY, "out_for_delivery.with_courier"),
        ("03", Status.IN_TRANSIT, "in_transit.picked_up"),
        ("16", Status.AVAILABLE_FOR_PICKUP, "available_for_pickup.at_pickup_point"),
        ("27", Status.RETURNING, "returning.unclaimed"),
        ("MA", Status.INFO_RECEIVED, "info_received.label_created"),
    ],
}


def rows(carrier: str) -> list[dict[str, str]]:
    source = resources.files("rastro_normalization.adapters.carriers") / carrier / "codes.csv"
    return list(csv.DictReader(io.StringIO(source.read_text(encoding="utf-8"))))


ALL_ROWS = [(carrier, row) for carrier in MIN_ROWS for row in rows(carrier)]


@pytest.mark.parametrize(("carrier", "row"), ALL_ROWS, ids=[f"{c}:{r['code']}" for c, r in ALL_ROWS])
def test_row_is_valid_and_loaded(carrier: str, row: dict[str, str]) -> None:
    assert is_valid_substatus(Status(row["status"]), row["substatus"])
    assert row["effect"] == ""
    entry = load_carrier_table(carrier).lookup(row["code"])
    assert entry is not None and entry.code == row["code"]
    assert (entry.status.value, entry.substatus) == (row["status"], row["substatus"])
    assert dict(entry.descriptions) == {lang: row[column] for lang, column in LANGUAGES.items()}
    assert all(text.strip() for text in entry.descriptions.values())


@pytest.mark.parametrize("carrier", sorted(MIN_ROWS))
def test_codes_are_unique_and_the_table_is_complete(carrier: str) -> None:
    table_rows = rows(carrier)
    assert len(table_rows) == len(load_carrier_table(carrier)) >= MIN_ROWS[carrier]
    assert {Status(row["status"]) for row in table_rows} >= {Status.DELIVERED, Status.IN_TRANSIT}


@pytest.mark.parametrize(
    ("carrier", "spelling", "status", "substatus"),
    [(carrier, *case) for carrier, cases in SPELLINGS.items() for case in cases],
)
def test_carrier_spellings(carrier: str, spelling: str, status: Status, substatus: str) -> None:
    entry = load_carrier_table(carrier).lookup(spelling)
    assert entry is not None
    assert (entry.status, entry.substatus) == (status, substatus)
