"""Settings of the eta service: the kit's shared ones plus ``RASTRO_ETA_*``."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, tzinfo
from datetime import timezone as fixed_offset
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from rastro_eta.domain.clock import CalendarClock, WorkingDayClock
from rastro_eta.domain.last_mile import LastMileParameters
from rastro_eta.domain.prediction import ModelParameters
from rastro_kit.settings import KitSettings

__all__ = ["EtaSettings", "brazilian_holidays", "parse_zone"]


def parse_zone(name: str) -> tzinfo:
    """An IANA zone (``America/Sao_Paulo``), ``UTC``, or a fixed offset (``-03:00``)."""
    if name.upper() in {"UTC", "Z"}:
        return UTC
    if name[:1] in {"+", "-"}:
        try:
            parsed = datetime.strptime(name, "%z")
        except ValueError:
            raise ValueError(f"not a UTC offset: {name!r} (use ±HH:MM)") from None
        offset = parsed.utcoffset() or timedelta(0)
        return fixed_offset(offset)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r} (is the tz database installed?)") from None


class EtaSettings(KitSettings):
    model_config = SettingsConfigDict(env_prefix="RASTRO_ETA_", extra="ignore", populate_by_name=True)

    service_name: str = "eta"
    http_port: int = Field(default=8003, validation_alias=AliasChoices("RASTRO_HTTP_PORT"))
    retention_days: int = Field(
        default=365,
        ge=1,
        description="days a finished shipment's rows (shipment, predictions, history, outcome) are kept after"
        " its last change; lane statistics stay",
    )
    default_transit_days: float = Field(
        default=7.0,
        ge=0,
        description="expected (P50) transit days when no lane has a sample",
    )
    default_promise_days: float = Field(
        default=10.0,
        ge=0,
        description="promise (P90) transit days when no lane has a sample",
    )
    min_samples: float = Field(
        default=5, ge=1, description="a lane whose decayed sample weight is below this falls back"
    )
    half_life_days: float | None = Field(
        default=30.0, gt=0, description="a sample's weight halves every this many days (unset: no decay)"
    )
    promise_quantile: float = Field(
        default=0.9, gt=0.5, lt=1, description="share of deliveries meant to arrive by the promise date"
    )
    working_days: bool = Field(
        default=True, description="count transit in working days (weekends and Brazilian holidays skipped)"
    )
    olist_dir: str = Field(
        default="../shared/data/olist",
        validation_alias=AliasChoices("RASTRO_OLIST_DIR", "olist_dir"),
        description="folder of the Olist CSVs for `rastro eta backfill/evaluate`",
    )
    timezone: str = Field(
        default="America/Sao_Paulo",
        description="time zone in which predicted dates are calendar days",
    )

    last_mile_detour_factor: float = Field(
        default=1.3, ge=1, description="last mile: road over straight-line distance, when there is no route"
    )
    last_mile_min_speed_kmh: float = Field(
        default=8.0, gt=0, description="last mile: floor of the vehicle's recent speed (a parked vehicle)"
    )
    last_mile_max_speed_kmh: float = Field(
        default=80.0, gt=0, description="last mile: ceiling of the vehicle's recent speed (a highway burst)"
    )
    last_mile_handling_minutes: float = Field(
        default=5.0, ge=0, description="last mile: minutes at the door, added to every arrival estimate"
    )
    last_mile_promise_factor: float = Field(
        default=1.5, ge=1, description="last mile: promise = expected minutes × this (a P90-like bound)"
    )
    last_mile_republish_minutes: float = Field(
        default=2.0, ge=0, description="last mile: publish again only when the arrival moved more than this"
    )
    last_mile_stale_minutes: float = Field(
        default=10.0,
        ge=0,
        description="last mile: a position older than this when handled gives low confidence",
    )
    last_mile_fresh_minutes: float = Field(
        default=30.0, gt=0, description="last mile: the API shows a last-mile ETA estimated this recently"
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        parse_zone(value)
        return value

    @model_validator(mode="after")
    def _promise_not_before_expected(self) -> EtaSettings:
        if self.default_promise_days < self.default_transit_days:
            raise ValueError("default_promise_days must be at least default_transit_days")
        if self.last_mile_max_speed_kmh < self.last_mile_min_speed_kmh:
            raise ValueError("last_mile_max_speed_kmh must be at least last_mile_min_speed_kmh")
        return self

    def prediction_parameters(self) -> ModelParameters:
        zone = parse_zone(self.timezone)
        clock = WorkingDayClock.of(zone, brazilian_holidays()) if self.working_days else CalendarClock(zone)
        return ModelParameters(
            min_samples=self.min_samples,
            half_life_days=self.half_life_days,
            promise_quantile=self.promise_quantile,
            default_expected_days=self.default_transit_days,
            default_promise_days=self.default_promise_days,
            clock=clock,
        )

    def last_mile_parameters(self) -> LastMileParameters:
        return LastMileParameters(
            detour_factor=self.last_mile_detour_factor,
            min_speed_kmh=self.last_mile_min_speed_kmh,
            max_speed_kmh=self.last_mile_max_speed_kmh,
            handling_minutes=self.last_mile_handling_minutes,
            promise_factor=self.last_mile_promise_factor,
            republish_minutes=self.last_mile_republish_minutes,
            stale_minutes=self.last_mile_stale_minutes,
        )


def brazilian_holidays(first_year: int = 2015, last_year: int = 2035) -> list[date]:
    """National holidays of Brazil (the ``holidays`` package), for the working-day clock."""
    import holidays  # only when a model is built: the `rastro` command starts without it

    return sorted(holidays.country_holidays("BR", years=range(first_year, last_year + 1)))
