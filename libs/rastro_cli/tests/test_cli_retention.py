"""``rastro retention set``: each category goes to every service that applies it; days are validated."""

from __future__ import annotations

import pytest
import typer

from rastro_cli.devstack.gateway import ROUTE_TABLE
from rastro_cli.retention import AREAS, diverging, parse_days, updates_by_area
from rastro_kit.retention import CATEGORIES


def test_each_category_reaches_every_service_that_applies_it() -> None:
    assert updates_by_area({"shipments": 180, "dead_letters": None}) == {
        "ingest": {"shipments": 180},
        "normalization": {"shipments": 180},
        "eta": {"shipments": 180},
        "dead-letters": {"dead_letters": None},
    }
    assert set(updates_by_area(dict.fromkeys(CATEGORIES, 1))) == set(AREAS)
    assert {f"/v1/retention/{a}": s for a, s in AREAS.items()}.items() <= dict(ROUTE_TABLE).items()


def test_days_are_a_number_in_range_or_default() -> None:
    assert parse_days("180") == 180 and parse_days("Default") is None
    for bad in ("0", "3651", "soon"):
        with pytest.raises(typer.BadParameter):
            parse_days(bad)


def test_a_category_set_apart_in_one_service_is_reported() -> None:
    def answer(service: str, **days: float) -> dict[str, object]:
        return {"service": service, "policies": [{"category": c, "days": d} for c, d in days.items()]}

    agreeing = [answer("ingest", shipments=180, imports=90), answer("eta", shipments=180)]
    assert diverging(agreeing) == {}
    apart = [*agreeing, answer("normalization", shipments=365), answer("notification", recipients=90)]
    assert diverging(apart) == {"shipments": {"ingest": 180, "eta": 180, "normalization": 365}}
