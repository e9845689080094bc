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
    consumer_group: str = Field(
        default="dlq-replay", min_length=1, description="the Kafka consumer group reading the DLQs"
    )
    default_replay_rate: float = Field(
        default=100.0, gt=0, description="dead letters per second of a replay job that names no rate"
    )
    max_replay_rate: float = Field(default=5000.0, gt=0, description="the highest rate a job may ask for")
    job_poll_interval_s: float = Field(
        default=1.0, gt=0, description="how often the replay worker looks for jobs when not woken"
    )
    retention_days: int = Field(
        default=30,
        ge=1,
        description="days a dead letter (replayed or not) is kept after its last change, and a finished"
        " replay job after it ended (docs/database.md)",
    )
