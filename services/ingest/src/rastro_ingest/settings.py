from __future__ import annotations

from pydantic import AliasChoices, Field
from pydantic_settings import SettingsConfigDict

from rastro_kit.settings import KitSettings

__all__ = ["IngestSettings"]


class IngestSettings(KitSettings):
    model_config = SettingsConfigDict(env_prefix="RASTRO_INGEST_", extra="ignore", populate_by_name=True)

    service_name: str = "ingest"
    http_port: int = Field(default=8001, validation_alias=AliasChoices("RASTRO_HTTP_PORT"))
    max_batch_events: int = Field(default=1000, description="events per POST /v1/events")
    max_body_bytes: int = Field(default=1024 * 1024, description="largest accepted request body")
    idempotency_ttl_hours: int = Field(
        default=24,
        ge=1,
        description="how long Idempotency-Key answers are kept (tenants may override, in days)",
    )
    import_retention_days: int = Field(
        default=90, ge=1, description="finished CSV import jobs, their row errors and re-upload keys are kept"
    )
    shipment_retention_days: int = Field(
        default=365, ge=1, description="polled shipments are kept this long after their last carrier news"
    )
    rate_limit_per_s: float = Field(
        default=50.0, description="requests per second per API key on write routes; 0 turns limiting off"
    )
    rate_limit_burst: int = Field(default=100, ge=1, description="requests a key may send at once")
    # Carrier webhooks and polling (README: "Carriers: webhooks and polling")
    polling_enabled: bool = Field(default=True, description="poll carriers for the shipments ingest knows")
    polling_tick_s: float = Field(
        default=5.0, gt=0, description="how often the poller looks for due shipments"
    )
    polling_claim_limit: int = Field(default=500, ge=1, description="shipments claimed per tick, all tenants")
    polling_lease_s: float = Field(
        default=300.0, gt=0, description="a claimed shipment is re-polled after this if its poll died"
    )
    polling_failure_backoff_s: float = Field(
        default=60.0, gt=0, description="re-poll delay after a carrier failure"
    )
    carrier_rate_limits: str = Field(
        default="correios=5", description="requests per second per carrier, e.g. `correios=5,jadlog=2`"
    )
    carrier_default_rate_per_s: float = Field(default=1.0, gt=0, description="for carriers not listed above")
    carrier_timeout_s: float = Field(default=10.0, gt=0, description="per carrier HTTP request")
    carrier_retry_attempts: int = Field(
        default=3, ge=1, description="attempts per carrier call (429/5xx/timeout)"
    )
    carrier_retry_base_s: float = Field(
        default=0.5, gt=0, description="exponential backoff base, full jitter"
    )
    carrier_retry_max_s: float = Field(default=30.0, gt=0, description="longest wait between attempts")
    carrier_breaker_failures: int = Field(
        default=5, ge=1, description="failed calls in a row that open a circuit"
    )
    carrier_breaker_reset_s: float = Field(
        default=60.0, gt=0, description="an open circuit tries again after this"
    )

    inbox_dir: str | None = Field(
        default=None,
        description="watched inbox folder: files dropped in <dir>/<tenant>/ are imported once (unset: off)",
    )
    inbox_poll_s: float = Field(default=5.0, gt=0, description="how often the inbox folder is looked at")
    inbox_settle_s: float = Field(
        default=2.0, ge=0, description="a file is taken once unchanged this long (still being written before)"
    )

    @property
    def carrier_rate_limits_per_s(self) -> dict[str, float]:
        pairs = (item.split("=", 1) for item in self.carrier_rate_limits.split(",") if "=" in item)
        return {name.strip().lower(): float(rate) for name, rate in pairs}
