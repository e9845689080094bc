"""Settings of dlq-replay: the kit's shared ones plus ``RASTRO_DLQ_REPLAY_<NAME>``."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from rastro_kit.settings import KitSettings

__all__ = ["DLQ_SOURCE_PATTERN", "DlqReplaySettings"]

# Every service's dead letters, except our own: storing those would feed the store its own failures.
DLQ_SOURCE_PATTERN = r"^rastro\.(?!dlq-replay\.).+\.dlq$"


class DlqReplaySettings(KitSettings):
    model_config = SettingsConfigDict(env_prefix="RASTRO_DLQ_REPLAY_", extra="ignore", populate_by_name=True)

    service_name: str = "dlq-replay"
    http_port: int = Field(default=8005, validation_alias="RASTRO_HTTP_PORT")
    max_replay_ids: int = Field(
        default=1000, ge=1, description="most dead letters one replay request may name"
    )
