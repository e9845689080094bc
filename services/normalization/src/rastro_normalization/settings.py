from __future__ import annotations

from pydantic import AliasChoices, Field
from pydantic_settings import SettingsConfigDict

from rastro_kit.settings import KitSettings

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
