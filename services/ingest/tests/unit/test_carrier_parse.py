"""Carrier parsers against golden fixtures (``adapters/carriers/<carrier>/fixtures``).

Each fixture ``X.json`` has an ``X.expected.json`` beside it: the parse result, reviewed by a person.
``RASTRO_UPDATE_GOLDEN=1`` rewrites the expectations after a deliberate change (then review the diff).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from rastro_events import RawTrackingEvent
from rastro_ingest.adapters.carriers import correios, generic
from rastro_ingest.adapters.carriers.identity import carrier_event_id
from rastro_ingest.adapters.carriers.models import CarrierMessage, ParsedShipment, ParseSettings
from rastro_ingest.adapters.carriers.registry import CARRIERS

pytestmark = pytest.mark.unit
FIXTURES = {
    "correios": Path(correios.__file__).parent / "fixtures",
    "generic": Path(generic.__file__).parent / "fixtures",
}
CASES = [
    (c, p)
    for c, d in FIXTURES.items()
    for p in sorted(d.glob("*.json"))
    if not p.name.endswith(".expected.json")
]


def summary(shipments: list[ParsedShipment], messages: list[CarrierMessage]) -> dict[str, Any]:
    return {
        "shipments": [
            {
                "tracking_number": s.tracking_number,
                "delivered": s.delivered,
                "events": [e.model_dump(mode="json", exclude_none=True, exclude={"raw"}) for e in s.events],
            }
            for s in shipments
        ],
        "messages": [m.public() for m in messages],
    }


@pytest.mark.parametrize(("carrier", "fixture"), CASES, ids=lambda v: getattr(v, "name", v))
def test_parse_matches_the_golden_expectation(carrier: str, fixture: Path) -> None:
    payload = json.loads(fixture.read_text(encoding="utf-8"))
    got = summary(*CARRIERS[carrier].parse(payload, ParseSettings(carrier)))
    expected_path = fixture.with_suffix(".expected.json")
    if os.environ.get("RASTRO_UPDATE_GOLDEN"):
        expected_path.write_text(json.dumps(got, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    assert got == json.loads(expected_path.read_text(encoding="utf-8"))


def test_correios_events_keep_the_carriers_own_record_raw() -> None:
    payload = json.loads((FIXTURES["correios"] / "sro_objetos.json").read_text(encoding="utf-8"))
    [pac, *_], _ = CARRIERS["correios"].parse(payload, ParseSettings("correios"))
    first = pac.events[0]
    assert first.raw is not None and first.raw["evento"] == payload["objetos"][0]["eventos"][-1]
    assert first.raw["codObjeto"] == "QB123456789BR" and "eventos" not in first.raw


def test_correios_times_get_the_offset_of_the_units_state() -> None:
    payload = json.loads((FIXTURES["correios"] / "sro_objetos.json").read_text(encoding="utf-8"))
    [pac, sedex, _], _ = CARRIERS["correios"].parse(payload, ParseSettings("correios"))
    offsets = {e.status_code: e.occurred_at.utcoffset() for e in [*pac.events, *sedex.events]}
    assert str(offsets["PO-01"]) == "-1 day, 21:00:00"  # Curitiba, -03:00
    assert str(offsets["BDE-01"]) == "-1 day, 20:00:00"  # Manaus, -04:00
    assert str(offsets["LDI-01"]) == "-1 day, 19:00:00"  # Rio Branco, -05:00


@pytest.mark.parametrize("payload", [None, [], {"objetos": "x"}, {"nada": 1}])
def test_correios_garbage_is_a_message_not_an_exception(payload: Any) -> None:
    shipments, messages = CARRIERS["correios"].parse(payload, ParseSettings("correios"))
    assert shipments == [] and [m.code for m in messages] == ["invalid_payload"]


def test_the_same_event_gets_the_same_id_whatever_its_offset_and_another_event_another() -> None:
    base = {
        "tracking_number": "AA1BR",
        "carrier": "correios",
        "status_code": "PO-01",
        "occurred_at": "2026-11-20T09:00:00-03:00",
        "location": {"city": "Curitiba", "state": "PR"},
    }
    a = RawTrackingEvent.model_validate(base)
    same = RawTrackingEvent.model_validate(
        {**base, "occurred_at": "2026-11-20T12:00:00Z", "description": "x"}
    )
    later = RawTrackingEvent.model_validate({**base, "occurred_at": "2026-11-20T09:00:01-03:00"})
    elsewhere = RawTrackingEvent.model_validate({**base, "location": {"city": "Londrina", "state": "PR"}})
    assert carrier_event_id("acme", a) == carrier_event_id("acme", same)
    ids = {carrier_event_id("acme", e) for e in (a, later, elsewhere)} | {carrier_event_id("other", a)}
    assert len(ids) == 4 and all(i.startswith("ce_") and len(i) == 29 for i in ids)
