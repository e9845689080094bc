"""Settings of the notification service (``RASTRO_NOTIFICATION_*`` plus the shared ``KitSettings``)."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from rastro_kit.settings import KitSettings
from rastro_notification.domain.endpoint_health import BreakerPolicy
from rastro_notification.domain.retry_schedule import RetrySchedule

__all__ = ["NotificationSettings"]

_DEFAULT_SCHEDULE = "5,300,1800,7200,18000,36000,36000"
_DEFAULT_NOTICE_SCHEDULE = "60,300,1800,7200"
_DAY_S = 24 * 3600.0


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

    # Endpoint health: circuit breaker and auto-disable (domain.endpoint_health).
    breaker_failures: int = Field(
        default=5,
        ge=1,
        validation_alias=_env("BREAKER_FAILURES"),
        description="retryable failures in a row that open an endpoint's circuit",
    )
    breaker_open_s: float = Field(
        default=30.0,
        gt=0,
        validation_alias=_env("BREAKER_OPEN_S"),
        description="how long a circuit first stays open; doubles on each failed probe",
    )
    breaker_max_open_s: float = Field(
        default=900.0,
        gt=0,
        validation_alias=_env("BREAKER_MAX_OPEN_S"),
        description="the longest a circuit stays open before the next probe",
    )
    disable_after_s: float = Field(
        default=5 * _DAY_S,
        gt=0,
        validation_alias=_env("DISABLE_AFTER_S"),
        description="an endpoint failing continuously this long is disabled and its owner told",
    )
    rotation_overlap_s: float = Field(
        default=_DAY_S,
        ge=0,
        validation_alias=_env("ROTATION_OVERLAP_S"),
        description="default time the previous secret keeps signing after a rotation",
    )
    # Retention and housekeeping.
    log_retention_days: float = Field(
        default=30.0,
        gt=0,
        validation_alias=_env("LOG_RETENTION_DAYS"),
        description="delivered/failed messages, their attempts and sent notices older than this are purged",
    )
    recipient_retention_days: float = Field(
        default=90.0,
        gt=0,
        validation_alias=_env("RECIPIENT_RETENTION_DAYS"),
        description="recipients (personal data) not updated for this long are deleted",
    )
    purge_interval_s: float = Field(
        default=3600.0,
        gt=0,
        validation_alias=_env("PURGE_INTERVAL_S"),
        description="how often the purge job runs",
    )
    metrics_interval_s: float = Field(
        default=15.0,
        gt=0,
        validation_alias=_env("METRICS_INTERVAL_S"),
        description="how often queue depth and disabled-endpoint gauges are refreshed",
    )
    # Customer notifications and owner alerts.
    notice_retry_schedule: str = Field(
        default=_DEFAULT_NOTICE_SCHEDULE,
        validation_alias=_env("NOTICE_RETRY_SCHEDULE"),
        description="seconds before each retry of a customer message or owner alert",
    )
    smtp_host: str | None = Field(
        default=None,
        validation_alias=_env("SMTP_HOST"),
        description="SMTP server for e-mail; unset: e-mails are not sent (marked suppressed)",
    )
    smtp_port: int = Field(default=587, validation_alias=_env("SMTP_PORT"))
    smtp_security: Literal["none", "starttls", "tls"] = Field(
        default="starttls",
        validation_alias=_env("SMTP_SECURITY"),
        description="none, starttls (upgrade on the plain port) or tls (implicit TLS, port 465)",
    )
    smtp_username: str | None = Field(default=None, validation_alias=_env("SMTP_USERNAME"))
    smtp_password: SecretStr | None = Field(default=None, validation_alias=_env("SMTP_PASSWORD"))
    email_from: str = Field(
        default="Rastro <no-reply@rastro.localhost>",
        validation_alias=_env("EMAIL_FROM"),
        description="From: of every e-mail",
    )

    @field_validator("retry_schedule", "notice_retry_schedule")
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
    def notice_schedule(self) -> RetrySchedule:
        return RetrySchedule.parse(self.notice_retry_schedule)

    @property
    def breaker(self) -> BreakerPolicy:
        return BreakerPolicy(
            failure_threshold=self.breaker_failures,
            open_s=self.breaker_open_s,
            max_open_s=self.breaker_max_open_s,
            disable_after_s=self.disable_after_s,
        )

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
