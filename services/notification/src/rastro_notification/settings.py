"""Settings of the notification service (``RASTRO_NOTIFICATION_*`` plus the shared ``KitSettings``)."""

from __future__ import annotations

from typing import Self

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from rastro_kit.settings import KitSettings
from rastro_notification.domain.retry_schedule import RetrySchedule

__all__ = ["NotificationSettings"]

_DEFAULT_SCHEDULE = "5,300,1800,7200,18000,36000,36000"


def _env(name: str) -> AliasChoices:
    return AliasChoices(f"RASTRO_NOTIFICATION_{name}")


class NotificationSettings(KitSettings):
    model_config = SettingsConfigDict(
        env_prefix="RASTRO_NOTIFICATION_", extra="ignore", populate_by_name=True
    )

    service_name: str = "notification"
    http_port: int = Field(default=8004, validation_alias=AliasChoices("RASTRO_HTTP_PORT"))
    retry_schedule: str = Field(
        default=_DEFAULT_SCHEDULE,
        validation_alias=_env("RETRY_SCHEDULE"),
        description="seconds to wait before each retry after the first attempt, comma-separated",
    )
    allow_private_urls: bool | None = Field(
        default=None,
        validation_alias=_env("ALLOW_PRIVATE_URLS"),
        description="accept endpoints on private, loopback or link-local addresses; "
        "default: true in development mode, false in production",
    )
    request_timeout_s: float = Field(
        default=15.0,
        gt=0,
        validation_alias=_env("REQUEST_TIMEOUT_S"),
        description="bound on one whole delivery attempt (connect, send, response head, excerpt)",
    )
    max_concurrency: int = Field(
        default=64,
        ge=1,
        validation_alias=_env("MAX_CONCURRENCY"),
        description="deliveries in flight at once in this process",
    )
    per_endpoint_concurrency: int = Field(
        default=4,
        ge=1,
        validation_alias=_env("PER_ENDPOINT_CONCURRENCY"),
        description="deliveries in flight at once to one subscription, across every instance",
    )
    claim_lease_s: float = Field(
        default=60.0,
        gt=0,
        validation_alias=_env("CLAIM_LEASE_S"),
        description="how long a claim reserves a message; a crashed instance's claims are retried after it",
    )
    poll_interval_s: float = Field(
        default=1.0,
        gt=0,
        validation_alias=_env("POLL_INTERVAL_S"),
        description="longest wait between looks for due messages when no NOTIFY arrives",
    )

    @field_validator("retry_schedule")
    @classmethod
    def _schedule_parses(cls, value: str) -> str:
        RetrySchedule.parse(value)
        return value

    @model_validator(mode="after")
    def _resolve_defaults(self) -> Self:
        if self.allow_private_urls is None:
            self.allow_private_urls = self.mode == "development"
        if self.claim_lease_s <= self.request_timeout_s:
            raise ValueError(
                "claim_lease_s must be longer than request_timeout_s, or a slow attempt is sent twice"
            )
        return self

    @property
    def schedule(self) -> RetrySchedule:
        return RetrySchedule.parse(self.retry_schedule)

    @property
    def private_urls_allowed(self) -> bool:
        return bool(self.allow_private_urls)

    @property
    def require_https(self) -> bool:
        return not self.development

    @property
    def notify_channel(self) -> str:
        """The LISTEN/NOTIFY channel that wakes the dispatcher (the migration's trigger names it too)."""
        return f"{self.schema}_messages"
