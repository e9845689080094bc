"""Settings shared by every service. Each service subclasses ``KitSettings`` with its own prefix.

Shared settings read fixed names (``KAFKA_BOOTSTRAP_SERVERS``, ``DATABASE_URL``, ``RASTRO_MODE`` …)
whatever the subclass prefix is; service settings read ``RASTRO_<SERVICE>_<NAME>``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from rastro_events.migrations import EventMigrations

__all__ = ["KitSettings"]


def _env(name: str) -> AliasChoices:
    return AliasChoices(name)


class KitSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RASTRO_", extra="ignore", populate_by_name=True)

    service_name: str = "rastro"
    kafka_bootstrap_servers: str = Field(
        default="127.0.0.1:19092",
        validation_alias=_env("KAFKA_BOOTSTRAP_SERVERS"),
        description="Kafka bootstrap servers, comma-separated",
    )
    database_url: str = Field(
        default="postgresql://postgres@127.0.0.1:5432/rastro",
        validation_alias=_env("DATABASE_URL"),
    )
    mode: Literal["development", "production"] = Field(
        default="production",
        validation_alias=_env("RASTRO_MODE"),
        description="development allows loopback webhook URLs and relaxes checks",
    )
    kafka_idempotence: bool = Field(
        default=True,
        validation_alias=_env("RASTRO_KAFKA_IDEMPOTENCE"),
        description="idempotent producer; the embedded Tansu broker needs false",
    )
    kafka_client_id: str | None = Field(default=None, validation_alias=_env("RASTRO_KAFKA_CLIENT_ID"))
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        default="PLAINTEXT",
        validation_alias=_env("KAFKA_SECURITY_PROTOCOL"),
        description="how clients talk to the brokers; SASL_SSL for a managed cluster",
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        default="SCRAM-SHA-512", validation_alias=_env("KAFKA_SASL_MECHANISM")
    )
    kafka_sasl_username: str | None = Field(default=None, validation_alias=_env("KAFKA_SASL_USERNAME"))
    kafka_sasl_password: SecretStr | None = Field(default=None, validation_alias=_env("KAFKA_SASL_PASSWORD"))
    kafka_ssl_cafile: str | None = Field(
        default=None,
        validation_alias=_env("KAFKA_SSL_CAFILE"),
        description="CA bundle that signed the brokers' certificates (default: the system's)",
    )
    kafka_ssl_certfile: str | None = Field(
        default=None, validation_alias=_env("KAFKA_SSL_CERTFILE"), description="client certificate (mTLS)"
    )
    kafka_ssl_keyfile: str | None = Field(
        default=None, validation_alias=_env("KAFKA_SSL_KEYFILE"), description="client key (mTLS)"
    )
    admin_api_key: SecretStr | None = Field(
        default=None,
        validation_alias=_env("RASTRO_ADMIN_API_KEY"),
        description="operator key that sees every tenant",
    )
    master_key: SecretStr | None = Field(
        default=None,
        validation_alias=_env("RASTRO_MASTER_KEY"),
        description="base64 of 32 bytes: encrypts the per-tenant keys of personal data at rest (read by"
        " rastro_kit.personal_data; development mode generates .rastro/master.key)",
    )
    master_key_file: str | None = Field(
        default=None,
        validation_alias=_env("RASTRO_MASTER_KEY_FILE"),
        description="a file holding the master key instead (a mounted secret)",
    )
    master_key_previous: SecretStr | None = Field(
        default=None,
        validation_alias=_env("RASTRO_MASTER_KEY_PREVIOUS"),
        description="comma-separated previous master keys: only unwrap keys not yet re-wrapped onto the"
        " current one (`rastro privacy rotate-master-key`, docs/privacy.md)",
    )
    master_key_previous_file: str | None = Field(
        default=None,
        validation_alias=_env("RASTRO_MASTER_KEY_PREVIOUS_FILE"),
        description="a file holding the previous master keys instead (comma- or newline-separated)",
    )
    retry_delays: str = Field(
        default="10,60,600",
        validation_alias=_env("RASTRO_RETRY_DELAYS"),
        description="seconds before each retry tier re-consumes a transient failure",
    )
    max_poll_records: int = Field(default=500, validation_alias=_env("RASTRO_MAX_POLL_RECORDS"))
    kafka_fetch_max_wait_ms: int = Field(
        default=100,
        ge=1,
        validation_alias=_env("RASTRO_KAFKA_FETCH_MAX_WAIT_MS"),
        description="longest a fetch waits for records; Apache Kafka answers as soon as records arrive,"
        " the embedded Tansu only at this deadline, so it bounds the latency of each hop there",
    )
    audit_retention_days: int = Field(
        default=1825,
        ge=0,
        validation_alias=_env("RASTRO_AUDIT_RETENTION_DAYS"),
        description="days audit entries are kept before housekeeping purges them (0: forever, else >= 30)",
    )
    inbox_retention_days: int = Field(
        default=30,
        ge=1,
        validation_alias=_env("RASTRO_INBOX_RETENTION_DAYS"),
        description="days an inbox row (proof an event was handled) is kept; longer than any redelivery",
    )
    db_pool_size: int = Field(default=10, validation_alias=_env("RASTRO_DB_POOL_SIZE"))
    housekeeping_pause_ms: float = Field(
        default=50.0,
        ge=0,
        validation_alias=_env("RASTRO_HOUSEKEEPING_PAUSE_MS"),
        description="pause between two batches of a retention purge, so the live path keeps the database"
        " (docs/database.md: measured cost with and without)",
    )
    database_pooler: Literal["none", "pgbouncer"] = Field(
        default="none",
        validation_alias=_env("RASTRO_DATABASE_POOLER"),
        description="pgbouncer: DATABASE_URL is a PgBouncer in transaction mode (no prepared-statement"
        " cache; the schema comes from the role), and what needs a session uses DATABASE_DIRECT_URL",
    )
    database_direct_url: str | None = Field(
        default=None,
        validation_alias=_env("DATABASE_DIRECT_URL"),
        description="Postgres itself, past the pooler: migrations, leader locks, LISTEN (docs/database.md)",
    )
    db_direct_pool_size: int = Field(
        default=5,
        ge=2,
        validation_alias=_env("RASTRO_DB_DIRECT_POOL_SIZE"),
        description="most direct (session) connections with RASTRO_DATABASE_POOLER=pgbouncer",
    )
    metrics_refresh_s: float = Field(
        default=15.0,
        gt=0,
        validation_alias=_env("RASTRO_METRICS_REFRESH_S"),
        description="how often consumer lag (from the broker) and the outbox backlog are re-read",
    )
    max_body_bytes: int = Field(
        default=1024 * 1024,
        validation_alias=_env("RASTRO_MAX_BODY_BYTES"),
        description="largest request body accepted (413 beyond), except on streaming routes",
    )
    http_host: str = Field(default="127.0.0.1", validation_alias=_env("RASTRO_HTTP_HOST"))
    http_port: int = Field(default=8000, validation_alias=_env("RASTRO_HTTP_PORT"))
    log_level: str = Field(default="INFO", validation_alias=_env("RASTRO_LOG_LEVEL"))
    event_migrations: str = Field(
        default="",
        validation_alias=_env("RASTRO_EVENT_MIGRATIONS"),
        description="open migration windows of events, e.g. tracking.raw:1->2: every major of the window"
        " is published, with one event id, and a consumer skips the twins it cannot read (docs/upgrades.md)",
    )

    @model_validator(mode="after")
    def _kafka_credentials(self) -> KitSettings:
        if self.kafka_security_protocol.startswith("SASL_") and not (
            self.kafka_sasl_username and self.kafka_sasl_password
        ):
            raise ValueError(
                f"KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol} needs KAFKA_SASL_USERNAME and"
                " KAFKA_SASL_PASSWORD"
            )
        if bool(self.kafka_ssl_certfile) != bool(self.kafka_ssl_keyfile):
            raise ValueError("KAFKA_SSL_CERTFILE and KAFKA_SSL_KEYFILE go together (client certificate)")
        if self.database_pooler == "pgbouncer" and not self.database_direct_url:
            raise ValueError(
                "RASTRO_DATABASE_POOLER=pgbouncer needs DATABASE_DIRECT_URL (Postgres itself, for migrations,"
                " leader locks and LISTEN, which a transaction pooler cannot carry)"
            )
        return self

    @field_validator("event_migrations")
    @classmethod
    def _migration_windows(cls, value: str) -> str:
        EventMigrations.parse(value)  # a typo fails at start-up, not in the middle of a rollout
        return value

    @property
    def migrations(self) -> EventMigrations:
        return EventMigrations.parse(self.event_migrations)

    @property
    def retry_delays_s(self) -> tuple[float, ...]:
        return tuple(float(x) for x in self.retry_delays.split(",") if x.strip())

    @property
    def schema(self) -> str:
        """Postgres schema owned by this service."""
        return self.service_name.replace("-", "_")

    @property
    def development(self) -> bool:
        return self.mode == "development"
