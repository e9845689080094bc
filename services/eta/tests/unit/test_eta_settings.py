"""EtaSettings: prefix, defaults that work in ``make run``, and the time zone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from rastro_eta.settings import EtaSettings, parse_zone

pytestmark = pytest.mark.unit


def test_defaults_and_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RASTRO_ETA_MIN_SAMPLES", "3")
    monkeypatch.setenv("RASTRO_ETA_DEFAULT_TRANSIT_DAYS", "2.5")
    settings = EtaSettings()
    assert (settings.service_name, settings.schema, settings.http_port) == ("eta", "eta", 8003)
    parameters = settings.prediction_parameters()
    assert (parameters.min_samples, parameters.half_life_days, parameters.default_expected_days) == (
        3,
        30,
        2.5,
    )
    assert parameters.version == "lane-decay-v2.wd.h30.q0.9.m3"
    assert settings.olist_dir == "../shared/data/olist"


def test_promise_default_may_not_precede_the_expected_default() -> None:
    with pytest.raises(ValidationError):
        EtaSettings(default_transit_days=8, default_promise_days=5)


@pytest.mark.parametrize(
    ("name", "offset"),
    [
        ("UTC", timedelta(0)),
        ("-03:00", timedelta(hours=-3)),
        ("+0530", timedelta(hours=5, minutes=30)),
        ("America/Sao_Paulo", timedelta(hours=-3)),
    ],
)
def test_zones(name: str, offset: timedelta) -> None:
    moment = datetime(2026, 3, 2, 12, tzinfo=UTC)
    assert moment.astimezone(parse_zone(name)).utcoffset() == offset


def test_an_unknown_zone_is_refused_at_start_up() -> None:
    with pytest.raises(ValidationError):
        EtaSettings(timezone="Mars/Olympus_Mons")
    with pytest.raises(ValueError):
        parse_zone("-3")
    assert parse_zone("Z") is UTC
    assert isinstance(parse_zone("-03:00"), timezone)


def test_last_mile_settings_reach_the_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RASTRO_ETA_LAST_MILE_DETOUR_FACTOR", "1.4")
    monkeypatch.setenv("RASTRO_ETA_LAST_MILE_MAX_SPEED_KMH", "60")
    settings = EtaSettings()
    p = settings.last_mile_parameters()
    assert (p.detour_factor, p.min_speed_kmh, p.max_speed_kmh, p.handling_minutes) == (1.4, 8, 60, 5)
    assert (p.promise_factor, p.republish_minutes, settings.last_mile_fresh_minutes) == (1.5, 2, 30)
    with pytest.raises(ValidationError):
        EtaSettings(last_mile_min_speed_kmh=90)
