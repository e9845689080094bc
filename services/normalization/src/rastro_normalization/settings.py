from __future__ import annotations

from pydantic import AliasChoices, Field
from pydantic_settings import SettingsConfigDict

from rastro_kit.settings import KitSettings
from rastro_normalization.domain.geofence import FenceSettings

__all__ = ["NormalizationSettings"]


class NormalizationSettings(KitSettings):
    model_config = SettingsConfigDict(
        env_prefix="RASTRO_NORMALIZATION_", extra="ignore", populate_by_name=True
    )

    service_name: str = "normalization"
    http_port: int = Field(default=8002, validation_alias=AliasChoices("RASTRO_HTTP_PORT"))
    retention_days: int = Field(
        default=365,
        ge=1,
        description="days a finished (delivered, returned, cancelled) shipment is kept after its last change,"
        " with its timeline; also order events and order facts of that age (docs/database.md)",
    )
    geofence_enabled: bool = Field(
        default=True, description="run the geofence processor (consumer group normalization-geofence)"
    )
    geofence_arrival_radius_m: float = Field(default=500.0, gt=0, description="the destination area")
    geofence_departure_radius_m: float = Field(default=300.0, gt=0, description="the origin area")
    geofence_long_stop_s: float = Field(
        default=600.0, gt=0, description="standing still this long is a long stop"
    )
    geofence_corridor_m: float = Field(
        default=1000.0, gt=0, description="farther than this from the planned route is a deviation"
    )
    geofence_position_every_s: float = Field(
        default=120.0, gt=0, description="a shipment.position at most this often (recorded time) per shipment"
    )
    postal_centroids_file: str | None = Field(
        default="../shared/data/olist/olist_geolocation_dataset.csv",
        description="CSV of postal-prefix coordinates (Olist geolocation columns): where a destination is"
        " when its event gave no latitude/longitude; unset or missing: only coordinates count",
    )

    def fence_settings(self) -> FenceSettings:
        return FenceSettings(
            arrival_radius_m=self.geofence_arrival_radius_m,
            departure_radius_m=self.geofence_departure_radius_m,
            long_stop_s=self.geofence_long_stop_s,
            corridor_m=self.geofence_corridor_m,
            position_every_s=self.geofence_position_every_s,
        )
