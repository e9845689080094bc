"""The personal-data annotation and redaction (pure)."""

from __future__ import annotations

import pytest

from rastro_events import OrderShipped
from rastro_events.personal import MASK, Recipient, personal_fields, redact, scrub_text

pytestmark = pytest.mark.unit

ORDER = {
    "order_id": "o-1",
    "occurred_at": "2026-11-23T14:05:11-03:00",
    "tracking_number": "AA123456785BR",
    "carrier": "correios",
    "destination": {"city": "Campinas", "state": "SP", "postal_code": "13000-000"},
    "recipient": {
        "name": "Ana Souza",
        "email": "ana@example.com",
        "phone": "+5511987654321",
        "document": "123.456.789-09",
        "address": {"street": "Rua das Flores", "number": "42"},
    },
}


def test_recipient_fields_are_annotated_and_in_the_json_schema() -> None:
    assert personal_fields(Recipient) == {
        "name": "name",
        "email": "email",
        "phone": "phone",
        "document": "document",
    }
    props = OrderShipped.model_json_schema()["$defs"]["Recipient"]["properties"]
    assert props["email"]["x-personal-data"] == "email"


@pytest.mark.parametrize("shown", ["model", "json"])
def test_redaction_masks_the_recipient_and_keeps_the_rest(shown: str) -> None:
    value = OrderShipped.model_validate(ORDER) if shown == "model" else ORDER
    out = redact(value)
    text = repr(out)
    for secret in ("Ana Souza", "ana@example.com", "98765", "123.456", "Flores"):
        assert secret not in text
    assert out["recipient"]["email"] == MASK and out["recipient"]["address"]["street"] == MASK
    assert out["tracking_number"] == "AA123456785BR" and out["destination"]["city"] == "Campinas"


def test_free_text_is_scrubbed_of_addresses_and_documents() -> None:
    text = "refused <ana@example.com>; cpf 123.456.789-09, cnpj 12.345.678/0001-95, tel +55 11 98765-4321"
    scrubbed = scrub_text(text)
    for secret in ("ana@", "123.456", "12.345.678", "98765"):
        assert secret not in scrubbed
    assert scrub_text("2026-11-23T14:05:11+00:00 AA123456785BR") == "2026-11-23T14:05:11+00:00 AA123456785BR"
